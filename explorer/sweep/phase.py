"""``phase_diagram``: a sweep's outcome over two settings, every seed kept, "never" marked.

A cell is one pair of values of the settings ``columns`` and ``rows``; it holds every point with
those values (the seeds, and any other setting the sweep varies). Each run of a cell is in
one of four states: ``REACHED`` (its outcome has a value), ``NEVER`` (the run finished and
the outcome has none: test accuracy never passed 95%, the loss diverged), ``UNFINISHED``
(not run yet, running, failed) or ``EMPTY`` (a cell holding fewer runs than the fullest
one). Per cell: the median over its finished runs with "never" counted as later than any
step (so a cell where most seeds never got there reads "never"), and the range of the
values reached. ``SweepView`` draws it; ``to_dataframe()`` has one row per run.

>>> import tempfile
>>> from explorer.sweep import sweep
>>> s = sweep("grokking", {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]}, seeds=[0],
...           folder=tempfile.mkdtemp() + "/s", executor="serial", progress=False,
...           base={"p": 7, "steps": 10, "d_model": 16, "eval_every": 5})
>>> d = phase_diagram(s, columns="lr", rows="train_frac", outcome="test_95")
>>> d.column_values, d.row_values, d.runs[0][1]
((0.001, 0.03), (0.3, 0.9), ('lr=0.03_train_frac=0.3_seed=0',))
>>> int(d.state[0, 0, 0]) == NEVER  # 10 steps: test accuracy never passed 95%
True
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import Shown, pandas
from explorer.analysis.color_scales import ColorScale
from explorer.sweep.result import Sweep

__all__ = [
    "EMPTY",
    "NEVER",
    "OUTCOME_LABELS",
    "REACHED",
    "UNFINISHED",
    "PhaseDiagram",
    "outcome_names",
    "phase_diagram",
    "swept_settings",
]

REACHED, NEVER, UNFINISHED, EMPTY = 0, 1, 2, 3
STATES = ("reached", "never", "unfinished", "empty")

#: what each built-in outcome measures, for a colour bar's label
OUTCOME_LABELS = {
    "train_99": "step train accuracy first passed 99%",
    "test_95": "step test accuracy first passed 95%",
    "test_99": "step test accuracy first passed 99%",
    "delay": "test_95 / train_99 (grokking delay)",
    "final_test_acc": "test accuracy at the last step",
    "last_step": "last step trained",
    "memorized": "step memorisation ended",
    "circuit_start": "step circuit formation began",
    "cleanup_start": "step cleanup began",
    "cleanup_end": "step cleanup ended",
    "phase_change": "step of the induction score's rise",
}


def swept_settings(sweep: Sweep) -> tuple[str, ...]:
    """The settings the sweep's points change, in the order they first appear."""
    return tuple(dict.fromkeys(k for p in sweep.points for k in p.settings))


def outcome_names(sweep: Sweep) -> tuple[str, ...]:
    """The outcomes the finished points recorded, in the order they first appear."""
    return tuple(dict.fromkeys(k for r in sweep.records.values() for k in r.get("outcomes", {})))


def _order(values: Sequence[Any]) -> tuple[Any, ...]:
    distinct = list(dict.fromkeys(_key(v) for v in values))
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct)
    return tuple(sorted(distinct) if numbers else sorted(distinct, key=str))


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # JSON lists: hashable


def _text(value: Any) -> str:
    """A setting's value as a label: ``0.001``, ``0.9-0.98``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "-".join(_text(v) for v in value)
    return str(value)


def _setting(sweep: Sweep, name: str, setting: str) -> Any:
    point = next(p for p in sweep.points if p.name == name)
    if setting in point.settings:
        return _key(point.settings[setting])
    full = sweep.settings(name)
    if setting not in full:
        raise ValueError(f"point {name!r} has no setting {setting!r}")
    return _key(full[setting])


@dataclass(frozen=True, repr=False)
class PhaseDiagram(Shown):
    """An outcome over two settings: ``[row, column, run]`` arrays.

    ``runs[i][j]`` names the runs of cell (``row_values[i]``, ``column_values[j]``), sorted by seed;
    ``value[i, j, k]`` is run ``k``'s outcome (NaN unless ``REACHED``) and ``state[i, j, k]``
    its state. ``median`` (inf: "never" for most runs; NaN: none finished), ``low`` and
    ``high`` (the range of the values reached), ``n_never`` and ``n_finished`` are per cell.
    ``scale`` spans every value reached.
    """

    columns: str
    rows: str | None
    outcome: str
    column_values: tuple[Any, ...]
    row_values: tuple[Any, ...]
    runs: tuple[tuple[tuple[str, ...], ...], ...]
    value: torch.Tensor  # [row, column, run] float64
    state: torch.Tensor  # [row, column, run] int64
    median: torch.Tensor  # [row, column]
    low: torch.Tensor  # [row, column]
    high: torch.Tensor  # [row, column]
    n_never: torch.Tensor  # [row, column] int64
    n_finished: torch.Tensor  # [row, column] int64
    scale: ColorScale

    @property
    def column_labels(self) -> tuple[str, ...]:
        """The columns' values as text (``0.001``)."""
        return tuple(_text(v) for v in self.column_values)

    @property
    def row_labels(self) -> tuple[str, ...]:
        """The rows' values as text (``"all"`` for the one row without ``rows``)."""
        return tuple(_text(v) for v in self.row_values) if self.rows else ("all",)

    def _summary(self) -> str:
        ny, nx = len(self.row_values), len(self.column_values)
        finished = int(self.n_finished.sum())
        return (
            f"{self.outcome} over {self.rows or '-'} x {self.columns}: {ny} x {nx} cells, "
            f"{finished} runs finished, {int(self.n_never.sum())} never"
        )

    def cell_text(self, i: int, j: int) -> str:
        """The cell's median and range as read in the view: ``"55 (40-80)"``, ``"never"``,
        ``"55 (1 of 2 never)"``; ``"-"`` when no run finished."""
        median, n_never = float(self.median[i, j]), int(self.n_never[i, j])
        if math.isnan(median):
            return "-"
        if math.isinf(median):
            return (
                "never"
                if n_never == int(self.n_finished[i, j])
                else f"never ({n_never} of {int(self.n_finished[i, j])})"
            )
        low, high = float(self.low[i, j]), float(self.high[i, j])
        text = f"{median:.4g}" + (f" ({low:.4g}-{high:.4g})" if high > low else "")
        return text + (f", {n_never} never" if n_never else "")

    def _table(self) -> tuple:
        rows = [
            (
                f"{self.rows}={yv}" if self.rows else "all",
                *(self.cell_text(i, j) for j in range(len(self.column_values))),
            )
            for i, yv in enumerate(self.row_values)
        ]
        header = (f"{self.rows or ''} \\ {self.columns}", *(str(v) for v in self.column_values))
        note = f"{self.scale.label}; median over runs (never counts as later than any step), range of those reached"
        return f"Phase diagram of {self.outcome}", header, rows, note

    def to_dataframe(self) -> Any:
        """One row per run: the rows' and columns' settings, ``run``, ``state``, the outcome."""
        rows = []
        for i, yv in enumerate(self.row_values):
            for j, xv in enumerate(self.column_values):
                for k, name in enumerate(self.runs[i][j]):
                    row: dict[str, Any] = {}
                    if self.rows:
                        row[self.rows] = yv
                    row[self.columns] = xv
                    value = float(self.value[i, j, k])
                    row.update(run=name, state=STATES[int(self.state[i, j, k])])
                    row[self.outcome] = None if math.isnan(value) else value
                    rows.append(row)
        return pandas().DataFrame(rows)


def phase_diagram(
    sweep: Sweep, *, columns: str, rows: str | None = None, outcome: str
) -> PhaseDiagram:
    """``outcome`` of every point of ``sweep`` on a grid of two settings.

    Args:
        sweep: a ``Sweep`` (``sweep(...)`` or ``Sweep.open(folder)``).
        columns, rows: the settings of the columns and rows, two the points change
            (``rows=None``: one row).
        outcome: one of the outcomes the finished points recorded (``test_95``, ...).
    """
    settings = swept_settings(sweep)
    for what, name in (("columns", columns), ("rows", rows)):
        if name is not None and name not in settings:
            raise ValueError(
                f"{what}={name!r} is not a setting this sweep changes: choose one of "
                f"{', '.join(settings) or '(none)'}"
            )
    if columns == rows:
        raise ValueError(f"columns and rows are both {columns!r}: choose two different settings")
    known = outcome_names(sweep)
    if known and outcome not in known:
        raise ValueError(
            f"no outcome {outcome!r} in this sweep: its outcomes are {', '.join(known)}"
        )
    xs = {n: _setting(sweep, n, columns) for n in sweep.names}
    ys = {n: _setting(sweep, n, rows) if rows else "" for n in sweep.names}
    x_values, y_values = _order(list(xs.values())), _order(list(ys.values()))
    cells: dict[tuple[int, int], list[str]] = {}
    for name in sweep.names:
        cells.setdefault((y_values.index(ys[name]), x_values.index(xs[name])), []).append(name)
    seed = {n: sweep.settings(n).get("seed", 0) for n in sweep.names}
    for names in cells.values():
        names.sort(key=lambda n: (str(type(seed[n])), seed[n], n))
    ny, nx = len(y_values), len(x_values)
    width = max((len(v) for v in cells.values()), default=1)
    value = torch.full((ny, nx, width), math.nan, dtype=torch.float64)
    state = torch.full((ny, nx, width), EMPTY, dtype=torch.int64)
    median, low, high = (torch.full((ny, nx), math.nan, dtype=torch.float64) for _ in range(3))
    n_never, n_finished = (torch.zeros((ny, nx), dtype=torch.int64) for _ in range(2))
    reached_all: list[float] = []
    for (i, j), names in cells.items():
        finished: list[float] = []
        for k, name in enumerate(names):
            record = sweep.records.get(name)
            got = None if record is None else record.get("outcomes", {}).get(outcome)
            if record is None:
                state[i, j, k] = UNFINISHED
            elif got is None or not math.isfinite(float(got)):
                state[i, j, k] = NEVER
                finished.append(math.inf)
            else:
                state[i, j, k], value[i, j, k] = REACHED, float(got)
                finished.append(float(got))
        reached = [v for v in finished if math.isfinite(v)]
        reached_all += reached
        n_finished[i, j], n_never[i, j] = len(finished), len(finished) - len(reached)
        if finished:
            median[i, j] = statistics.median(finished)
        if reached:
            low[i, j], high[i, j] = min(reached), max(reached)
    label = f"{outcome}: {OUTCOME_LABELS[outcome]}" if outcome in OUTCOME_LABELS else outcome
    lo = min(reached_all) if reached_all else 0.0
    hi = max(reached_all) if reached_all else 1.0
    scale = ColorScale(
        vmin=lo, vmax=hi if hi > lo else lo + 1.0, label=label,
        low=f"lower {outcome}", high=f"higher {outcome}",
        note="never: the run finished without reaching it",
    )  # fmt: skip
    runs = tuple(tuple(tuple(cells.get((i, j), ())) for j in range(nx)) for i in range(ny))
    return PhaseDiagram(
        columns=columns, rows=rows, outcome=outcome, column_values=x_values, row_values=y_values, runs=runs,
        value=value, state=state, median=median, low=low, high=high, n_never=n_never,
        n_finished=n_finished, scale=scale,
    )  # fmt: skip
