"""``sweep_curves``: one logged measure of every finished run, on shared steps, grouped by a
setting (to overlay the curves, one colour per value of the setting).

>>> import tempfile
>>> from explorer.sweep import sweep
>>> s = sweep("grokking", {"lr": [1e-3, 3e-2]}, folder=tempfile.mkdtemp() + "/s",
...           executor="serial", progress=False,
...           base={"p": 7, "steps": 10, "d_model": 16, "eval_every": 5})
>>> c = sweep_curves(s, "test_acc", color_by="lr")
>>> c.runs, c.steps.tolist(), c.groups, c.group_of
(('lr=0.001', 'lr=0.03'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 10], ('0.001', '0.03'), (0, 1))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import Shown, pandas
from explorer.sweep.phase import _order, _setting, _text, swept_settings
from explorer.sweep.result import Sweep

__all__ = ["SweepCurves", "logged_measures", "sweep_curves"]


def logged_measures(sweep: Sweep) -> tuple[str, ...]:
    """Every measure a finished run of ``sweep`` logged, in the order first seen."""
    return tuple(dict.fromkeys(m for n in sweep.finished for m in sweep.run(n).metrics().names))


@dataclass(frozen=True, repr=False)
class SweepCurves(Shown):
    """``values[run, point]``: ``measure`` of each finished run at ``steps[point]`` (NaN
    where that run did not log it). ``group_of[run]`` indexes ``groups``, the values of the
    setting ``color_by`` as text (sorted; one group ``"all"`` without a setting)."""

    measure: str
    runs: tuple[str, ...]
    steps: torch.Tensor  # [point] int64
    values: torch.Tensor  # [run, point] float64
    color_by: str | None
    groups: tuple[str, ...]
    group_of: tuple[int, ...]

    def _summary(self) -> str:
        by = f", coloured by {self.color_by}" if self.color_by else ""
        return f"{self.measure} of {len(self.runs)} runs at {len(self.steps)} steps{by}"

    def _table(self) -> tuple:
        rows = []
        for r, name in enumerate(self.runs[:12]):
            logged = self.values[r][~self.values[r].isnan()]
            last = float(logged[-1]) if len(logged) else math.nan
            rows.append((name, self.groups[self.group_of[r]], len(logged), last))
        header = ("run", self.color_by or "group", "points", f"last {self.measure}")
        return f"Curves of {self.measure}", header, rows, ""

    def to_dataframe(self) -> Any:
        """One row per run and logged step: ``run``, the ``color_by`` group, ``step``,
        the measure."""
        rows = [
            {"run": name, self.color_by or "group": self.groups[self.group_of[r]],
             "step": int(s), self.measure: float(v)}
            for r, name in enumerate(self.runs)
            for s, v in zip(self.steps.tolist(), self.values[r].tolist())
            if not math.isnan(v)
        ]  # fmt: skip
        return pandas().DataFrame(rows)


def sweep_curves(sweep: Sweep, measure: str, *, color_by: str | None = None) -> SweepCurves:
    """``measure`` as logged by each finished run of ``sweep``, grouped by ``color_by``.

    Args:
        sweep: a ``Sweep``.
        measure: a logged measure (``logged_measures(sweep)``: ``test_acc``, ...).
        color_by: a setting the points change (None: one group).
    """
    settings = swept_settings(sweep)
    if color_by is not None and color_by not in settings:
        raise ValueError(
            f"color_by={color_by!r} is not a setting this sweep changes: choose one of "
            f"{', '.join(settings) or '(none)'}"
        )
    series: dict[str, tuple[list[int], list[float]]] = {}
    for name in sweep.finished:
        metrics = sweep.run(name).metrics()
        if measure in metrics.names:
            curve = metrics.get(measure)
            series[name] = ([int(s) for s in curve.steps.tolist()], curve.values.tolist())
    if not series and sweep.finished:
        raise ValueError(
            f"no finished run logged {measure!r}: the measures are "
            f"{', '.join(logged_measures(sweep))}"
        )
    steps = sorted({s for xs, _ in series.values() for s in xs})
    at = {s: i for i, s in enumerate(steps)}
    values = torch.full((len(series), len(steps)), math.nan, dtype=torch.float64)
    for r, (xs, ys) in enumerate(series.values()):
        values[r, [at[s] for s in xs]] = torch.tensor(ys, dtype=torch.float64)
    runs = tuple(series)
    if color_by is None:
        groups, group_of = ("all",), tuple(0 for _ in runs)
    else:
        keys = {n: _setting(sweep, n, color_by) for n in runs}
        ordered = _order(list(keys.values()))
        groups = tuple(_text(v) for v in ordered)
        group_of = tuple(ordered.index(keys[n]) for n in runs)
    return SweepCurves(
        measure=measure, runs=runs, steps=torch.tensor(steps, dtype=torch.int64),
        values=values, color_by=color_by, groups=groups, group_of=group_of,
    )  # fmt: skip
