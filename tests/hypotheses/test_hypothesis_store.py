"""The store: round trips, schema versions, concurrent writers, and a writer killed mid-stream,
each on SQLite and on a real PostgreSQL server (``backend``; skipped with the reason where
the server binaries are missing)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split, Verdict
from explorer.hypotheses.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaVersionError,
    schema_version_table,
)


def _verdict(hypothesis_id: str, value: float = 0.95, status: str = "supported") -> Verdict:
    return Verdict(
        hypothesis_id=hypothesis_id,
        claim="c",
        status=status,
        value=value,
        ci_low=value - 0.05,
        ci_high=value + 0.05,
        confidence=0.95,
        threshold=0.9,
        direction="above",
        measure="auroc",
        baseline=0.5,
        baseline_source="given",
        n_examples=10,
        split="held-out: 10 examples",
        model_name="m",
        model_fingerprint="abc",
        n_boot=100,
        seed=0,
    )


def test_default_store_is_a_file_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = HypothesisStore()
    store.label("neuron 0.3", "loop", rater="ada")
    store.close()
    assert (tmp_path / "explorer.db").exists()
    with sqlite3.connect(tmp_path / "explorer.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_save_get_update_and_verdicts_round_trip(backend, make_hypothesis):
    store = HypothesisStore(backend)
    h = make_hypothesis()
    store.save(h, project="p", author="ada")
    stored = store.get(h.id)
    assert stored.hypothesis == h
    assert (stored.project, stored.author, stored.status) == ("p", "ada", "untested")

    # a draft with no verdict may be changed in place (an edit after a verdict is a new
    # version: tests/hypotheses/test_versions.py)
    edited = replace(h, claim="neuron 0.3 fires on the concept", threshold=0.8)
    store.save(edited, project="p", author="ada")
    assert store.count("hypotheses") == 1
    assert store.get(h.id).hypothesis.claim == "neuron 0.3 fires on the concept"
    assert store.get(h.id).created == stored.created

    first, second = _verdict(h.id, 0.95), _verdict(h.id, 0.3, "refuted")
    store.record(first)
    store.record(second)
    assert store.verdicts(h.id) == [first, second]
    assert store.get(h.id).status == "refuted"
    assert [s.hypothesis.id for s in store.hypotheses("p")] == [h.id]
    assert store.hypotheses("other") == []
    assert store.projects() == ["p"]


def test_verdict_for_unknown_hypothesis_and_unknown_id_are_refused(backend):
    store = HypothesisStore(backend)
    with pytest.raises(KeyError, match="save the hypothesis first"):
        store.record(_verdict("nope"))
    with pytest.raises(KeyError, match="no hypothesis with id 'nope'"):
        store.get("nope")
    with pytest.raises(ValueError, match="non-empty name"):
        store.label("neuron 0.1", "x", rater="a", project="")


def test_labels_replace_a_raters_earlier_label(backend):
    store = HypothesisStore(backend)
    store.label("neuron 0.3", "loop", rater="ada", item="7")
    store.label("neuron 0.3", "line", rater="ada", item="7")
    store.label("neuron 0.3", "loop", rater="bob", item="7")
    assert [(lab.rater, lab.label) for lab in store.labels()] == [("ada", "line"), ("bob", "loop")]
    assert store.labels(unit="neuron 0.4") == []


def test_in_memory_and_sqlalchemy_urls(tmp_path):
    memory = HypothesisStore(":memory:")
    memory.label("head 1.4", "induction", rater="ada")
    assert memory.count("labels") == 1
    url = f"sqlite:///{tmp_path / 'url.db'}"
    by_url = HypothesisStore(url)
    by_url.label("head 1.4", "induction", rater="ada")
    assert HypothesisStore(url).count("labels") == 1
    with pytest.raises(ValueError, match="unknown table"):
        by_url.count("nope")


def _set_schema_version(target: str, version: int) -> None:
    store = HypothesisStore(target)
    with store._engine.begin() as conn:
        conn.execute(schema_version_table.update().values(version=version))
    store.close()


def test_schema_version_is_recorded_and_a_newer_one_refused(backend):
    assert HypothesisStore(backend).schema_version == SCHEMA_VERSION
    _set_schema_version(backend, SCHEMA_VERSION + 98)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 98}, newer"):
        HypothesisStore(backend)


def test_an_older_schema_is_migrated_forward(backend, monkeypatch):
    HypothesisStore(backend).close()
    _set_schema_version(backend, 0)
    ran = []
    monkeypatch.setitem(MIGRATIONS, 0, lambda conn: ran.append(conn))
    assert HypothesisStore(backend).schema_version == SCHEMA_VERSION
    assert len(ran) == 1


def test_threads_with_their_own_stores_lose_nothing(backend, make_hypothesis):
    path = backend
    HypothesisStore(path).close()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            store = HypothesisStore(path)
            for i in range(15):
                store.save(make_hypothesis(id=f"t{worker}-{i}"), project="race")
                store.label("neuron 0.3", "loop", rater=f"r{worker}", item=str(i), project="race")
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = HypothesisStore(path)
    ids = {s.hypothesis.id for s in store.hypotheses("race")}
    assert ids == {f"t{w}-{i}" for w in range(4) for i in range(15)}
    assert len(store.labels("race")) == 60


def _write_stream(path: str, worker: int, n_writes: int, go, acks) -> None:
    """A writer process: hypotheses, verdicts and labels in turn, acknowledging each commit."""
    store = HypothesisStore(path)
    acks.send("ready")
    go.wait()
    last = ""
    for i in range(n_writes):
        if i % 3 == 0:
            last = f"w{worker}-{i}"
            h = Hypothesis(
                claim=f"worker {worker} write {i}",
                units=f"neuron 0.{i % 16}",
                measure=NeuronSelectivity(),
                threshold=0.9,
                formation=Split([0, 1]),
                held_out=Split([2, 3]),
                id=last,
            )
            store.save(h, project="race", author=f"worker{worker}")
        elif i % 3 == 1:
            store.record(replace(_verdict(last), value=float(i), seed=worker))
        else:
            store.label(
                f"neuron 0.{worker}",
                f"label {i}",
                rater=f"worker{worker}",
                item=str(i),
                project="race",
            )
        acks.send(i)  # sent only after the write returned, i.e. committed
    acks.close()


def _start(db: Path, worker: int, n_writes: int, go):
    """A real OS process (forked, so it need not import torch again) writing to ``db``."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_write_stream, args=(str(db), worker, n_writes, go, send))
    proc.start()
    send.close()
    return proc, receive


def _expected(worker: int, n: int) -> tuple[set[str], set[tuple[str, float]], set[str]]:
    """What ``_write_stream`` writes in its first ``n`` writes."""
    hyps, verdicts, labels = set(), set(), set()
    for i in range(n):
        if i % 3 == 0:
            hyps.add(f"w{worker}-{i}")
        elif i % 3 == 1:
            verdicts.add((f"w{worker}-{i - 1}", float(i)))
        else:
            labels.add(f"label {i}")
    return hyps, verdicts, labels


def _check_integrity(target: str) -> None:
    """SQLite's own integrity check; on PostgreSQL, every table reads back in full."""
    if target.startswith("postgresql"):
        store = HypothesisStore(target)
        for table in ("projects", "hypotheses", "verdicts", "labels"):
            store.count(table)
        store.close()
        return
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_eight_processes_by_two_hundred_writes_lose_nothing(backend):
    db = backend
    HypothesisStore(db).close()
    n_workers, n_writes = 8, 200
    go = multiprocessing.get_context("fork").Event()
    workers = [_start(db, w, n_writes, go) for w in range(n_workers)]
    for _, acks in workers:  # every worker has opened the store before anyone writes
        assert acks.recv() == "ready"
    go.set()
    for proc, acks in workers:
        received = []
        while True:
            try:
                received.append(acks.recv())
            except EOFError:
                break
        proc.join(timeout=300)
        assert proc.exitcode == 0
        assert received == list(range(n_writes))

    store = HypothesisStore(db)
    stored = store.hypotheses("race")
    labels = store.labels("race")
    for w in range(n_workers):
        hyps, verdicts, label_texts = _expected(w, n_writes)
        mine = [s for s in stored if s.author == f"worker{w}"]
        assert {s.hypothesis.id for s in mine} == hyps
        assert {(s.hypothesis.id, v.value) for s in mine for v in s.verdicts} == verdicts
        assert {lab.label for lab in labels if lab.rater == f"worker{w}"} == label_texts
    assert store.count("hypotheses") + store.count("verdicts") + store.count("labels") == (
        n_workers * n_writes
    )
    _check_integrity(db)


def test_a_writer_killed_mid_stream_keeps_every_committed_row(backend):
    db = backend
    go = multiprocessing.get_context("fork").Event()
    go.set()
    proc, acks = _start(db, 0, 100_000, go)
    assert acks.recv() == "ready"
    committed = [acks.recv() for _ in range(90)]
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the worker is inside its next write
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    while acks.poll():  # acknowledgements already in the pipe were committed too
        try:
            committed.append(acks.recv())
        except EOFError:
            break

    _check_integrity(db)  # the database opens and is sound
    store = HypothesisStore(db)
    hyps, verdicts, labels = _expected(0, max(committed) + 1)
    stored = store.hypotheses("race")
    assert hyps <= {s.hypothesis.id for s in stored}
    assert verdicts <= {(s.hypothesis.id, v.value) for s in stored for v in s.verdicts}
    assert labels <= {lab.label for lab in store.labels("race")}
    # beyond what was acknowledged, at most the one write in flight may have landed
    total = store.count("hypotheses") + store.count("verdicts") + store.count("labels")
    assert len(committed) <= total <= len(committed) + 1
    store.label("neuron 0.1", "still writable", rater="after-kill")
    assert store.labels(unit="neuron 0.1")[0].label == "still writable"


def test_without_server_binaries_the_postgresql_tests_say_why(monkeypatch):
    import postgres_server

    monkeypatch.setattr(postgres_server, "find_bin", lambda: None)
    assert "PostgreSQL server binaries (initdb, pg_ctl) not found" in (
        postgres_server.why_unavailable()
    )


def test_postgresql_urls_use_the_installed_driver():
    from explorer.hypotheses._database import _url

    assert _url("postgresql://ada@db.example/room") == "postgresql+psycopg://ada@db.example/room"
    assert _url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
