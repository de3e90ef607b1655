"""Token attribution: result, options and errors (values against captum: tests/reference)."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

from explorer.analysis import attribute_tokens
from explorer.analysis.attribution import attribute


@pytest.fixture(scope="module")
def model():
    from explorer.models import zoo

    return zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)


TOKENS = torch.tensor([[0, 3, 5, 3, 7], [0, 4, 6, 4, 2]])


def test_scores_add_up_and_read_well(model):
    a = attribute_tokens(model, TOKENS, target="t5", against="t6", baseline="BOS", n_steps=64)
    assert a.scores.shape == (2, 5) and a.direction == "'t5' - 't6'"
    assert torch.allclose(a.scores.sum(-1), a.value - a.baseline_value + a.delta, atol=1e-5)
    assert a.delta.abs().max() < 1e-2
    assert a.scores[:, 0].abs().max() == 0  # BOS is its own baseline: nothing to attribute
    assert a.top(0, 2)[0][1] in a.tokens[0]
    assert len(a.to_dataframe()) == 10 and "integrated gradients" in a._repr_html_()
    assert repr(a).startswith("TokenAttribution(2 examples x 5 tokens")
    per_example = attribute_tokens(model, TOKENS, target=5, position=[2, 3], n_steps=8)
    assert per_example.positions.tolist() == [2, 3]


def test_errors(model):
    with pytest.raises(ValueError, match="use attribute_tokens"):
        attribute(model, TOKENS, target=1)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        attribute_tokens(model, TOKENS, target=1, n_steps=0)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        attribute_tokens(model, TOKENS, target=1, baseline="<pad>")


def test_docstring_example():
    module = importlib.import_module("explorer.analysis.token_attribution")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
