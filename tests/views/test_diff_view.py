"""DiffView: the change maps of ``compare``, a head's pattern in both models, the
cross-model patching grid both ways, clicks and links (state only, no browser)."""

from __future__ import annotations

import pytest
import torch
import traitlets

from explorer.analysis import activation_patching, attention_patterns, compare, metrics
from explorer.data import repeated_tokens
from explorer.features import SparseAutoencoder
from explorer.views import AttentionView, DiffView


@pytest.fixture
def pair(mlp_transformer):
    other = mlp_transformer.copy()
    other.set_weight("query", mlp_transformer.weight("query", 1)[2] * 4, 1, head=2)
    tokens = repeated_tokens(3, 5, 30, seed=0)
    metric = metrics.logit_diff(tokens[:, 1], tokens[:, 2])
    return mlp_transformer, other, tokens, metric


def _array(payload) -> torch.Tensor:
    return torch.as_tensor(payload.numpy()).float()


def test_the_maps_are_compare_and_the_grid_is_cross_model_patching(pair):
    a, b, tokens, metric = pair
    view = DiffView(a, tokens, other=b, metric=metric, target=1, against=2)
    result = compare(a, tokens, other=b, target=1, against=2)
    torch.testing.assert_close(_array(view.weights), result.weights["head"])
    torch.testing.assert_close(_array(view.attention), result.attention)
    torch.testing.assert_close(_array(view.activation_mean), result.activation_mean["head"])
    torch.testing.assert_close(_array(view.dla), result.dla["head"])
    into_a = activation_patching(a, tokens, other=b, metric=metric, grid="head")
    torch.testing.assert_close(_array(view.patching), into_a.recovery, equal_nan=True)
    assert view.metric_a == pytest.approx(into_a.corrupted_value)
    assert view.metric_b == pytest.approx(into_a.clean_value)
    assert (view.layer, view.head) == (1, 2)  # the head whose weights changed most
    view.patch_into = "other"  # the way back: A's activations into B
    back = activation_patching(b, tokens, other=a, metric=metric, grid="head")
    torch.testing.assert_close(_array(view.patching_values), back.values)
    assert view.metric_a == pytest.approx(into_a.corrupted_value)  # still A's own
    view.granularity = "neuron"
    torch.testing.assert_close(_array(view.weights), result.weights["neuron"])
    assert view.patching["shape"] == [2, 64]


def test_a_click_shows_the_head_in_both_models(pair):
    a, b, tokens, metric = pair
    view = DiffView(a, tokens, other=b)
    assert view.patching["shape"] == [0]  # no metric: no patching grid
    view.cell = [0, 3]
    view.example = 2
    assert (view.layer, view.head) == (0, 3)
    torch.testing.assert_close(
        _array(view.pattern_a), attention_patterns(a, tokens[2:3])[0, 0, 3], atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        _array(view.pattern_b), attention_patterns(b, tokens[2:3])[0, 0, 3], atol=1e-3, rtol=0
    )
    assert len(view.prompt) == tokens.shape[1]
    view.cell = [5, 0]
    assert "layer 5 out of range" in view.error
    with pytest.raises(traitlets.TraitError, match="example 9 out of range"):
        view.example = 9


def test_the_selection_links_to_other_views(pair):
    a, b, tokens, metric = pair
    view = DiffView(a, tokens, other=b, metric=metric)
    attention = AttentionView(a, tokens)
    traitlets.link((view, "layer"), (attention, "layer"))
    traitlets.link((view, "head"), (attention, "head"))
    view.cell = [0, 1]  # a click on the patching grid (or any map)
    assert (attention.layer, attention.head) == (0, 1)
    attention.head = 3
    assert view.head == 3
    torch.testing.assert_close(
        _array(view.pattern_b), attention_patterns(b, tokens[:1])[0, 0, 3], atol=1e-3, rtol=0
    )


def test_bad_arguments_get_sentences(pair, attn_model, mnist_mlp):
    a, b, tokens, _ = pair
    with pytest.raises(ValueError, match="one architecture"):
        DiffView(a, tokens, other=attn_model)
    with pytest.raises(ValueError, match="needs transformers"):
        DiffView(mnist_mlp, torch.rand(2, 1, 28, 28), other=mnist_mlp.copy())
    view = DiffView(attn_model, tokens, other=attn_model.copy())
    assert view.granularities == ["head"]
    with pytest.raises(traitlets.TraitError, match="attention-only"):
        view.granularity = "neuron"


def test_an_sae_adds_the_cross_model_feature_grid_both_ways(pair):
    a, b, tokens, metric = pair
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=32, d_sae=12, k=3)
    view = DiffView(a, tokens, other=b, metric=metric, sae=sae)
    into_a = activation_patching(a, tokens, other=b, metric=metric, grid="feature", sae=sae)
    assert view.feature_patching["shape"] == [1, 12] and view.sae_name == sae.name
    torch.testing.assert_close(_array(view.feature_patching_values), into_a.values)
    torch.testing.assert_close(_array(view.feature_patching), into_a.recovery, equal_nan=True)
    view.patch_into = "other"
    back = activation_patching(b, tokens, other=a, metric=metric, grid="feature", sae=sae)
    torch.testing.assert_close(_array(view.feature_patching_values), back.values)
    assert DiffView(a, tokens, other=b, metric=metric).feature_patching["shape"] == [0]
