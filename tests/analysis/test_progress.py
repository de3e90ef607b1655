"""Progress measures: Gini and weight norm."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis.progress import gini, weight_norm


def _pairwise_gini(x: torch.Tensor) -> float:
    # The textbook definition: mean absolute difference over twice the mean.
    x = x.double().abs()
    n = x.numel()
    return float((x[:, None] - x[None]).abs().sum() / (2 * n * n * x.mean()))


def test_gini_of_one_hot_and_uniform():
    n = 10
    assert math.isclose(gini(torch.eye(n)[3] * 5), (n - 1) / n)
    assert gini(torch.full((n,), 2.0)) == 0.0
    assert gini(torch.zeros(4)) == 0.0


def test_gini_matches_the_pairwise_definition():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.rand(37, generator=gen) ** 3
        assert math.isclose(gini(x), _pairwise_gini(x), rel_tol=1e-9)
    assert gini(torch.tensor([-1.0, 1.0])) == 0.0  # magnitudes, not signs


def test_gini_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        gini(torch.tensor([]))
    with pytest.raises(ValueError, match="NaN"):
        gini(torch.tensor([1.0, float("nan")]))


def test_weight_norm_is_the_l2_norm_of_all_parameters():
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(2.0)
    assert math.isclose(weight_norm(layer), math.sqrt(6 * 1 + 2 * 4), rel_tol=1e-6)
    with pytest.raises(TypeError, match="nn.Module"):
        weight_norm("not a model")


def test_names_that_moved_out_warn_and_still_work():
    from explorer.analysis import curves
    from explorer.analysis.progress import first_crossing  # re-exported: the progress namespace
    from explorer.studies import grokking_phases

    assert first_crossing is curves.first_crossing
    with pytest.warns(DeprecationWarning, match=r"studies\.grokking_phases\.detect_phases"):
        from explorer.analysis.progress import detect_phases
    assert detect_phases is grokking_phases.detect_phases
    with pytest.raises(ImportError, match="nothing_here"):
        from explorer.analysis.progress import nothing_here  # noqa: F401
