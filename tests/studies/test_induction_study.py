"""The induction study's training loss (explorer.studies.induction_heads)."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.data.tokens import induction_training_batch
from explorer.models import zoo
from explorer.studies.induction_heads import next_token_training_loss


def test_next_token_training_loss_is_cross_entropy_on_a_batch_seeded_by_step():
    model = zoo.attention_only_transformer(d_model=16, n_heads=2, d_vocab=20, n_ctx=32, seed=0)
    loss = next_token_training_loss(20, 32, 4, seed=3, min_span=5)
    with torch.no_grad():
        at_7, again_7, at_8 = loss(model, 7), loss(model, 7), loss(model, 8)
        # the same batch, built by hand: generator seeded from (seed, step)
        g = torch.Generator().manual_seed(3 * 1_000_003 + 7)
        tokens = induction_training_batch(4, 32, 20, generator=g, min_span=5)
        logits = model(tokens)[:, :-1]
        expected = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 20), tokens[:, 1:].reshape(-1)
        )
    assert at_7.ndim == 0 and float(at_7) == pytest.approx(float(expected), rel=1e-6)
    assert float(again_7) == float(at_7)  # a resumed run sees the same data
    assert float(at_8) != float(at_7)  # a fresh batch every step
    assert math.log(20) * 0.8 < float(at_7) < math.log(20) * 1.5  # untrained: near uniform
    # gradients flow to the weights
    loss(model, 1).backward()
    assert all(p.grad is not None for p in model.model.parameters() if p.requires_grad)


def test_next_token_training_loss_rejects_bad_settings():
    with pytest.raises(ValueError, match="batch_size"):
        next_token_training_loss(20, 32, 0)
    with pytest.raises(ValueError, match="at least 21"):
        next_token_training_loss(20, 20, 4, min_span=10)
    with pytest.raises(ValueError, match="d_vocab"):
        next_token_training_loss(2, 32, 4)
