"""The mentor's live board: each board the watcher hands over reaches the page in one
message, from the watcher's thread, with no Refresh; the truth only after the reveal."""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

import pytest
from page_requests import invoke
from sessions import StaticSession as _Session
from sessions import board_of

from explorer.views import SessionBoard, board_payload


class _RecordingComm:
    """Stands in for the kernel comm: records each message with the thread that sent it."""

    sent: ClassVar[list[tuple[str, dict[str, Any], str]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = f"comm-{len(self.sent)}"
        self.kernel = object()
        self.sent.append((self.comm_id, "open", {}, threading.current_thread().name))

    def send(self, data=None, buffers=None):
        method = data.get("method", "")
        self.sent.append((self.comm_id, method, data, threading.current_thread().name))

    def on_msg(self, callback):
        pass

    def close(self, *args, **kwargs):
        pass


def test_each_commit_reaches_the_page_in_one_message_from_the_watchers_thread(monkeypatch):
    import comm

    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: _RecordingComm(**kwargs))
    _RecordingComm.sent = []
    session = _Session(board_of(records=1))
    view = SessionBoard(session, interval=0.25)
    assert session.interval == 0.25 and view.live
    mine = view.comm.comm_id
    assert [m for c, m, _, _ in _RecordingComm.sent if c == mine] == ["open"]  # opens complete
    for n in (2, 3, 4):
        session.commit(board_of(records=n, version=n))
    updates = [(d, t) for c, m, d, t in _RecordingComm.sent if c == mine and m == "update"]
    assert len(updates) == 3  # one message per board, however many traits changed
    for (data, thread), n in zip(updates, (2, 3, 4)):
        assert thread == "watcher"
        state = data["state"]
        assert [r["id"] for r in state["records"]] == [f"r{i}" for i in range(n)]
        assert state["n_records"] == n and state["version"] == n
        json.dumps(state, allow_nan=False)  # plain JSON: NaN would break the message
    view.close()
    assert session.stopped == 1 and not view.live


def test_wait_for_returns_when_a_pushed_board_satisfies_the_condition():
    session = _Session(board_of(records=1))
    view = SessionBoard(session)
    assert not view.wait_for(lambda board: len(board.records) >= 3, timeout=0.05)
    later = threading.Timer(0.1, session.commit, args=(board_of(records=3),))
    later.start()
    assert view.wait_for(lambda board: len(board.records) >= 3, timeout=10)
    later.join()


def test_the_board_shows_participants_units_leaderboard_as_given():
    view = SessionBoard.of(board_of(records=2))
    (bo,) = [p for p in view.participants if p["name"] == "bo"]
    assert bo == {
        "name": "bo", "hypotheses": 2, "verdicts": {"supported": 1, "refuted": 1},
        "passes_spent": 120, "budget": 2000,
    }  # fmt: skip
    (unit,) = view.units
    assert unit["labels"] == {"bo": "concept", "cy": "concept"} and unit["kappa"] == 0.5
    assert view.units[0]["raters"] == 2
    assert [r["name"] for r in view.leaderboard] == ["bo", "cy"]
    assert view.records[0]["committed_at"] == pytest.approx(1_700_000_000.0)
    assert view.code == "ROOM-42" and view.n_records == 2


def test_the_truth_reaches_the_page_only_after_the_reveal():
    hidden = board_of(records=1, truth={"planted": "neuron 0.3"}, revealed=False)
    assert board_payload(hidden)["truth"] == {}  # even if a board carried it
    view = SessionBoard.of(hidden)
    assert view.truth == {} and not view.revealed
    view.show(board_of(records=1, truth={"planted": "neuron 0.3"}, revealed=True, version=2))
    assert view.truth == {"planted": "neuron 0.3"} and view.revealed
    assert [r["correct"] for r in view.leaderboard] == [1, 0]


def test_the_board_shown_exports_as_html(tmp_path):
    with pytest.raises(ValueError, match="no board to export yet"):
        SessionBoard(None).export_html(tmp_path / "none.html")
    view = SessionBoard.of(board_of(records=2))
    page = view.export_html(tmp_path / "room.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "<td>r1</td>" in page


def test_a_late_older_board_does_not_overwrite_a_newer_one():
    view = SessionBoard.of(board_of(records=3, version=3))
    view.show(board_of(records=2, version=2))
    assert view.n_records == 3 and view.version == 3


def test_only_the_latest_records_travel_but_all_are_counted():
    view = SessionBoard.of(board_of(records=12), max_records=5)
    assert [r["id"] for r in view.records] == ["r7", "r8", "r9", "r10", "r11"]
    assert view.n_records == 12


def test_reveal_from_the_page_asks_the_session_and_a_participant_cannot():
    session = _Session(board_of(records=1))
    view = SessionBoard(session)
    assert view.can_reveal
    assert invoke(view, "_page_reveal") == {"outcome": "done", "error": ""}
    assert session.revealed == 1

    class Participant:
        role = "participant"

        def reveal(self):
            raise AssertionError("the view must not ask a participant's session to reveal")

        def board(self):
            return board_of(records=1)

        def watch(self, callback, interval=0.5):
            return session.watch(callback, interval)

    seen = SessionBoard(Participant())
    reply = invoke(seen, "_page_reveal")
    assert reply["outcome"] == "failed"
    assert reply["error"] == "PermissionError: only the mentor's session can reveal the truth"


def test_the_page_cannot_write_the_board():
    view = SessionBoard.of(board_of(records=1))
    reply = invoke(view, "_page_set", truth={"planted": "guess"})
    assert reply["outcome"] == "started"
    view.wait()
    assert view.truth == {} and "the page cannot set truth" in view.error


def test_a_board_that_cannot_be_drawn_is_the_error_and_the_next_one_clears_it():
    session = _Session(board_of(records=1))
    view = SessionBoard(session)
    session.commit(object())  # not a board
    assert view.error.startswith("AttributeError: ") and view.n_records == 1
    session.commit(board_of(records=2))
    assert view.error == "" and view.n_records == 2


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(TypeError, match="SessionBoard shows a session .* got str"):
        SessionBoard("ROOM-42")
    with pytest.raises(ValueError, match="interval must be a positive number of seconds, got 0"):
        SessionBoard(_Session(board_of()), interval=0)
