"""The two live-session notebooks run as a room: the mentor's notebook and three
participants' notebooks, each in its own kernel, at the same time, on one SQLite store.

The mentor's notebook waits for the room (``EXPLORER_ROOM_SIZE``), hands out, waits for a
verdict from everyone, reveals and exports; each participant joins with the code and their
name, opens their model, labels, is refused the truth, tests a hypothesis. (The browser
test, tests/browser/test_live_session_in_lab.py, runs the same room on PostgreSQL with
clicks.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from notebook_runner import execute, printed

from explorer.hypotheses import HypothesisStore, from_json
from explorer.session import SessionError, join

REPO = Path(__file__).resolve().parents[1]
MENTOR = REPO / "notebooks" / "live_session.ipynb"
PARTICIPANT = REPO / "notebooks" / "participant.ipynb"
NAMES = ("bo", "cy", "dee")


def _join_code(db: Path, timeout_s: float = 300) -> str:
    """The room the mentor's kernel opened (read from the store's file, as its owner)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    row = conn.execute("SELECT code FROM session_rooms").fetchone()
            except sqlite3.OperationalError:  # the tables are being created
                row = None
            if row:
                return str(row[0])
        time.sleep(0.2)
    raise AssertionError(f"the mentor's notebook opened no room in {db} in {timeout_s} s")


def _run(results: dict[str, Any], key: str, *args: Any, **kwargs: Any) -> threading.Thread:
    def work() -> None:
        try:
            results[key] = execute(*args, **kwargs)
        except BaseException as exc:  # reported by the test, with the notebook named
            results[key] = exc

    thread = threading.Thread(target=work, name=key)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_room_of_four_kernels_runs_the_mentor_and_participant_notebooks(tmp_path):
    db = tmp_path / "room.db"
    results: dict[str, Any] = {}
    mentor_env = {"EXPLORER_STORE": str(db), "EXPLORER_ROOM_SIZE": str(len(NAMES))}
    threads = [_run(results, "mentor", MENTOR, tmp_path, mentor_env, timeout=900)]
    code = _join_code(db)
    for name in NAMES:
        folder = tmp_path / name
        folder.mkdir()
        env = {"EXPLORER_STORE": str(db), "EXPLORER_JOIN_CODE": code, "EXPLORER_NAME": name}
        threads.append(_run(results, name, PARTICIPANT, folder, env, timeout=900))
    for thread in threads:
        thread.join(timeout=1200)
    failed = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    assert not failed, failed
    assert set(results) == {"mentor", *NAMES}

    mentor_out = printed(results["mentor"])
    for name in NAMES:  # each handed a seed of the study, in the order they joined
        assert f"{name}: planted.concept_neuron_model seed " in mentor_out
    assert mentor_out.count("planted neuron 0.3") == len(NAMES)  # the reveal's truth
    for name in NAMES:
        out = printed(results[name])
        # before the reveal: the truth refused with a sentence, only their own records read
        assert "reading the truth was refused: it is hidden until the mentor reveals it" in out
        assert f"labels I can read, by: ['{name}']" in out
        assert "0 of 200 passes spent" in out and "labelled 24 examples" in out

    with pytest.raises(SessionError):  # the mentor closed the room at the end
        join(str(db), code, name="late")

    store = HypothesisStore(db)
    (project,) = [p for p in store.projects() if p.startswith("session-")]
    hypotheses = store.hypotheses(project)
    # the widget saves its draft (-1) only when Test is pressed; -2 was tested from code
    assert sorted(h.hypothesis.id for h in hypotheses) == sorted(f"{n}-2" for n in NAMES)
    tested = {h.author: h.verdicts for h in hypotheses}
    assert {n: len(v) for n, v in tested.items()} == {n: 1 for n in NAMES}
    labels = store.labels(project)
    assert len(labels) == 24 * len(NAMES)
    assert {lab.rater for lab in labels} == set(NAMES)

    export = tmp_path / "live_session_export"
    record = (export / f"{project}.json").read_text(encoding="utf-8")
    again = HypothesisStore(":memory:")
    from_json(record, again)
    assert again.count("labels") == 24 * len(NAMES)
    report = (export / "report.html").read_text(encoding="utf-8")
    assert report.count("<svg") == 4 and "<h2>The truth</h2>" in report
    for name in NAMES:
        assert f"<td>{name}</td>" in report


def test_the_readme_and_the_docs_show_the_two_notebooks():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Live sessions", 1)[1].split("\n## ", 1)[0]
    page = (REPO / "docs" / "live_sessions.md").read_text(encoding="utf-8")
    for text in (section, page):
        assert "notebooks/live_session.ipynb" in text and "notebooks/participant.ipynb" in text
    assert "docs/live_sessions.md" in section
    assert "(live_sessions.md)" in (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    for heading in ("## The store: PostgreSQL in one command", "## Join codes", "## Roles",
                    "## Hand-outs and budgets", "## The reveal and the export"):  # fmt: skip
        assert heading in page
    assert MENTOR.exists() and PARTICIPANT.exists()
