"""Shared fixtures: tiny seeded models built in-process, one thread per test process."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def attn_model():
    from explorer.models import zoo

    return zoo.attention_only_transformer(
        n_layers=2, d_model=32, n_heads=4, d_vocab=30, n_ctx=32, seed=0
    )


@pytest.fixture
def mlp_transformer():
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=30, n_ctx=32, seed=1
    )
    return zoo.transformer(cfg)


@pytest.fixture
def mnist_mlp():
    from explorer.models import zoo

    return zoo.mnist_mlp(hidden=(16, 12), seed=0)


@pytest.fixture
def mnist_cnn():
    from explorer.models import zoo

    return zoo.mnist_cnn(channels=(4, 6), seed=0)


@pytest.fixture
def repeated():
    from explorer.data import repeated_tokens

    return repeated_tokens(6, 8, 30, seed=3)
