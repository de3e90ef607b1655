"""``zoo.attention_only_transformer`` takes the ``d_head`` its error message asks for."""

from __future__ import annotations

import pytest
import torch

from explorer.models import zoo


def test_the_error_names_d_head_and_passing_it_builds_the_model():
    with pytest.raises(ValueError, match="d_model 30 is not divisible by n_heads 4: pass d_head"):
        zoo.attention_only_transformer(d_model=30, n_heads=4, d_vocab=10, n_ctx=8)
    model = zoo.attention_only_transformer(d_model=30, n_heads=4, d_head=8, d_vocab=10, n_ctx=8)
    assert model.d_head == 8 and tuple(model.model.blocks[0].attn.W_Q.shape) == (4, 30, 8)
    assert model(torch.zeros(1, 5, dtype=torch.long)).shape == (1, 5, 10)
    default = zoo.attention_only_transformer(d_model=32, n_heads=4, d_vocab=10, n_ctx=8)
    assert default.d_head == 8
