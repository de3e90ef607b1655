"""Reading logged training curves: where a curve first crosses a threshold, and where it
changes most steeply (a phase change).

These take steps and values (a run's metrics, or measures taken at its checkpoints), never
a model. ``explorer.studies.grokking_phases`` builds the grokking study's three phases on
them.

- ``first_crossing``: the first step at which a curve reaches a threshold.
- ``detect_phase_change``: the step where a curve falls (or rises) most steeply, with the
  plateau levels either side and where the change starts and ends.

>>> steps = list(range(0, 1000, 10))
>>> loss = [4.0 if s < 500 else 1.0 for s in steps]
>>> first_crossing(steps, loss, 1.0, above=False)
500
>>> detect_phase_change(steps, loss).after
1.0
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float

from explorer._checks import check_choice, check_curve, check_fraction, check_positive
from explorer._display import RecordShown

__all__ = ["PhaseChange", "detect_phase_change", "first_crossing"]


def first_crossing(
    steps: Sequence[int] | torch.Tensor,
    values: Sequence[float] | torch.Tensor,
    threshold: float,
    *,
    above: bool = True,
) -> int | None:
    """The first step whose value is ``>= threshold`` (``<=`` if ``above=False``), or None.

    >>> first_crossing([0, 10, 20, 30], [0.1, 0.5, 0.99, 1.0], 0.99)
    20
    """
    s, v = check_curve(steps, values)
    hit = v >= threshold if above else v <= threshold
    where = torch.nonzero(hit)
    return int(s[where[0, 0]]) if len(where) else None


@dataclass(frozen=True, repr=False)
class PhaseChange(RecordShown):
    """Where a training curve falls (or rises) most steeply.

    ``step`` is the steepest point; ``before`` and ``after`` are the levels of the curve
    either side (medians of the raw values); ``start`` and ``end`` are the steps where the
    smoothed curve has covered ``edge`` and ``1 - edge`` of the change.
    """

    step: int
    start: int
    end: int
    before: float
    after: float
    direction: str

    @property
    def change(self) -> float:
        """``before - after`` for a fall, ``after - before`` for a rise (> 0)."""
        return self.before - self.after if self.direction == "fall" else self.after - self.before


def _smooth(values: list[float], half: int) -> list[float]:
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(sum(window) / len(window))
    return out


def detect_phase_change(
    steps: Sequence[int] | torch.Tensor,
    values: Sequence[float] | Float[torch.Tensor, " n"],
    *,
    direction: str = "fall",
    window: int | None = None,
    edge: float = 0.1,
) -> PhaseChange:
    """Find the abrupt change in a curve logged at ``steps``.

    The curve is smoothed by a centred moving average over ``2 * window + 1`` points
    (default: a twentieth of the points, at least 1); the phase change is where the
    smoothed curve moves most over ``2 * window`` points in ``direction`` ("fall" for a
    loss, "rise" for a head score). The levels before and after are medians of the raw
    values over the ``2 * window`` points on each side.

    >>> steps = list(range(0, 1000, 10))
    >>> loss = [4.0 if s < 500 else 1.0 for s in steps]
    >>> change = detect_phase_change(steps, loss)
    >>> abs(change.step - 500) <= 10, change.before, change.after
    (True, 4.0, 1.0)
    """
    check_choice("direction", direction, ("fall", "rise"))
    check_fraction("edge", edge)
    xs = [int(s) for s in torch.as_tensor(steps).flatten().tolist()]
    ys = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).flatten().tolist()]
    if len(xs) != len(ys):
        raise ValueError(f"steps and values differ in length: {len(xs)} vs {len(ys)}")
    if len(ys) < 5:
        raise ValueError(f"a phase change needs at least 5 points on the curve, got {len(ys)}")
    if any(b <= a for a, b in itertools.pairwise(xs)):
        raise ValueError("steps must be strictly increasing")
    if any(v != v or v in (float("inf"), float("-inf")) for v in ys):
        raise ValueError("the curve contains NaN or infinite values")
    half = window if window is not None else max(1, len(ys) // 20)
    check_positive("window", half)
    sign = 1.0 if direction == "fall" else -1.0
    signed = [sign * v for v in ys]
    smooth = _smooth(signed, half)
    n = len(ys)
    drops = [smooth[max(0, i - half)] - smooth[min(n - 1, i + half)] for i in range(n)]
    peak = max(range(n), key=lambda i: drops[i])
    if drops[peak] <= 0:
        raise ValueError(f"the curve never {'falls' if sign > 0 else 'rises'}: no phase change")
    left = signed[max(0, peak - 3 * half) : max(1, peak - half + 1)]
    right = signed[min(n - 1, peak + half) : peak + 3 * half + 1]
    before, after = statistics.median(left), statistics.median(right)
    span = before - after
    start = peak
    while start > 0 and smooth[start - 1] <= before - edge * span and smooth[start - 1] > after:
        start -= 1
    end = peak
    while end < n - 1 and smooth[end + 1] >= after + edge * span and smooth[end + 1] < before:
        end += 1
    return PhaseChange(
        step=xs[peak],
        start=xs[start],
        end=xs[end],
        before=sign * before,
        after=sign * after,
        direction=direction,
    )
