"""The grokking phases (explorer.studies.grokking_phases) on planted curves: each rule of
the module docstring, spikes, and bad input. tests/studies/test_grokking_phases.py holds
them to real runs they were not tuned on."""

from __future__ import annotations

import pytest
import torch

import explorer.analysis
from explorer.studies import grokking_phases
from explorer.studies.grokking_phases import Phases, detect_phases


def _grokking_curves():
    """Planted curves (log losses, linear in steps) where each phase has its own signature.

    Memorised at 100. The restricted loss is flat until 200, then falls to 300 (circuit
    formation starts at 10% of that fall, step 210); the test loss rises a little, stays
    flat and falls from 600 to 800; the excluded loss falls with the train loss while
    memorising, then rises from 500 to 900; test accuracy rises from 2% at 650 to 100% at
    750. Cleanup: the test loss's fall, from about 620 (10% of it) to about 780 (90% of it).
    """
    steps = torch.arange(0, 1001, 10)
    train_acc = torch.where(steps >= 100, 1.0, steps / 100 * 0.9)

    def ramp(a, b, lo, hi):  # lo before a, hi after b, linear in between
        return lo + (hi - lo) * ((steps - a) / (b - a)).clamp(0, 1)

    log_test = ramp(0, 100, 1.0, 2.0) + ramp(100, 400, 0.0, 0.2) - ramp(600, 800, 0.0, 6.2)
    log_restricted = ramp(200, 300, 1.5, -4.5)
    log_excluded = ramp(0, 100, 1.0, -3.0) + ramp(500, 900, 0.0, 5.0)
    test_acc = ramp(650, 750, 0.02, 1.0)
    curves = (steps, train_acc, log_test.exp(), log_restricted.exp(), log_excluded.exp())
    return curves, test_acc


def test_detect_phases_on_planted_curves():
    (steps, train_acc, test, restricted, excluded), test_acc = _grokking_curves()
    phases = detect_phases(steps, train_acc, test, restricted, excluded, test_acc=test_acc)
    assert phases.memorized == 100
    # (each boundary is the first logged step at or past the planted one: 10 steps apart)
    assert 210 <= phases.circuit_start <= 220  # restricted loss has done 10% of its fall
    assert 620 <= phases.cleanup_start <= 630  # test loss 10% down from its peak
    assert 780 <= phases.cleanup_end <= 790  # test loss 90% down
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


def test_boundaries_are_logged_epochs_when_the_measures_are_taken_at_checkpoints():
    (steps, train_acc, test, restricted, excluded), test_acc = _grokking_curves()
    logged = torch.arange(0, 1001, 10) + torch.where(steps > 0, 3, 0)  # 0, 13, 23, ..., 1003
    checkpoints = torch.tensor([0, 1, 2, 5, 9, 144, 190, 260, 400, 700, 850, 1003])
    at = torch.searchsorted(logged, checkpoints).clamp(max=len(steps) - 1)
    # the checkpoints' measures, taken from the planted curves at the nearest logged row
    phases = detect_phases(
        logged, train_acc, test, restricted[at], excluded[at], test_acc=test_acc,
        measured_at=checkpoints,
    )  # fmt: skip
    assert phases.memorized == 103  # the logged epoch, not the next checkpoint (144)
    for boundary in (phases.circuit_start, phases.cleanup_start, phases.cleanup_end):
        assert boundary in logged.tolist() and boundary not in checkpoints.tolist()
    assert 190 < phases.circuit_start < 260  # between the checkpoints around the fall
    with pytest.raises(ValueError, match="restricted_loss"):
        detect_phases(logged, train_acc, test, restricted, excluded, test_acc=test_acc,
                      measured_at=checkpoints)  # fmt: skip


def test_a_one_row_optimizer_spike_starts_no_phase():
    # Adam's spike: train accuracy dips to 0.47 for one logged row, the test loss peaks (or
    # plunges) and the restricted loss jumps; no boundary moves by more than one row
    (steps, train_acc, test, restricted, excluded), test_acc = _grokking_curves()
    clean = detect_phases(steps, train_acc, test, restricted, excluded, test_acc=test_acc)
    for at in (110, 150, 400, 590, 640, 700):
        for factor in (20.0, 0.05):
            i = int(torch.nonzero(steps == at)[0, 0])
            acc, loss, res = train_acc.clone(), test.clone(), restricted.clone()
            acc[i], loss[i], res[i] = 0.47, loss[i] * factor, res[i] * 20.0
            spiked = detect_phases(steps, acc, loss, res, excluded, test_acc=test_acc)
            for name in ("memorized", "circuit_start", "cleanup_start", "cleanup_end"):
                moved = abs(getattr(spiked, name) - getattr(clean, name))
                assert moved <= 10, (at, factor, name, getattr(spiked, name))


def test_cleanup_holds_the_whole_rise_of_test_accuracy():
    (steps, train_acc, test, restricted, excluded), _ = _grokking_curves()
    # test accuracy passes 50% before the test loss has done 10% of its fall, and
    # passes 95% only after it has done 90% of it: cleanup widens to hold the rise
    late = torch.where(steps < 560, 0.02, torch.where(steps > 840, 0.99, 0.6))
    phases = detect_phases(steps, train_acc, test, restricted, excluded, test_acc=late)
    assert phases.cleanup_start <= 550 and phases.cleanup_end > 850
    # an early peak of the test loss (an Adam spike lasting a few rows) and its recovery do
    # not start cleanup: it starts with the last fall
    bump = test * torch.where((steps >= 300) & (steps <= 340), 50.0, 1.0)
    _, test_acc = _grokking_curves()
    phases = detect_phases(steps, train_acc, bump, restricted, excluded, test_acc=test_acc)
    assert 620 <= phases.cleanup_start <= 640


def test_cleanup_needs_the_excluded_loss_to_rise():
    # the test loss falls on its own (a model that generalises without the key frequencies)
    (steps, train_acc, test, restricted, _), test_acc = _grokking_curves()
    flat = torch.full_like(test, 0.05)
    phases = detect_phases(steps, train_acc, test, restricted, flat, test_acc=test_acc)
    assert phases.circuit_start <= 220 and phases.cleanup_start is None


def test_cleanup_stays_open_until_test_accuracy_passes_95_percent():
    (steps, train_acc, test, restricted, excluded), test_acc = _grokking_curves()
    short = steps <= 740  # the run stops while test accuracy is at 92%
    phases = detect_phases(steps[short], train_acc[short], test[short], restricted[short],
                           excluded[short], test_acc=test_acc[short])  # fmt: skip
    assert 620 <= phases.cleanup_start <= 630 and phases.cleanup_end is None
    assert phases.as_list()[-1].name == "cleanup" and not phases.grokked


def test_detect_phases_when_nothing_happens():
    steps = torch.arange(0, 100, 10)
    flat = torch.full((10,), 3.0)
    chance = torch.full((10,), 0.01)
    never = detect_phases(steps, torch.full((10,), 0.5), flat, flat, flat, test_acc=chance)
    assert never.memorized is None and not never.grokked
    assert [p.name for p in never.as_list()] == ["memorisation"]
    memorised_only = detect_phases(steps, torch.ones(10), flat, flat, flat, test_acc=chance)
    assert memorised_only.memorized == 0 and memorised_only.circuit_start is None
    assert memorised_only.cleanup_start is None
    assert [p.name for p in memorised_only.as_list()] == ["memorisation"]


def test_detect_phases_checks_its_inputs():
    one = [1.0, 1.0]
    with pytest.raises(ValueError, match="test_loss must be positive"):
        detect_phases([0, 1], one, [0.0, 1.0], one, one, test_acc=one)
    with pytest.raises(ValueError, match="excluded_loss must be positive"):
        detect_phases([0, 1], one, one, one, [1.0, -1.0], test_acc=one)
    with pytest.raises(ValueError, match="fraction"):
        detect_phases([0, 1], one, one, one, one, test_acc=one, fraction=0.6)
    with pytest.raises(ValueError, match="entries"):
        detect_phases([0, 1, 2], one, one, one, one, test_acc=one)
    with pytest.raises(ValueError, match="test_acc has 1"):
        detect_phases([0, 1], one, one, one, one, test_acc=[1.0])
    with pytest.raises(ValueError, match="window must be an odd number"):
        detect_phases([0, 1], one, one, one, one, test_acc=one, window=4)


def test_the_phases_left_analysis_and_the_old_names_warn():
    assert "detect_phases" not in explorer.analysis.__all__
    with pytest.warns(DeprecationWarning, match=r"write explorer\.studies\.grokking_phases"):
        old = explorer.analysis.detect_phases
    assert old is grokking_phases.detect_phases
    with pytest.warns(DeprecationWarning, match="Phases"):
        from explorer.analysis import Phases as OldPhases
    assert OldPhases is Phases
    with pytest.raises(AttributeError, match="has no attribute 'detect_phase'"):
        explorer.analysis.detect_phase  # noqa: B018
