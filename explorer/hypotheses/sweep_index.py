"""A sweep's index in the store: its points, their settings and outcomes, queryable in SQL.

``explorer.sweep`` writes one row of ``sweep_runs`` per point (its sweep, run name, study,
status, folder, seconds) and one row of ``sweep_values`` per setting and outcome
(``kind`` = "setting" | "outcome", ``name``, ``number`` for numbers and booleans, and
``text``, the exact value as JSON, read back). Rows of a point written again replace the earlier ones. Any SQL client can query
them, e.g. every run of a sweep with weight decay at least 0.5 and whether it generalised::

    SELECT r.run, o.number AS test_95
    FROM sweep_runs r
    JOIN sweep_values s ON s.run_id = r.id AND s.kind = 'setting' AND s.name = 'weight_decay'
    LEFT JOIN sweep_values o ON o.run_id = r.id AND o.kind = 'outcome' AND o.name = 'test_95'
    WHERE r.sweep = 'wd' AND s.number >= 0.5

>>> from explorer.hypotheses import HypothesisStore
>>> store = HypothesisStore(":memory:")
>>> put_sweep_runs(store, "wd", [{"name": "wd=1", "study": "grokking", "status": "complete",
...     "settings": {"weight_decay": 1.0}, "outcomes": {"test_95": 420}}], folder="/tmp/wd")
>>> [(r["run"], r["settings"], r["outcomes"]) for r in sweep_runs(store, "wd")]
[('wd=1', {'weight_decay': 1.0}, {'test_95': 420})]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from explorer.hypotheses._limits import check_project
from explorer.hypotheses._stored import now
from explorer.hypotheses.schema import projects_table, sweep_runs_table, sweep_values_table
from explorer.hypotheses.store import DEFAULT_PROJECT, HypothesisStore

__all__ = ["put_sweep_runs", "sweep_runs"]


def _value(value: Any) -> tuple[float | None, str]:
    """``(number, text)``: the number to query (None if not one) and the exact JSON value."""
    number = float(value) if isinstance(value, (bool, int, float)) else None
    return number, json.dumps(value)


def put_sweep_runs(
    store: HypothesisStore,
    sweep: str,
    records: Sequence[Mapping[str, Any]],
    *,
    folder: str,
    project: str = DEFAULT_PROJECT,
) -> None:
    """Write (or replace) the index rows of ``records`` (completion records of points: name,
    study, status, settings, outcomes, train_seconds) of sweep ``sweep``, in one transaction."""
    if not isinstance(store, HypothesisStore):
        raise TypeError(f"put_sweep_runs needs a HypothesisStore, got {type(store).__name__}")
    if not isinstance(sweep, str) or not sweep:
        raise ValueError(f"the sweep's name must be a non-empty string, got {sweep!r}")
    runs, values = sweep_runs_table, sweep_values_table
    with store._writing() as conn:
        project_id = store._project_id(conn, project)
        for record in records:
            where = (
                (runs.c.project_id == project_id)
                & (runs.c.sweep == sweep)
                & (runs.c.run == record["name"])
            )
            old = conn.execute(sa.select(runs.c.id).where(where)).scalar()
            if old is not None:
                conn.execute(values.delete().where(values.c.run_id == old))
                conn.execute(runs.delete().where(runs.c.id == old))
            run_id = conn.execute(
                runs.insert().values(
                    project_id=project_id,
                    sweep=sweep,
                    run=record["name"],
                    study=record.get("study", ""),
                    status=record["status"],
                    folder=folder,
                    seconds=record.get("train_seconds"),
                    updated=now(),
                )
            ).inserted_primary_key[0]
            rows = [
                {
                    "run_id": run_id,
                    "kind": kind,
                    "name": name,
                    **dict(zip(("number", "text"), _value(v))),
                }
                for kind, field in (("setting", "settings"), ("outcome", "outcomes"))
                for name, v in (record.get(field) or {}).items()
            ]
            if rows:
                conn.execute(values.insert(), rows)


def sweep_runs(
    store: HypothesisStore, sweep: str | None = None, *, project: str = DEFAULT_PROJECT
) -> list[dict[str, Any]]:
    """The index rows of ``sweep`` (None: every sweep of the project), one dict per run:
    ``sweep``, ``run``, ``study``, ``status``, ``folder``, ``seconds``, ``settings``,
    ``outcomes``; in the order they were written."""
    runs, values = sweep_runs_table, sweep_values_table
    query = (
        sa.select(runs)
        .join(projects_table, runs.c.project_id == projects_table.c.id)
        .where(projects_table.c.name == check_project(project))
        .order_by(runs.c.id)
    )
    if sweep is not None:
        query = query.where(runs.c.sweep == sweep)
    with store._reading() as conn:
        found = [dict(r) for r in conn.execute(query).mappings()]
        ids = [r["id"] for r in found]
        vals = (
            conn.execute(sa.select(values).where(values.c.run_id.in_(ids))).mappings().all()
            if ids
            else []
        )
    by_run: dict[int, dict[str, dict[str, Any]]] = {i: {"setting": {}, "outcome": {}} for i in ids}
    for v in sorted(vals, key=lambda v: v["id"]):
        by_run[v["run_id"]][v["kind"]][v["name"]] = json.loads(v["text"])
    return [
        {
            "sweep": r["sweep"],
            "run": r["run"],
            "study": r["study"],
            "status": r["status"],
            "folder": r["folder"],
            "seconds": r["seconds"],
            "settings": by_run[r["id"]]["setting"],
            "outcomes": by_run[r["id"]]["outcome"],
        }
        for r in found
    ]
