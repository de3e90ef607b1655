"""A sweep's index in the hypothesis store: the schema migration, SQL queries, and a sweep
writing its points as they finish."""

from __future__ import annotations

import sqlalchemy as sa

from explorer.hypotheses import HypothesisStore
from explorer.hypotheses.schema import (
    SCHEMA_VERSION,
    hypotheses_table,
    labels_table,
    projects_table,
    schema_version_table,
    verdicts_table,
)
from explorer.hypotheses.sweep_index import put_sweep_runs, sweep_runs
from explorer.sweep import sweep

RECORDS = [
    {"name": f"wd={wd}_seed={seed}", "study": "grokking", "status": "complete",
     "settings": {"weight_decay": wd, "seed": seed, "betas": [0.9, 0.98]},
     "outcomes": {"test_95": None if wd < 0.5 else 300 + seed, "final_test_acc": 0.5 + wd / 4},
     "train_seconds": 1.5}
    for wd in (0.1, 1.0) for seed in (0, 1)
]  # fmt: skip

QUERY = sa.text(
    """
    SELECT r.run, o.number AS test_95
    FROM sweep_runs r
    JOIN sweep_values s ON s.run_id = r.id AND s.kind = 'setting' AND s.name = 'weight_decay'
    LEFT JOIN sweep_values o ON o.run_id = r.id AND o.kind = 'outcome' AND o.name = 'test_95'
    WHERE r.sweep = :sweep AND s.number >= 0.5
    ORDER BY r.run
    """
)


def test_a_version_1_store_is_migrated_to_hold_sweeps(tmp_path):
    path = tmp_path / "v1.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    old = sa.MetaData()
    for table in (schema_version_table, projects_table, hypotheses_table, verdicts_table,
                  labels_table):  # fmt: skip
        table.to_metadata(old)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(schema_version_table.insert().values(version=1))
        conn.execute(projects_table.insert().values(name="default", created="then"))
    engine.dispose()
    store = HypothesisStore(path)
    assert store.schema_version == SCHEMA_VERSION == 2
    assert store.projects() == ["default"]
    put_sweep_runs(store, "wd", RECORDS[:1], folder="/sweeps/wd")
    assert [r["run"] for r in sweep_runs(store, "wd")] == ["wd=0.1_seed=0"]


def test_the_index_answers_sql_and_reads_back_exactly(backend):
    store = HypothesisStore(backend)
    put_sweep_runs(store, "wd", RECORDS, folder="/sweeps/wd")
    put_sweep_runs(store, "other", RECORDS[:1], folder="/sweeps/other", project="room")
    with store._engine.connect() as conn:
        found = conn.execute(QUERY, {"sweep": "wd"}).all()
    assert [tuple(r) for r in found] == [("wd=1.0_seed=0", 300.0), ("wd=1.0_seed=1", 301.0)]
    rows = sweep_runs(store, "wd")
    assert [r["run"] for r in rows] == [r["name"] for r in RECORDS]
    assert rows[0]["settings"] == RECORDS[0]["settings"]  # ints, lists and floats as they were
    assert rows[0]["outcomes"] == {"test_95": None, "final_test_acc": 0.525}
    assert rows[0]["seconds"] == 1.5 and rows[0]["folder"] == "/sweeps/wd"
    # a point written again replaces its rows
    put_sweep_runs(store, "wd", [{**RECORDS[0], "status": "stopped", "outcomes": {}}], folder="x")
    again = sweep_runs(store, "wd")
    assert len(again) == 4 and again[-1]["status"] == "stopped" and again[-1]["outcomes"] == {}
    assert [r["sweep"] for r in sweep_runs(store, project="room")] == ["other"]


def test_a_sweep_indexes_its_points_as_they_finish(tmp_path):
    store = HypothesisStore(tmp_path / "explorer.db")
    base = {"p": 7, "steps": 10, "d_model": 16, "eval_every": 5}
    s = sweep("grokking", {"weight_decay": [0.1, 1.0]}, folder=tmp_path / "wd", base=base,
              executor="serial", progress=False, store=store)  # fmt: skip
    rows = sweep_runs(store, "wd")
    assert [r["run"] for r in rows] == list(s.names)
    assert rows[1]["settings"]["weight_decay"] == 1.0 and rows[1]["settings"]["p"] == 7
    assert rows[1]["outcomes"]["last_step"] == s.run("weight_decay=1").last_step
    # and a finished sweep can be indexed again, under another name
    assert s.record(store, name="wd-again") == 2
    assert len(sweep_runs(store, "wd-again")) == 2
