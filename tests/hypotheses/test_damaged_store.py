"""A damaged store opens and gives what can be read, and names what cannot, in sentences:
a zeroed page, a truncated file, rows whose project is missing. Never SQL in a message."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from test_hypothesis_store import _verdict

from explorer.hypotheses import HypothesisStore, from_json, to_json
from explorer.hypotheses._database import StoreDamagedError

N = 300
PAGE = 4096


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, request) -> Path:
    """A store of N hypotheses (long claims, so they fill many pages), verdicts and labels."""
    make = request.getfixturevalue("make_hypothesis_factory")
    path = tmp_path_factory.mktemp("damaged") / "good.db"
    store = HypothesisStore(path)
    for i in range(N):
        h = make(id=f"h{i:04d}", claim=f"claim <{i:04d}> " + "x" * 300)
        store.save(h, project="room", author="ada")
        if i % 10 == 0:
            store.record(_verdict(h.id))
    store.label("neuron 0.3", "loop", rater="ada", project="room")
    store.close()
    with sqlite3.connect(path) as con:  # everything into the main file, nothing in the WAL
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="module")
def make_hypothesis_factory():
    from explorer.hypotheses import Hypothesis, NeuronSelectivity, Split

    def make(**changes):
        fields = dict(claim="c", units="neuron 0.3", measure=NeuronSelectivity("auroc"),
                      threshold=0.9, formation=Split(range(10)), held_out=Split(range(10, 20)))  # fmt: skip
        return Hypothesis(**(fields | changes))

    return make


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def test_a_zeroed_page_loses_only_its_rows_and_names_them(healthy, tmp_path):
    path = _copy(healthy, tmp_path / "zeroed.db")
    data = bytearray(path.read_bytes())
    at = data.find(b"claim <0150>")
    page = at // PAGE
    on_page = {
        f"h{m.decode()}"
        for m in re.findall(rb"claim <(\d{4})>", data[page * PAGE : (page + 1) * PAGE])
    }
    data[page * PAGE : (page + 1) * PAGE] = bytes(PAGE)
    path.write_bytes(bytes(data))

    store = HypothesisStore(path)
    assert store.count("hypotheses") == N  # the id index survived
    listed = store.hypotheses("room")  # raised a raw DatabaseError with SQL before
    lost = {f"h{i:04d}" for i in range(N)} - {s.hypothesis.id for s in listed}
    assert on_page <= lost and len(lost) < 10  # the page's rows, and rows it began or ended
    named = {u.id for u in listed.unreadable if u.table == "hypotheses"}
    assert named == lost
    summary = listed.unreadable[0].reason
    assert f"read {N - len(lost)} of {N} hypothesis rows" in summary
    assert all("[SQL" not in str(u) and "SELECT" not in str(u) for u in listed.unreadable)
    with pytest.raises(ValueError, match="unreadable: .*damaged page"):
        store.get(sorted(on_page)[0])

    report = store.check()
    assert not report.ok
    assert report.rows["hypotheses"] == (N - len(lost), N)
    assert any("integrity check" in p for p in report.problems)
    assert any(f"{len(lost)} of {N} rows are on damaged pages" in p for p in report.problems)

    fresh = HypothesisStore(tmp_path / "fresh.db")  # what can be read moves to a new store
    from_json(to_json(store, "room"), fresh)
    assert fresh.count("hypotheses") == N - len(lost)
    assert fresh.check().ok


def test_a_truncated_file_opens_read_only_with_what_it_holds(healthy, tmp_path):
    path = _copy(healthy, tmp_path / "truncated.db")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)

    store = HypothesisStore(path)  # was "not a hypothesis store (or is damaged)"
    assert "malformed" in store.damaged
    listed = store.hypotheses("room")
    assert 0 < len(listed) < N
    summary = listed.unreadable[0].reason
    assert re.search(rf"read \d+ of {N} hypothesis rows", summary)  # the index counts them
    named = {u.id for u in listed.unreadable if u.table == "hypotheses"}
    assert named == {f"h{i:04d}" for i in range(N)} - {s.hypothesis.id for s in listed}
    assert store.projects() == ["room"]
    assert store.count("hypotheses") == N
    with pytest.raises(StoreDamagedError, match="damaged .* opened read-only.*to_json"):
        store.label("neuron 0.1", "loop", rater="ada")
    report = store.check()
    assert not report.ok and "[SQL" not in str(report)


def test_rows_of_a_missing_project_are_reported_not_hidden(tmp_path, make_hypothesis_factory):
    path = tmp_path / "orphans.db"
    store = HypothesisStore(path)
    store.save(make_hypothesis_factory(id="lost"), project="gone")
    store.save(make_hypothesis_factory(id="kept"), project="room")
    store.label("neuron 0.3", "loop", rater="ada", project="gone")
    store.close()
    with sqlite3.connect(path) as con:  # as a hand edit or a damaged page would leave it
        con.execute("DELETE FROM projects WHERE name = 'gone'")

    store = HypothesisStore(path)
    listed = store.hypotheses("room")
    assert [s.hypothesis.id for s in listed] == ["kept"]
    assert [(u.table, u.id) for u in listed.unreadable] == [("hypotheses", "lost")]
    assert "project id 1, which is missing" in listed.unreadable[0].reason
    with pytest.raises(ValueError, match="'lost' is unreadable: .*project id 1, which is missing"):
        store.get("lost")
    problems = store.check().problems
    assert any("hypothesis 'lost'" in p and "missing" in p for p in problems)
    assert any("1 labels belong to missing projects" in p for p in problems)


def test_a_healthy_store_checks_ok(backend, make_hypothesis_factory):
    store = HypothesisStore(backend)
    store.save(make_hypothesis_factory(id="a"), project="room")
    store.record(_verdict("a"))
    report = store.check()
    assert report.ok, str(report)
    assert report.rows == {
        "projects": (1, 1),
        "hypotheses": (1, 1),
        "verdicts": (1, 1),
        "labels": (0, 0),
    }
