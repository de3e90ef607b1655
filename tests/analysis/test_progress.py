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
    """Planted curves (log losses, linear in steps) where each phase has its own signature.

    Memorised at 100. The restricted loss is flat until 200, then falls to 300 (circuit
    formation starts at 10% of that fall, step 210); the test loss rises a little, stays
    flat and falls from 600 to 800; the excluded loss falls with the train loss while
    memorising, then rises from 500 to 900. Cleanup: test loss falling and excluded loss
    rising, from about 620 (10% of the test loss's fall) to about 780 (90% of it).
    """
    steps = torch.arange(0, 1001, 10)
    train_acc = torch.where(steps >= 100, 1.0, steps / 100 * 0.9)

    def ramp(a, b, lo, hi):  # lo before a, hi after b, linear in between
        return lo + (hi - lo) * ((steps - a) / (b - a)).clamp(0, 1)

    log_test = ramp(0, 100, 1.0, 2.0) + ramp(100, 400, 0.0, 0.2) - ramp(600, 800, 0.0, 6.2)
    log_restricted = ramp(200, 300, 1.5, -4.5)
    log_excluded = ramp(0, 100, 1.0, -3.0) + ramp(500, 900, 0.0, 5.0)
    return steps, train_acc, log_test.exp(), log_restricted.exp(), log_excluded.exp()


def test_detect_phases_on_planted_curves():
    steps, train_acc, test, restricted, excluded = _grokking_curves()
    phases = detect_phases(steps, train_acc, test, restricted, excluded)
    assert phases.memorized == 100
    # (each boundary is the first logged step at or past the planted one: 10 steps apart)
    assert 210 <= phases.circuit_start <= 220  # restricted loss has done 10% of its fall
    assert 620 <= phases.cleanup_start <= 630  # test loss 10% down from its peak, excluded up
    assert 780 <= phases.cleanup_end <= 790  # test loss 90% down (excluded loss still rising)
    assert phases.grokked
    names = [(p.name, p.start, p.end) for p in phases.as_list()]
    assert names == [("memorisation", 0, 100), ("circuit formation", phases.circuit_start,
                     phases.cleanup_start), ("cleanup", phases.cleanup_start,
                     phases.cleanup_end)]  # fmt: skip
    assert phases.phase_at(50) == "memorisation"
    assert phases.phase_at(150) == "between phases"
    assert phases.phase_at(300) == "circuit formation"
    assert phases.phase_at(700) == "cleanup"
    assert phases.phase_at(950) == "after cleanup"


def test_cleanup_needs_the_excluded_loss_to_rise():
    # the test loss falls on its own (a model that generalises without the key frequencies)
    steps, train_acc, test, restricted, _ = _grokking_curves()
    flat = torch.full_like(test, 0.05)
    phases = detect_phases(steps, train_acc, test, restricted, flat)
    assert phases.circuit_start <= 220 and phases.cleanup_start is None
    # and cleanup ends when the excluded loss stops rising, even if the test loss goes on
    steps, train_acc, test, restricted, excluded = _grokking_curves()
    early = torch.minimum(excluded, excluded[steps == 700])
    assert detect_phases(steps, train_acc, test, restricted, early).cleanup_end < 780


def test_detect_phases_when_nothing_happens():
    steps = torch.arange(0, 100, 10)
    flat = torch.full((10,), 3.0)
    never = detect_phases(steps, torch.full((10,), 0.5), flat, flat, flat)
    assert never.memorized is None and not never.grokked
    assert [p.name for p in never.as_list()] == ["memorisation"]
    memorised_only = detect_phases(steps, torch.ones(10), flat, flat, flat)
    assert memorised_only.memorized == 0 and memorised_only.circuit_start is None
    assert memorised_only.cleanup_start is None
    assert [p.name for p in memorised_only.as_list()] == ["memorisation"]


def test_detect_phases_checks_its_inputs():
    one = [1.0, 1.0]
    with pytest.raises(ValueError, match="test_loss must be positive"):
        detect_phases([0, 1], one, [0.0, 1.0], one, one)
    with pytest.raises(ValueError, match="excluded_loss must be positive"):
        detect_phases([0, 1], one, one, one, [1.0, -1.0])
    with pytest.raises(ValueError, match="fraction"):
        detect_phases([0, 1], one, one, one, one, fraction=0.6)
    with pytest.raises(ValueError, match="entries"):
        detect_phases([0, 1, 2], one, one, one, one)
