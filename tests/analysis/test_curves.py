"""Curve readers (explorer.analysis.curves): first crossing and the steepest change."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import curves
from explorer.analysis.curves import detect_phase_change, first_crossing


def test_first_crossing():
    assert first_crossing([0, 5, 9], [3.0, 1.0, 0.1], 1.0, above=False) == 5
    assert first_crossing([0, 5, 9], [0.1, 0.2, 0.3], 0.9) is None
    with pytest.raises(ValueError, match="increasing"):
        first_crossing([0, 5, 5], [1, 2, 3], 1)


def sigmoid_curve(center: int, *, n: int = 200, every: int = 10, seed: int = 0):
    """A loss curve: a fast early transient, a plateau, an abrupt fall at ``center``."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.arange(n) * every
    plateau = 4.0 + 0.5 * torch.exp(-steps / 30.0)
    fall = 3.0 * torch.sigmoid((steps - center) / 40.0)
    return steps, plateau - fall + 0.05 * torch.randn(n, generator=g)


@pytest.mark.parametrize("center", [500, 1200, 1700])
def test_phase_change_is_found_where_the_curve_falls(center):
    steps, loss = sigmoid_curve(center)
    change = detect_phase_change(steps, loss)
    assert abs(change.step - center) <= 60
    assert change.start < change.step < change.end
    assert center - 300 < change.start and change.end < center + 300
    assert change.before == pytest.approx(4.0, abs=0.15)
    assert change.after == pytest.approx(1.0, abs=0.15)
    assert change.change == pytest.approx(3.0, abs=0.3)
    rise = detect_phase_change(steps, -loss, direction="rise")
    assert rise.step == change.step and rise.change == pytest.approx(change.change)


def test_phase_change_rejects_bad_curves():
    with pytest.raises(ValueError, match="never falls"):
        detect_phase_change(range(10), [float(i) for i in range(10)])
    with pytest.raises(ValueError, match="at least 5"):
        detect_phase_change([0, 1], [1.0, 0.0])
    with pytest.raises(ValueError, match="differ in length"):
        detect_phase_change(range(6), [1.0] * 5)
    with pytest.raises(ValueError, match="increasing"):
        detect_phase_change([0, 2, 1, 3, 4], [5.0, 4, 3, 2, 1])
    with pytest.raises(ValueError, match="NaN"):
        detect_phase_change(range(5), [5.0, float("nan"), 3, 2, 1])
    with pytest.raises(ValueError, match="direction"):
        detect_phase_change(range(5), [5.0, 4, 3, 2, 1], direction="up")


def test_the_old_home_of_the_phase_change_warns_and_still_works():
    with pytest.warns(DeprecationWarning, match=r"write explorer\.analysis\.curves\.detect_phase"):
        from explorer.analysis.induction import detect_phase_change as old
    assert old is curves.detect_phase_change
    with pytest.warns(DeprecationWarning, match="PhaseChange"):
        from explorer.analysis.induction import PhaseChange
    steps, loss = sigmoid_curve(800)
    assert isinstance(old(steps, loss), PhaseChange)
