"""The patching grids beyond resid/head and path patching: shapes, axes, options and errors
(values against transformer-lens: tests/reference)."""

from __future__ import annotations

import doctest

import pytest
import torch

from explorer.analysis import activation_patching, attribution_patching, metrics, path_patching
from explorer.analysis.patching import GRIDS, grid_axes
from explorer.analysis.units import Head


@pytest.fixture(scope="module")
def pair():
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=30, n_ctx=16, seed=1
    )
    model = zoo.transformer(cfg)
    clean = torch.tensor([[1, 4, 7, 4, 9], [2, 3, 5, 3, 8]])
    corrupted = clean.clone()
    corrupted[:, 1] = torch.tensor([11, 12])
    return model, clean, corrupted, metrics.logit_diff(clean[:, 1], corrupted[:, 1])


def test_attribution_patching_covers_every_grid(pair):
    model, clean, corrupted, metric = pair
    expected = {"position": 5, "head": 4, "dest position": 5, "neuron": 64}
    for grid in GRIDS:
        result = attribution_patching(model, clean, corrupted=corrupted, metric=metric, grid=grid)
        assert result.values.shape == (2, *(expected[a] for a in grid_axes(grid)[1:])), grid
        assert torch.isfinite(result.values).all()


def test_patching_by_position_sums_to_all_positions_to_first_order(pair):
    """Attribution estimates are linear: per-position cells add up to the all-positions cell."""
    model, clean, corrupted, metric = pair
    by_pos = attribution_patching(
        model, clean, corrupted=corrupted, metric=metric, grid="head_by_pos"
    )
    all_pos = attribution_patching(model, clean, corrupted=corrupted, metric=metric, grid="head")
    c = by_pos.corrupted_value
    assert torch.allclose((by_pos.values - c).sum(1) + c, all_pos.values, atol=1e-5)


def test_patching_grid_errors(pair):
    model, clean, corrupted, metric = pair
    with pytest.raises(ValueError, match="unknown patching grid 'qq'"):
        activation_patching(model, clean, corrupted=corrupted, metric=metric, grid="qq")
    from explorer.models import zoo

    attn_only = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=30)
    with pytest.raises(ValueError, match="attention-only: no mlp_out grid"):
        activation_patching(attn_only, clean, corrupted=corrupted, metric=metric, grid="mlp_out")


def test_path_patching_result_and_errors(pair):
    model, clean, corrupted, metric = pair
    sweep = path_patching(model, clean, corrupted=corrupted, receivers="head 1.0", metric=metric)
    assert sweep.values.shape == (2, 4) and sweep.values[1].isnan().all()
    (head, change), _ = sweep.top(2)
    assert isinstance(head, Head) and head.layer == 0  # a Head, as every result's top() gives
    biggest = (sweep.values - sweep.clean_value).nan_to_num(0.0).abs().max()
    assert abs(change) == pytest.approx(float(biggest))
    assert repr(sweep).startswith("PathPatchingResult(sweep -> L1H0 via q/k/v")
    assert len(sweep.to_dataframe()) == 8 and "Path patching" in sweep._repr_html_()
    assert sweep.change.shape == (2, 4)
    with pytest.raises(ValueError, match="before the earliest receiver"):
        path_patching(
            model,
            clean,
            corrupted=corrupted,
            senders="head 1.1",
            receivers="head 1.0",
            metric=metric,
        )
    with pytest.raises(ValueError, match="no head lies upstream"):
        path_patching(model, clean, corrupted=corrupted, receivers="head 0.0", metric=metric)
    with pytest.raises(ValueError, match="unknown receiver input 'z'"):
        path_patching(
            model,
            clean,
            corrupted=corrupted,
            receivers="head 1.0",
            receiver_inputs="z",
            metric=metric,
        )
    with pytest.raises(ValueError, match="receivers must be heads"):
        path_patching(model, clean, corrupted=corrupted, receivers="neuron 1.0", metric=metric)


def test_path_patching_docstring():
    import importlib

    module = importlib.import_module("explorer.analysis.path_patching")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
