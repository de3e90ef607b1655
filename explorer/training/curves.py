"""A run's metrics: the JSON-lines log (``metrics.jsonl``) and its curves.

``Run`` (``training.run``) appends one row per logged step; ``Run.metrics()`` reads them back
as one ``Curve`` per metric. A torn last line (a kill mid-write) is skipped; a value that is
not a number (a row edited by hand) is left out with a warning naming the file and line.

>>> c = Curve("loss", torch.tensor([0, 10, 20]), torch.tensor([3.0, 2.0, 1.5]))
>>> c.at(12), RunMetrics({"loss": c}).last()
(2.0, {'loss': 1.5})
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explorer._atomic import write_durable
from explorer._display import compact_repr
from explorer._inside import inside
from explorer.training._run_layout import METRICS

__all__ = ["Curve", "RunMetrics"]


@dataclass(frozen=True)
class Curve:
    """One metric over training: ``values[i]`` was measured at ``steps[i]``."""

    __repr__ = compact_repr

    name: str
    steps: torch.Tensor
    values: torch.Tensor

    def at(self, step: int) -> float:
        """The value at the logged step closest to ``step`` (NaN if the curve is empty)."""
        if len(self.steps) == 0:
            return math.nan
        i = int(torch.argmin((self.steps - int(step)).abs()))
        return float(self.values[i])


@dataclass(frozen=True)
class RunMetrics:
    """Every logged metric of a run, as curves (each over the steps where it was logged)."""

    curves: Mapping[str, Curve]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.curves)

    def get(self, name: str) -> Curve:
        if name not in self.curves:
            raise KeyError(f"no metric {name!r} in this run; logged: {', '.join(self.names)}")
        return self.curves[name]

    def __contains__(self, name: object) -> bool:
        return name in self.curves

    def last(self) -> dict[str, float]:
        """The latest value of every metric."""
        return {k: float(c.values[-1]) for k, c in self.curves.items() if len(c.values)}


class _MetricsLog:
    """The metric methods of ``Run``: its folder is ``self.path``."""

    path: Path

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Append one row of metrics for ``step`` (floats; NaN/inf are stored as null).

        Rows are published (fsynced) with the next checkpoint; rows after the last published
        checkpoint are dropped when training resumes, and logged again.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a whole number >= 0, got {step!r}")
        row: dict[str, Any] = {"step": step}
        for key, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"metric {key!r} at step {step} must be a number, got {value!r}"
                ) from None
            row[str(key)] = number if math.isfinite(number) else None
        file = self._metrics_file()
        torn = file.is_file() and file.stat().st_size and not _ends_with_newline(file)
        line = ("\n" if torn else "") + json.dumps(row) + "\n"  # never glue onto a torn line
        write_durable(file, line.encode(), append=True, sync=False)

    def _metrics_file(self) -> Path:
        return inside(self.path, METRICS, what="metrics log", owner=f"run {str(self.path)!r}")

    def rows(self) -> list[dict[str, Any]]:
        """Every logged row, in order; a torn line (killed mid-write) is skipped."""
        return [row for _, row in self._numbered_rows()]

    def _numbered_rows(self) -> list[tuple[int, dict[str, Any]]]:
        file = self._metrics_file()
        if not file.is_file():
            return []
        out = []
        text = file.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(row, dict) and type(row.get("step")) is int:
                out.append((number, row))
        return out

    def metrics(self) -> RunMetrics:
        """All metrics as curves; where a step was logged twice, the later row wins.

        A value that is neither a number nor null (``"abc"``, a list, true) is left out, with
        one warning naming the file and the lines."""
        by_step: dict[int, dict[str, Any]] = {}
        skipped = []
        for number, row in self._numbered_rows():
            for key, value in list(row.items()):
                if key != "step" and not _is_number(value):
                    skipped.append(f"line {number}: {key} = {json.dumps(value)[:40]}")
                    del row[key]
            by_step.setdefault(row["step"], {}).update(row)
        if skipped:
            warnings.warn(
                f"{str(self._metrics_file())!r}: {len(skipped)} values are not numbers and "
                f"were left out ({'; '.join(skipped[:5])}{'; ...' if len(skipped) > 5 else ''})",
                UserWarning,
                stacklevel=2,
            )
        names: dict[str, None] = {}
        for row in by_step.values():
            names.update(dict.fromkeys(k for k in row if k != "step"))
        curves = {}
        for name in names:
            pts = [(s, r[name]) for s, r in sorted(by_step.items()) if name in r]
            steps = torch.tensor([s for s, _ in pts], dtype=torch.long)
            values = torch.tensor(
                [math.nan if v is None else float(v) for _, v in pts], dtype=torch.float32
            )
            curves[name] = Curve(name, steps, values)
        return RunMetrics(curves)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _ends_with_newline(file: Path) -> bool:
    with open(file, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
