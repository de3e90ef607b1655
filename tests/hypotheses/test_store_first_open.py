"""Many kernels opening a fresh store at once (a live session's first minute): every opener
succeeds and the schema is created exactly once, on PostgreSQL and on SQLite."""

from __future__ import annotations

import multiprocessing

import sqlalchemy as sa

from explorer.hypotheses import HypothesisStore
from explorer.hypotheses.schema import SCHEMA_VERSION

N_OPENERS = 16


def _open(target: str, barrier, results) -> None:
    try:
        barrier.wait(timeout=30)
        store = HypothesisStore(target)
        store.label("neuron 0.1", "opened", rater="x")
        results.put(("ok", store.schema_version))
        store.close()
    except BaseException as err:  # reported to the test, which names it
        results.put(("error", f"{type(err).__name__}: {err}"))


def _open_all_at_once(target: str) -> list[tuple[str, object]]:
    """``N_OPENERS`` forked processes, released together by a barrier, each opening ``target``."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(N_OPENERS), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(target, barrier, results)) for _ in range(N_OPENERS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return outcomes


def test_sixteen_first_openers_all_succeed_and_write_one_schema_version(backend):
    outcomes = _open_all_at_once(backend)
    assert [o for o in outcomes if o[0] != "ok"] == []
    assert {o[1] for o in outcomes} == {SCHEMA_VERSION}
    store = HypothesisStore(backend)
    with store._reading() as conn:
        rows = conn.execute(sa.text("SELECT version FROM schema_version")).all()
    assert [tuple(r) for r in rows] == [(SCHEMA_VERSION,)]
    assert store.count("labels") == 1  # every opener wrote the same label: one row
    store.close()
