"""Progress measures: Gini, weight norm, crossings and phase detection."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis.progress import detect_phases, first_crossing, gini, weight_norm


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


def test_first_crossing():
    assert first_crossing([0, 5, 9], [3.0, 1.0, 0.1], 1.0, above=False) == 5
    assert first_crossing([0, 5, 9], [0.1, 0.2, 0.3], 0.9) is None
    with pytest.raises(ValueError, match="increasing"):
        first_crossing([0, 5, 5], [1, 2, 3], 1)


def _grokking_curves():
    steps = torch.arange(0, 1001, 10)
    train_acc = torch.where(steps >= 100, 1.0, steps / 100 * 0.9)
    # test loss: rises while memorising, plateaus, falls from step 600 to 800, then flat
    log_loss = torch.where(
        steps < 100,
        1.0 + steps / 100,
        torch.where(
            steps < 600, 2.0, torch.where(steps < 800, 2.0 - 6.0 * (steps - 600) / 200, -4.0)
        ),
    )
    return steps, train_acc, log_loss.exp()


def test_detect_phases_on_planted_curves():
    steps, train_acc, test_loss = _grokking_curves()
    phases = detect_phases(steps, train_acc, test_loss)
    assert phases.memorised == 100
    # 10% and 90% of the 6-nat log-drop from step 600 at 0.03 nats per step
    assert 600 <= phases.cleanup_start <= 630
    assert 760 <= phases.cleanup_end <= 790
    assert phases.grokked
    names = [p.name for p in phases.as_list()]
    assert names == ["memorisation", "circuit formation", "cleanup"]
    assert phases.phase_at(50) == "memorisation"
    assert phases.phase_at(300) == "circuit formation"
    assert phases.phase_at(700) == "cleanup"
    assert phases.phase_at(950) == "after cleanup"


def test_detect_phases_when_nothing_happens():
    steps = torch.arange(0, 100, 10)
    never = detect_phases(steps, torch.full((10,), 0.5), torch.full((10,), 3.0))
    assert never.memorised is None and not never.grokked
    assert [p.name for p in never.as_list()] == ["memorisation"]
    memorised_only = detect_phases(steps, torch.ones(10), torch.full((10,), 3.0))
    assert memorised_only.memorised == 0 and memorised_only.cleanup_start is None
    assert memorised_only.as_list()[-1].name == "circuit formation"


def test_detect_phases_checks_its_inputs():
    with pytest.raises(ValueError, match="positive"):
        detect_phases([0, 1], [1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="start_fraction"):
        detect_phases([0, 1], [1.0, 1.0], [1.0, 1.0], start_fraction=0.9, end_fraction=0.5)
    with pytest.raises(ValueError, match="entries"):
        detect_phases([0, 1, 2], [1.0, 1.0], [1.0, 1.0])
