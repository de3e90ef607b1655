"""``Sweep``: the points of a sweep folder, their outcomes and curves, as tables.

``Sweep.open(folder)`` reads what is on disk (``sweep`` returns one too): the finished
points' completion records, and each run's logged metrics through ``Run``. Tables:

- ``outcomes()``: one row per point: its settings, status, outcomes and timings (a
  phase diagram is a pivot of it);
- ``to_dataframe()``: the long table, one row per point, measure and logged step (the
  curves of every run, to overlay and colour by a setting).

>>> import tempfile
>>> from explorer.sweep.folder import SweepFolder
>>> path = tempfile.mkdtemp() + "/empty"
>>> _ = SweepFolder.create(path, "grokking", {})
>>> Sweep.open(path)
Sweep(grokking, 0 points: 0 finished; ...)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer._display import Shown, pandas
from explorer.hypotheses.store import DEFAULT_PROJECT, HypothesisStore
from explorer.hypotheses.sweep_index import put_sweep_runs
from explorer.sweep.folder import SweepFolder
from explorer.sweep.learning_coefficient import read_learning_coefficients
from explorer.sweep.points import SweepPoint
from explorer.sweep.studies import STUDIES
from explorer.training.run import Run

__all__ = ["Sweep"]


@dataclass(frozen=True, repr=False)
class Sweep(Shown):
    """A sweep's points and what is known of them.

    ``records`` holds the completion record of each finished point (by name). ``ran``,
    ``reused``, ``failed`` (name -> error) and ``interrupted`` describe the call of
    ``sweep`` that returned it (empty for ``Sweep.open``).
    """

    folder: Path
    study: str
    points: tuple[SweepPoint, ...]
    records: Mapping[str, Mapping[str, Any]]
    ran: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @classmethod
    def open(cls, folder: str | os.PathLike[str], names: Sequence[str] | None = None) -> Sweep:
        """The sweep in ``folder`` (only the points ``names``, if given)."""
        place = SweepFolder.open(folder)
        known = place.spec["points"]
        names = list(known) if names is None else list(names)
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(f"no points {missing} in sweep {str(folder)!r}; it has {list(known)}")
        finished = place.finished()
        return cls(
            folder=place.path,
            study=place.spec["study"],
            points=tuple(SweepPoint(n, known[n]) for n in names),
            records={n: finished[n] for n in names if n in finished},
        )

    def with_call(self, **what: Any) -> Sweep:
        return dataclasses.replace(self, **what)

    # --------------------------------------------------------------- reading
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.points)

    @property
    def finished(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n in self.records)

    @property
    def unfinished(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in self.records)

    def run(self, name: str) -> Run:
        """The run of point ``name`` (``explorer.load(sweep.run(name).path, step=...)``)."""
        if name not in self.names:
            raise KeyError(f"no point {name!r} in this sweep; its points: {', '.join(self.names)}")
        return Run.open(SweepFolder.open(self.folder).run_dir(name))

    def settings(self, name: str) -> dict[str, Any]:
        """The point's full settings (of its record; its changes if it is unfinished)."""
        record = self.records.get(name)
        return dict(record["settings"]) if record else dict(self._point(name).settings)

    def _point(self, name: str) -> SweepPoint:
        return next(p for p in self.points if p.name == name)

    def outcomes(self) -> Any:
        """One row per point (index: its name): the settings it changes, ``status``, each
        outcome, ``train_seconds``, ``measure_seconds`` and ``llc_seconds`` (None where the
        learning coefficient was not measured)."""
        rows = []
        for p in self.points:
            r = self.records.get(p.name)
            row: dict[str, Any] = {"run": p.name, **p.settings}
            row["status"] = r["status"] if r else self._status(p.name)
            row.update((r or {}).get("outcomes", {}))
            row["train_seconds"] = (r or {}).get("train_seconds")
            row["measure_seconds"] = (r or {}).get("measure_seconds")
            row["llc_seconds"] = (r or {}).get("llc_seconds")
            rows.append(row)
        return pandas().DataFrame(rows).set_index("run")

    def _status(self, name: str) -> str:
        if name in self.failed:
            return "failed"
        return "unfinished"

    def to_dataframe(self) -> Any:
        """The long table of every finished run's logged curves: columns ``run``, the
        settings each point changes, ``measure``, ``step``, ``value``. The learning
        coefficient, where measured, is the measures ``llc`` and ``llc_std``; the study's
        measures replayed after training (grokking's ``restricted_loss`` and
        ``excluded_loss``) have a row per checkpoint."""
        study = STUDIES.get(self.study)
        columns = sorted({k for p in self.points for k in p.settings})
        rows = []
        for p in self.points:
            if p.name not in self.records:
                continue
            settings = [p.settings.get(c) for c in columns]
            run = self.run(p.name)
            for row in run.rows():
                step = row["step"]
                for measure, value in row.items():
                    if measure != "step":
                        rows.append((p.name, *settings, measure, step, value))
            for step, measure, value in study.curves(run) if study and study.curves else ():
                rows.append((p.name, *settings, measure, step, value))
            for row in read_learning_coefficients(run):
                for measure in ("llc", "llc_std"):
                    rows.append((p.name, *settings, measure, row["step"], row[measure]))
        frame = pandas().DataFrame(rows, columns=["run", *columns, "measure", "step", "value"])
        # a step logged twice (a resumed run): the later row wins, as in Run.metrics()
        return frame.drop_duplicates(["run", "measure", "step"], keep="last").reset_index(drop=True)

    # ---------------------------------------------------------------- storing
    def record(
        self,
        store: HypothesisStore | str,
        *,
        name: str | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> int:
        """Index every finished point in ``store`` (rows of a point replace its earlier
        ones); the number of points written. ``name`` defaults to the folder's name."""
        store = HypothesisStore(store) if isinstance(store, (str, os.PathLike)) else store
        records = [self.records[n] for n in self.finished]
        put_sweep_runs(
            store, name or self.folder.name, records, folder=str(self.folder.resolve()),
            project=project,
        )  # fmt: skip
        return len(records)

    # ---------------------------------------------------------------- display
    def _counts(self) -> str:
        text = f"{len(self.points)} points: {len(self.finished)} finished"
        if self.ran or self.reused:
            text += f" ({len(self.ran)} run now, {len(self.reused)} earlier)"
        if self.failed:
            text += f", {len(self.failed)} failed"
        if self.interrupted:
            text += ", interrupted"
        return text

    def _summary(self) -> str:
        return f"{self.study}, {self._counts()}; {str(self.folder)!r}"

    def _table(self) -> tuple:
        keys = sorted({k for p in self.points for k in p.settings})
        outcome_names: list[str] = []
        for r in self.records.values():
            outcome_names += [k for k in r.get("outcomes", {}) if k not in outcome_names]
        shown = outcome_names[:4]
        rows = []
        for p in self.points[:12]:
            r = self.records.get(p.name, {})
            rows.append(
                (p.name, *(p.settings.get(k, "") for k in keys),
                 r.get("status", self._status(p.name)),
                 *(_cell(r.get("outcomes", {}).get(k)) for k in shown))
            )  # fmt: skip
        more = f"; first 12 of {len(self.points)}" if len(self.points) > 12 else ""
        note = f"{self._counts()}{more}; {self.folder}"
        return f"Sweep of {self.study}", ("run", *keys, "status", *shown), rows, note


def _cell(value: Any) -> Any:
    return "never" if value is None else value
