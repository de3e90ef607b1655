"""Boards of a made-up room for the view and report tests: two participants, one unit, a
leaderboard, ``records`` commits (``r0``, ``r1`` ...) one second apart."""

from __future__ import annotations

import datetime
from typing import Any

from explorer.session import Board, BoardRecord, LeaderRow, ParticipantRow, UnitRow

START = datetime.datetime.fromtimestamp(1_700_000_000, tz=datetime.timezone.utc)


def board_of(
    records: int = 0,
    *,
    version: int | None = None,
    truth: dict[str, Any] | None = None,
    revealed: bool = False,
) -> Board:
    """A board with ``records`` commits; the truth (if given) is in it, shown only once
    ``revealed``; bo's one finding is right, cy's wrong."""
    people = (
        ParticipantRow("bo", 2, {"supported": 1, "refuted": 1}, 120, 2000),
        ParticipantRow("cy", 1, {"inconclusive": 1}, 1900, 2000),
    )
    units = (UnitRow("neuron 0.3", {"bo": "concept", "cy": "concept"}, 0.5, 2),)
    leaders = (
        LeaderRow("bo", 1, 120, 1 if revealed else None),
        LeaderRow("cy", 1, 1900, 0 if revealed else None),
    )
    commits = tuple(
        BoardRecord(
            "label" if i % 2 else "verdict",
            f"r{i}",
            ("bo", "cy")[i % 2],
            START + datetime.timedelta(seconds=i),
        )
        for i in range(records)
    )
    return Board(
        code="ROOM-42",
        title="Planted neurons",
        revealed=revealed,
        participants=people,
        units=units,
        leaderboard=leaders,
        truth=truth,
        records=commits,
        version=records if version is None else version,
    )


class StaticSession:
    """What ``SessionBoard`` asks of a mentor's session, over boards handed in by hand:
    ``board()``, ``watch(callback, interval)`` (``commit(board)`` calls back from a thread
    named "watcher", as the store's watcher does), ``reveal()``."""

    def __init__(self, board: Board) -> None:
        self.latest = board
        self.callbacks: list[Any] = []
        self.stopped = 0
        self.revealed = 0
        self.interval: float | None = None

    def board(self) -> Board:
        return self.latest

    def watch(self, callback: Any, interval: float = 0.5) -> Any:
        self.callbacks.append(callback)
        self.interval = interval
        session = self

        class Watcher:
            def stop(self) -> None:
                session.stopped += 1

        return Watcher()

    def reveal(self) -> None:
        self.revealed += 1

    def commit(self, board: Board) -> None:
        import threading

        self.latest = board
        thread = threading.Thread(target=self.callbacks[-1], args=(board,), name="watcher")
        thread.start()
        thread.join()
