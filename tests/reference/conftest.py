"""Tiny seeded models shared by the reference tests (built in-process, module scope)."""

from __future__ import annotations

import pytest
import torch

from explorer.data import repeated_tokens
from explorer.models import zoo

L = 12  # half length of the [BOS][L][L] batches
D_VOCAB = 30


def sharpened_attention_model(seed: int = 0, normalization: str | None = "LN"):
    """A 2-layer attention-only transformer whose Q/K weights are scaled up, so its
    patterns are far from uniform (a fresh init attends almost evenly: every score agrees)."""
    model = zoo.attention_only_transformer(
        n_layers=2,
        d_model=32,
        n_heads=4,
        d_vocab=D_VOCAB,
        n_ctx=64,
        seed=seed,
        normalization=normalization,
    )
    with torch.no_grad():
        for block in model.model.blocks:
            block.attn.W_Q.mul_(6.0)
            block.attn.W_K.mul_(6.0)
    return model.eval()


@pytest.fixture(scope="module")
def attn2():
    return sharpened_attention_model()


@pytest.fixture(scope="module")
def rep_tokens():
    """``[BOS][L][L]`` at vocab 30: every sequence repeats tokens inside its random span."""
    tokens = repeated_tokens(4, L, D_VOCAB, seed=1)
    span = tokens[:, 1 : L + 1]
    assert all(len(set(row.tolist())) < L for row in span)  # the case the old score got wrong
    return tokens
