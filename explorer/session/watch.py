"""``Watcher``: calls ``callback(board)`` on a background thread whenever a room changed.

On PostgreSQL the watcher LISTENs on the room's channel (the store's triggers NOTIFY it on
every label, hypothesis, verdict, join, hand-out, reveal and spent pass) and rebuilds the
board when told; notifications that arrive together give one board. On SQLite, which has no
notifications, it polls every ``interval`` seconds for a new event or spent pass (one
small query) and rebuilds the board only then; so does a PostgreSQL watcher whose
listening connection failed (the error is in ``errors``). A callback that raises does not stop the
watcher: the error is kept in ``watcher.errors``.

>>> import tempfile
>>> from explorer.session import start, join
>>> url = tempfile.mkdtemp() + "/room.db"
>>> mentor = start(url, mentor="Ada", title="week 3")
>>> seen = []
>>> with mentor.watch(seen.append, interval=0.05) as watcher:
...     _ = join(url, mentor.code, name="Bo")
...     watcher.wait_for(lambda board: len(board.participants) == 1, timeout=10)
True
>>> seen[-1].participants[0].name
'Bo'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from explorer.session.board import Board
    from explorer.session.room import Session

__all__ = ["Watcher"]


class Watcher:
    """A background thread pushing each new board of ``session``'s room to ``callback``."""

    def __init__(
        self, session: Session, callback: Callable[[Board], Any], *, interval: float = 0.5
    ) -> None:
        if not callable(callback):
            raise TypeError(f"watch takes a function callback(board), got {callback!r}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.session = session
        self.callback = callback
        self.interval = float(interval)
        self.errors: list[BaseException] = []
        self.last: Board | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._postgres = session.store.url.startswith("postgresql")
        self._listening = threading.Event()
        # what the room was when watch() returned: any later commit is a change, never missed
        self._seen = None if self._postgres else session._version()
        self._thread = threading.Thread(
            target=self._run, name="explorer-session-watch", daemon=True
        )
        self._thread.start()
        if self._postgres:  # changes after watch() returns are never missed
            self._listening.wait(10)

    def __repr__(self) -> str:
        how = "LISTEN/NOTIFY" if self._postgres else f"polling every {self.interval:g} s"
        state = "stopped" if self._stop.is_set() else "running"
        return f"Watcher({self.session.code}, {how}, {state})"

    def _push(self) -> None:
        try:
            board = self.session.board()
            self.callback(board)
        except Exception as err:  # a callback's error must not end the watch
            self.errors.append(err)
            return
        with self._changed:
            self.last = board
            self._changed.notify_all()

    def _run(self) -> None:
        if self._postgres:
            try:
                self._listen()
                return
            except Exception as err:  # the listening connection failed: poll instead
                self.errors.append(err)
                self._listening.set()
                self._seen = self.session._version()
        self._poll()

    def _poll(self) -> None:
        seen = self._seen
        while not self._stop.wait(self.interval):
            try:
                now = self.session._version()
            except Exception as err:  # a busy file: try again next time
                self.errors.append(err)
                continue
            if now != seen:
                seen = now
                self._push()

    def _listen(self) -> None:
        import psycopg  # lazy: the PostgreSQL driver, only for a server store

        url = sa.engine.make_url(self.session.store.url)
        channel = f"explorer_session_{self.session.room_id}"
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database, autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(f"LISTEN {channel}")
            self._listening.set()
            while not self._stop.is_set():
                got = False
                for _ in conn.notifies(timeout=0.2):
                    got = True
                    break
                if got:
                    # drain what arrived together: one board for a burst
                    for _ in conn.notifies(timeout=0.02):
                        pass
                    self._push()

    def wait_for(self, condition: Callable[[Board], bool], timeout: float = 10.0) -> bool:
        """Block until a pushed board satisfies ``condition`` (True), or ``timeout`` s (False)."""
        return _wait_for_board(self._changed, lambda: self.last, condition, timeout)

    def stop(self) -> None:
        """Stop watching (returns once the thread has ended)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_for_board(
    changed: threading.Condition,
    current: Callable[[], Any],
    condition: Callable[[Any], bool],
    timeout: float,
) -> bool:
    """Block on ``changed`` until ``current()`` is a board satisfying ``condition`` (True),
    or ``timeout`` seconds pass (False); the watcher and the board view both wait so."""
    deadline = time.monotonic() + timeout
    with changed:
        while (board := current()) is None or not condition(board):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            changed.wait(left)
    return True
