"""``SessionBoard``: the mentor's live board of a session, pushed from the store.

A live session (``explorer.session``) keeps everyone's labels, hypotheses and verdicts in
one store. The board subscribes to ``session.watch`` (PostgreSQL LISTEN/NOTIFY, or polling
on SQLite): on every commit the watcher's thread hands it a new ``Board`` and the view
assigns it to its traits in one message, which the kernel's IOPub thread sends to the page
at once; no Refresh button, and the kernel stays free for the next cell meanwhile. It
shows, per participant, their hypotheses, verdicts and the passes spent of their budget;
per unit, everyone's labels and the room's agreement (kappa); the auditing game's
leaderboard (findings against passes); and the truth once the mentor reveals it. The
records list names every commit the board has seen, with its author and time.

The view only lays the board out: every number on it (kappa, findings, passes) is the
session's (``explorer.session``), computed in the store's layer.

>>> from types import SimpleNamespace as Row
>>> board = Row(code="ABC-123", title="room", revealed=False, version=1, truth=None,
...     participants=(Row(name="bo", hypotheses=1, verdicts={"supported": 1},
...                       passes_spent=40, budget=2000),),
...     units=(Row(unit="neuron 0.3", labels={"bo": "concept"}, kappa=None, raters=1),),
...     leaderboard=(Row(name="bo", findings=1, passes=40, correct=None),),
...     records=(Row(kind="verdict", id="v1", author="bo", committed_at=1.5),))
>>> view = SessionBoard.of(board)
>>> view.code, view.participants[0]["passes_spent"], view.records[0]["id"]
('ABC-123', 40, 'v1')
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import traitlets

from explorer.hypotheses import export_html
from explorer.session.watch import _wait_for_board
from explorer.views._base import ExplorerWidget
from explorer.views._reporting import page_request
from explorer.views.serialize import css, esm

__all__ = ["SessionBoard", "board_payload"]

_BOARD_TRAITS = (
    "code", "title", "revealed", "version", "participants", "units", "leaderboard", "truth",
    "records", "n_records",
)  # fmt: skip


class _Watcher(Protocol):
    """What the view keeps of ``session.watch``: a way to stop it."""

    def stop(self) -> None: ...


def _plain(value: Any) -> Any:
    """A board's value as JSON the page reads: tuples as lists, NaN as None, times as
    seconds since the epoch (the page compares them with its own clock)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "__dict__") and not isinstance(value, (str, int, bool)):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


def board_payload(board: Any, max_records: int = 200) -> dict[str, Any]:
    """The traits of a ``SessionBoard`` showing ``board``: plain JSON, the latest
    ``max_records`` records (``n_records`` counts them all)."""
    records = list(board.records)
    return {
        "code": str(board.code),
        "title": str(board.title),
        "revealed": bool(board.revealed),
        "version": int(board.version),
        "participants": _plain(board.participants),
        "units": _plain(board.units),
        "leaderboard": _plain(board.leaderboard),
        "truth": _plain(board.truth) if board.revealed and board.truth else {},
        "records": _plain(records[-max_records:] if max_records else records),
        "n_records": len(records),
    }


class SessionBoard(ExplorerWidget):
    """The live board of a session: updates itself on every commit to the store.

    Args:
        session: the mentor's session (``explorer.session.start(...)``): the board reads
            ``session.board()`` and subscribes with ``session.watch(callback, interval)``.
        interval: seconds between polls where the store cannot notify (SQLite).
        max_records: how many of the latest records the page lists (all are counted).

    ``stop()`` ends the subscription (closing the view does too); ``show(board)`` draws a
    board handed in (the watcher's callback); ``board`` is the one shown and
    ``export_html(path)`` writes it as a self-contained report. The page's Reveal button calls
    ``session.reveal()``: the truth appears with the next board.
    """

    _esm = esm("_hypothesis.js", "session_board.js")
    _css = css("views.css") + "\n" + css("hypothesis_view.css")
    _page_read_only: ClassVar[frozenset[str]] = ExplorerWidget._page_read_only | frozenset(
        _BOARD_TRAITS + ("live", "received_at")
    )

    code = traitlets.Unicode("", help="the join code participants type").tag(sync=True)
    title = traitlets.Unicode("", help="the session's title").tag(sync=True)
    revealed = traitlets.Bool(False, help="the mentor has revealed the truth").tag(sync=True)
    version = traitlets.Int(0, help="the store's version of the board shown").tag(sync=True)
    participants = traitlets.List(
        traitlets.Dict(),
        help="per participant: name, hypotheses, verdicts {status: n}, passes_spent, budget",
    ).tag(sync=True)
    units = traitlets.List(
        traitlets.Dict(), help="per unit: unit, labels {participant: label}, kappa, raters"
    ).tag(sync=True)
    leaderboard = traitlets.List(
        traitlets.Dict(), help="the auditing game: name, findings, passes, correct (after reveal)"
    ).tag(sync=True)
    truth = traitlets.Dict(help="the hidden truth; empty until the mentor reveals it").tag(
        sync=True
    )
    records = traitlets.List(
        traitlets.Dict(), help="the latest records: kind, id, author, committed_at (epoch s)"
    ).tag(sync=True)
    n_records = traitlets.Int(0, help="records on the board, all of them").tag(sync=True)
    live = traitlets.Bool(False, help="subscribed to the store's commits").tag(sync=True)
    received_at = traitlets.Float(
        0.0, help="when the kernel received the board shown (epoch s)"
    ).tag(sync=True)
    can_reveal = traitlets.Bool(False, help="the session can reveal (the mentor's)").tag(sync=True)

    def __init__(
        self,
        session: Any,
        *,
        interval: float = 0.5,
        max_records: int = 200,
        **kwargs: Any,
    ) -> None:
        if session is not None and not (
            callable(getattr(session, "board", None)) and callable(getattr(session, "watch", None))
        ):
            raise TypeError(
                "SessionBoard shows a session (explorer.session.start(...)) with board() and "
                f"watch(callback, interval), got {type(session).__name__}"
            )
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if max_records < 0:
            raise ValueError(f"max_records must be >= 0 (0: all), got {max_records!r}")
        self.session = session
        self.max_records = max_records
        self._watcher: _Watcher | None = None
        self._shown = threading.Condition()
        self.on_board: list[Callable[[Any], None]] = []  # called after each board is shown
        self.board: Any = None  # the board shown
        super().__init__(
            can_reveal=callable(getattr(session, "reveal", None))
            and getattr(session, "role", "mentor") == "mentor",
            **kwargs,
        )
        if session is not None:
            self.show(session.board())
            self._watcher = session.watch(self._receive, interval=interval)
            self.live = True

    @classmethod
    def of(cls, board: Any, *, max_records: int = 200) -> SessionBoard:
        """A board drawn once, with no session behind it (an exported board, a test)."""
        view = cls(None, max_records=max_records)
        view.show(board)
        return view

    def show(self, board: Any) -> None:
        """Draw ``board`` (from any thread: the watcher calls this on each commit). An
        older board than the one shown (a late poll) is skipped."""
        payload = board_payload(board, self.max_records)
        with self._shown:  # the watcher's thread and a Python call never interleave
            if payload["version"] < self.version:
                return
            with self.hold_sync():  # one message to the page per board
                for name, value in payload.items():
                    setattr(self, name, value)
                self.received_at = time.time()
            self.board = board
            self._shown.notify_all()
        for callback in list(self.on_board):
            callback(board)

    def wait_for(self, condition: Callable[[Any], bool], timeout: float = 60.0) -> bool:
        """Block until the board shown satisfies ``condition(board)`` (True), or ``timeout``
        seconds pass (False): the mentor's notebook waits for the room with it."""
        return _wait_for_board(self._shown, lambda: self.board, condition, timeout)

    def export_html(self, path: str | os.PathLike[str]) -> Path:
        """The board shown, as one self-contained HTML report at ``path``
        (``explorer.hypotheses.export_html``)."""
        if self.board is None:
            raise ValueError("no board to export yet: the view has not drawn one")
        return export_html(self.board, path)

    def _receive(self, board: Any) -> None:
        """The watcher's callback: a board that cannot be drawn is the view's error (the
        watcher's thread goes on), and the next one drawn clears it."""
        with self._reported():
            self.show(board)

    def stop(self) -> None:
        """End the subscription: the board stays as last drawn."""
        watcher = self.__dict__.pop("_watcher", None)  # None: never subscribed (a bad session)
        self._watcher = None
        if watcher is not None:
            watcher.stop()
        if self.live:
            self.live = False

    def close(self) -> None:
        self.stop()
        super().close()

    @page_request()
    def _page_reveal(self) -> None:
        """The page's Reveal: the session reveals; the watcher brings the truth."""
        if not self.can_reveal:
            raise PermissionError("only the mentor's session can reveal the truth")
        self.session.reveal()
