"""PatchingView without a browser: grids and methods are the analysis results, cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

from explorer.analysis import activation_patching, attribution_patching, metrics
from explorer.data import repeated_tokens
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.views import PatchingView


@pytest.fixture
def pair():
    clean = repeated_tokens(4, 6, 30, seed=0)
    corrupted = clean.clone()
    corrupted[:, 1:7] = repeated_tokens(4, 6, 30, seed=1)[:, 1:7]
    return clean, corrupted, metrics.repeated_half_loss(clean)


def test_grids_and_methods_show_the_analysis_results(attn_model, pair):
    clean, corrupted, metric = pair
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=metric)
    assert view.grids[:2] == ["resid", "head"] and view.grid == "resid"
    assert "mlp_out" not in view.grids and {"q", "pattern_by_pos", "path"} <= set(view.grids)
    resid = activation_patching(attn_model, clean, corrupted=corrupted, metric=metric, grid="resid")
    assert np.allclose(view.values.numpy(), resid.values.numpy(), atol=1e-6)
    assert np.allclose(view.recovery.numpy(), resid.recovery.numpy(), atol=1e-5)
    assert view.col_labels[1] == "1 " + attn_model.to_str_tokens(clean[0])[1]
    view.grid = "head"
    expected = activation_patching(
        attn_model, clean, corrupted=corrupted, metric=metric, grid="head"
    )
    assert np.allclose(view.values.numpy(), expected.values.numpy(), atol=1e-6)
    assert view.clean_value == pytest.approx(expected.clean_value)
    view.method = "attribution"
    approx = attribution_patching(
        attn_model, clean, corrupted=corrupted, metric=metric, grid="head"
    )
    assert np.allclose(view.values.numpy(), approx.values.numpy(), atol=1e-5)
    passes = attn_model.spent.forward
    for method, grid in [("attribution", "head"), ("activation", "head"), ("activation", "resid")]:
        view.method, view.grid = method, grid  # each seen before: shown again, not rerun
        assert view.error == "" and view.values["shape"] != [0]
    assert attn_model.spent.forward == passes
    assert np.allclose(view.values.numpy(), resid.values.numpy(), atol=1e-6)


def test_attribution_recovery_does_not_shrink_with_the_batch(attn_model, pair):
    clean, corrupted, _ = pair
    one, four = (clean[:1], corrupted[:1]), (clean[:1].repeat(4, 1), corrupted[:1].repeat(4, 1))
    shown = []
    for c, x in (one, four):
        view = PatchingView(
            attn_model, c, corrupted=x, metric=metrics.repeated_half_loss(c), method="attribution"
        )
        shown.append(view.recovery.numpy())
    assert np.abs(shown[0]).max() > 1e-3
    assert np.allclose(shown[0], shown[1], atol=1e-4)  # 4x smaller before the batch fix


def test_selecting_a_cell_sets_the_linkable_traits(attn_model, pair):
    clean, corrupted, metric = pair
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=metric, grid="head")
    view.select(1, 3)
    assert (view.layer, view.head) == (1, 3)
    view.grid = "resid"
    view.select(0, 5)
    assert (view.layer, view.position) == (0, 5)


def test_mlp_models_patch_neurons(mnist_mlp):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 1, 28, 28, generator=g), torch.randint(0, 10, (6,), generator=g)
    view = PatchingView(mnist_mlp, x, corrupted=x.flip(0), metric=metrics.neg_cross_entropy(y))
    assert view.grids == ["neuron"] and view.values["shape"] == [2, 16]
    with pytest.raises(traitlets.TraitError, match="no 'resid' grid"):
        view.grid = "resid"


def test_mismatched_inputs_are_refused(attn_model):
    with pytest.raises(ValueError, match="same shape"):
        PatchingView(
            attn_model,
            repeated_tokens(2, 5, 30),
            corrupted=repeated_tokens(2, 6, 30),
            metric=metrics.next_token_loss(repeated_tokens(2, 5, 30)),
        )


def test_by_position_sites_show_one_row_per_head(attn_model, pair):
    clean, corrupted, metric = pair
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=metric, grid="k_by_pos")
    expected = activation_patching(
        attn_model, clean, corrupted=corrupted, metric=metric, grid="k_by_pos"
    )
    n_pos = clean.shape[1]
    assert view.values["shape"] == [8, n_pos] and view.row_labels[5] == "L1H1"
    shown = view.values.numpy().reshape(2, 4, n_pos)  # rows are (layer, head)
    assert np.allclose(shown, expected.values.transpose(1, 2).numpy(), atol=1e-6)
    view.cell = [5, 3]  # a click in the browser: L1H1 at position 3
    assert (view.layer, view.head, view.position) == (1, 1, 3)
    assert view.selected_cell == [5, 3] and view.selected_text.startswith(
        "layer 1, head 1, position 3"
    )
    view.grid = "pattern_by_pos"
    expected = activation_patching(
        attn_model, clean, corrupted=corrupted, metric=metric, grid="pattern_by_pos"
    )
    assert np.allclose(view.values.numpy().reshape(2, 4, n_pos), expected.values.numpy(), atol=1e-6)
    assert "dest position" in view.selected_text


def test_path_grid_uses_the_selected_head_as_receiver(attn_model, pair):
    from explorer.analysis import path_patching

    clean, corrupted, metric = pair
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=metric, grid="head")
    view.cell = [1, 2]  # select head 1.2 by a click
    view.grid = "path"
    expected = path_patching(
        attn_model, clean, corrupted=corrupted, receivers="head 1.2", metric=metric
    )
    assert np.allclose(view.values.numpy(), expected.values.numpy(), atol=1e-6, equal_nan=True)
    assert view.receivers_used == ["head 1.2"]
    view.cell = [0, 3]  # clicking a sender selects it, the receiver stays
    assert (view.layer, view.head) == (0, 3) and view.error == ""
    view.receiver_inputs = ["k"]
    expected = path_patching(
        attn_model,
        clean,
        corrupted=corrupted,
        receivers="head 1.2",
        receiver_inputs="k",
        metric=metric,
    )
    assert np.allclose(view.values.numpy(), expected.values.numpy(), atol=1e-6, equal_nan=True)
    view.receivers = ["head 1.0", "head 1.1"]
    expected = path_patching(
        attn_model,
        clean,
        corrupted=corrupted,
        receivers=["head 1.0", "head 1.1"],
        receiver_inputs="k",
        metric=metric,
    )
    assert view.receivers_used == ["head 1.0", "head 1.1"]
    assert np.allclose(view.values.numpy(), expected.values.numpy(), atol=1e-6, equal_nan=True)
    view.receivers = ["head 0.1"]  # no upstream head: the banner says why
    assert "no head lies upstream" in view.error


def test_path_grid_without_a_receiver_says_how_to_pick_one(attn_model, pair):
    clean, corrupted, metric = pair
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=metric, grid="path")
    assert "needs a receiver head after layer 0" in view.error


def test_the_feature_grid_shows_sae_feature_patching_and_a_click_selects_it_in_a_feature_view():
    from explorer.features import SparseAutoencoder
    from explorer.views import FeatureView

    model = zoo.transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32,
                                              d_vocab=20, n_ctx=12, seed=1))  # fmt: skip
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=16, d_sae=12, k=4, seed=0)
    clean = torch.randint(0, 20, (4, 8), generator=torch.Generator().manual_seed(0))
    corrupted = torch.randint(0, 20, (4, 8), generator=torch.Generator().manual_seed(1))
    metric = metrics.logit_diff(1, 2)
    assert "feature" not in PatchingView(model, clean, corrupted=corrupted, metric=metric).grids
    view = PatchingView(model, clean, corrupted=corrupted, metric=metric, sae=sae, grid="feature")
    expected = activation_patching(
        model, clean, corrupted=corrupted, metric=metric, grid="feature", sae=sae
    )
    assert view.values["shape"] == [1, 12] and view.col_labels[:2] == ["F0", "F1"]
    assert np.allclose(view.values.numpy(), expected.values.numpy(), atol=1e-6)
    assert view.row_labels == [sae.hook]
    features = FeatureView(model, clean, sae=sae)
    traitlets.link((view, "selected"), (features, "selected"))
    view.cell = [0, 7]  # a click on feature 7's cell
    assert (view.feature, view.selected, features.feature) == (7, "F7", 7)
    assert view.selected_cell == [0, 7] and "F7" in view.selected_text
    features.selected = "F3"  # and back: selecting in the FeatureView marks the cell
    assert view.selected_cell == [0, 3]
    with pytest.raises(traitlets.TraitError, match="feature 12 out of range"):
        view.feature = 12
