"""Color scales that compare: the range, baseline and reading of every colored figure.

A view that colors numbers takes its scale from here, never from its own data's extremes,
so that two figures of the same quantity read the same way:

- Activation patching and attribution patching estimate the same quantity (the fraction
  of the clean-vs-corrupted gap a site recovers). Both are drawn on one fixed scale,
  -1 to 1, so a weak estimate looks weak; attribution patching says on the figure that it
  is a first-order approximation.
- Path patching is drawn on the same -1..1 scale of the gap, with a legend.
- Head scores run from 0 to 1 and mark the random baseline: the score of a head that
  attends uniformly to every key it can see (``HeadScores.baselines``).

Every scale says which way is better (or what each end means) in words, for the legend.

>>> scale = patching_color_scale(torch.tensor([0.02, -0.01]), method="attribution")
>>> (scale.vmin, scale.vmax), scale.approximate
((-1.0, 1.0), True)
>>> head_score_color_scale("induction", baseline=0.125).baseline
0.125
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from explorer._checks import check_choice

__all__ = [
    "ColorScale",
    "head_score_color_scale",
    "patching_color_scale",
    "path_patching_color_scale",
]

PATCHING_METHODS = ("activation", "attribution")


@dataclass(frozen=True)
class ColorScale:
    """How a figure colors its values: from ``vmin`` to ``vmax`` (values beyond are drawn
    at the ends); ``low``/``high`` say what each end means (which way is better);
    ``baseline`` is a reference value marked on the color bar (None: none)."""

    vmin: float
    vmax: float
    label: str
    low: str
    high: str
    baseline: float | None = None
    baseline_label: str = ""
    approximate: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The scale as plain JSON values (what a view sends to the page)."""
        return asdict(self)


def _beyond(values: torch.Tensor, limit: float) -> str:
    finite = values[values.isfinite()]
    outside = finite.abs() > limit
    if not bool(outside.any()):
        return ""
    return (
        f"{int(outside.sum())} cell(s) beyond ±{limit:g} (up to {float(finite.abs().max()):.3g}) "
        "are drawn at the ends of the scale"
    )


def patching_color_scale(values: torch.Tensor, *, method: str) -> ColorScale:
    """The scale of a patching grid's recovery (0 = corrupted, 1 = clean), the same for
    exact activation patching and its gradient estimate, attribution patching.

    >>> patching_color_scale(torch.tensor([1.5, 0.2]), method="activation").note
    '1 cell(s) beyond ±1 (up to 1.5) are drawn at the ends of the scale'
    """
    check_choice("method", method, PATCHING_METHODS)
    notes = []
    if method == "attribution":
        notes.append(
            "attribution patching: a first-order (gradient) approximation of activation "
            "patching, on the same scale"
        )
    beyond = _beyond(values, 1.0)
    if beyond:
        notes.append(beyond)
    return ColorScale(
        vmin=-1.0,
        vmax=1.0,
        label="fraction of the clean-vs-corrupted gap recovered"
        + (" (estimated)" if method == "attribution" else ""),
        low="further from the clean run (worse)",
        high="closer to the clean run (better)",
        approximate=method == "attribution",
        note="; ".join(notes),
    )


def path_patching_color_scale(values: torch.Tensor) -> ColorScale:
    """The scale of a path-patching grid: the metric's change over the clean-vs-corrupted
    gap when a sender's path is patched, -1 (the path carries the whole effect) to 1.

    >>> path_patching_color_scale(torch.tensor([-0.5])).low
    'the path carries the effect: the metric moves to the corrupted run'
    """
    return ColorScale(
        vmin=-1.0,
        vmax=1.0,
        label="metric change over the clean-vs-corrupted gap (-1: the path does it all)",
        low="the path carries the effect: the metric moves to the corrupted run",
        high="the metric moves away from the corrupted run",
        note=_beyond(values, 1.0),
    )


def head_score_color_scale(score: str, *, baseline: float) -> ColorScale:
    """The scale of a head score: 0 to 1, the random baseline (a head attending uniformly
    to every key it sees) marked, so a score at or below it is never drawn as strong.

    >>> head_score_color_scale("previous_token", baseline=0.2).baseline_label
    'uniform attention: 0.2'
    """
    return ColorScale(
        vmin=0.0,
        vmax=1.0,
        label=f"{score} score",
        low="no attention on the targets",
        high=f"all attention on the targets (more {score}-like)",
        baseline=float(baseline),
        baseline_label=f"uniform attention: {baseline:.2g}",
    )
