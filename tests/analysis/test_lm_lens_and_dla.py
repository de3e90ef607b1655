"""DLA and the logit lens: the result objects, token strings and errors (values: tests/reference)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import direct_logit_attribution, logit_lens
from explorer.analysis.units import Head, Neuron


@pytest.fixture(scope="module")
def model(tiny_lm):
    return tiny_lm


TOKENS = torch.tensor([[1, 4, 7, 4, 9], [2, 3, 5, 3, 8]])


def test_token_strings_equal_ids(model):
    by_text = direct_logit_attribution(model, TOKENS, target="w7", against="w9", granularity="all")
    by_id = direct_logit_attribution(
        model, TOKENS, target=7, against=torch.tensor([9, 9]), granularity="all"
    )
    assert torch.equal(by_text.values, by_id.values)
    assert by_text.direction == "'w7' - 'w9'"


def test_dla_result_reads_well(model):
    dla = direct_logit_attribution(model, TOKENS, target=7, granularity="neuron")
    assert dla.grid().shape == (2, 64)
    assert dla.unit(65) == Neuron(1, 1)
    top = dla.top(3)
    assert abs(top[0][1]) >= abs(top[1][1]) >= abs(top[2][1])
    assert repr(dla).startswith("LogitAttribution(neuron, 2 examples x 128 units")
    assert len(repr(dla)) < 300
    frame = dla.to_dataframe()
    assert list(frame.columns) == ["unit", "mean", "std"] and len(frame) == 128
    assert all(isinstance(unit, Neuron) for unit, _ in top)  # units, not their labels
    label = f"L{top[0][0].layer}N{top[0][0].neuron}"
    assert "<table>" in dla._repr_html_() and label in dla._repr_html_()
    heads = direct_logit_attribution(model, TOKENS, target=7, granularity="head")
    assert heads.unit(6) == Head(1, 2)
    with pytest.raises(ValueError, match="grid\\(\\) is for"):
        direct_logit_attribution(model, TOKENS, target=7, granularity="layer").grid()


def test_dla_errors_name_what_is_allowed(model):
    with pytest.raises(ValueError, match="unknown DLA granularity .heads_of_layer."):
        direct_logit_attribution(model, TOKENS, target=7, granularity="heads_of_layer")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        direct_logit_attribution(model, TOKENS, target="nope")
    with pytest.raises(ValueError, match="out of range 0..29"):
        direct_logit_attribution(model, TOKENS, target=30)
    with pytest.raises(ValueError, match="one token per example"):
        direct_logit_attribution(model, TOKENS, target=[1, 2, 3])
    with pytest.raises(ValueError, match="position \\[7, 7\\] out of range"):
        direct_logit_attribution(model, TOKENS, target=1, position=7)


def test_attention_only_model_has_no_neurons():
    from explorer.models import zoo

    m = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
    with pytest.raises(ValueError, match="attention-only"):
        direct_logit_attribution(m, torch.tensor([[0, 1, 2]]), target=1, granularity="neuron")
    dla = direct_logit_attribution(m, torch.tensor([[0, 1, 2]]), target=1, granularity="layer")
    assert dla.labels == ("embed", "pos_embed", "0_attn_out")


def test_logit_lens_result(model):
    lens = logit_lens(model, TOKENS, n=3)
    assert lens.labels == ("0_pre", "1_pre", "final_post")
    assert len(lens.top_tokens(2, 4)) == 3 and lens.top_tokens(2, 4)[0].startswith("w")
    # the default target is the model's own prediction: rank 0 in the last row
    assert (lens.target_rank[-1] == 0).all()
    assert lens.first_row(-1) in lens.labels
    frame = lens.to_dataframe()
    assert len(frame) == 3 * 5 and frame["target_rank"].min() >= 0
    assert "Logit lens" in lens._repr_html_() and "w1" in lens._repr_html_()
    assert repr(lens).startswith("LogitLens(3 rows x 2 examples x 5 positions, top 3")
    lens_w = logit_lens(model, TOKENS, target="w4", n=1)
    assert (lens_w.target_ids == 4).all()


def test_logit_lens_errors(model):
    with pytest.raises(ValueError, match="exceeds the vocabulary"):
        logit_lens(model, TOKENS, n=31)
    with pytest.raises(ValueError, match="target ids must be \\[batch, pos\\]"):
        logit_lens(model, TOKENS, target=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a transformer"):
        from explorer.models import zoo

        logit_lens(zoo.mnist_mlp(hidden=(4,)), torch.rand(1, 1, 28, 28))


@pytest.mark.parametrize(
    "name", ["explorer.analysis.logit_attribution", "explorer.analysis.logit_lens"]
)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
