"""A live room under load: participants writing at once, the mentor's board keeping up.

``n`` simulated participants join one session on one PostgreSQL server, each on a thread
with its own connection (its own ``join``), and each writes a record (a label of a new
example) every second for ``seconds``. The mentor's ``SessionBoard`` listens (LISTEN/NOTIFY)
and redraws on every commit. For every record the board's update latency is the time from
its commit (the store's clock, ``committed_at``) to the moment the board first holds it
(``SessionBoard.on_board``, after its traits are set: what goes to the page); the rows
report its median and 95th percentile, and the records lost (written but never on the
board, or on it twice): there must be none.

Sizes: ``tiny`` (4 participants, 4 s: what the tests run), ``small`` (30 participants,
30 s), ``full`` (30 participants, 5 minutes: the figure of docs/live_sessions.md).
``python -m benchmarks.bench_live_session [tiny|small|full]`` starts a throwaway server
(``tests/postgres_server.py``: Debian's PostgreSQL binaries and psycopg), or uses
``EXPLORER_BENCH_POSTGRES`` (a SQLAlchemy URL of an empty database whose user may create
roles) when set.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.results import Row, unavailable
from benchmarks.timing import percentile
from explorer.session import join, start
from explorer.views import SessionBoard

BENCHMARK = "live session"
TARGET_S = 2.0  # the bound: every record on the board within 2 s of its commit
SETTINGS = {"tiny": (4, 4.0), "small": (30, 30.0), "full": (30, 300.0)}
UNITS = tuple(f"neuron 0.{i}" for i in range(8))


@contextmanager
def postgres_url() -> Iterator[str | None]:
    """An empty database's URL (None, with the reason printed, where no server can run)."""
    given = os.environ.get("EXPLORER_BENCH_POSTGRES")
    if given:
        yield given
        return
    tests = Path(__file__).resolve().parents[1] / "tests"
    sys.path.insert(0, str(tests))  # the throwaway server the store's tests use
    try:
        import postgres_server
    finally:
        sys.path.remove(str(tests))
    why = postgres_server.why_unavailable()
    if why is not None:
        print(f"no PostgreSQL server: {why}")
        yield None
        return
    server = postgres_server.PostgresServer().start()
    try:
        yield server.new_database()
    finally:
        server.stop()


class _Seen:
    """What the board showed: the first time each record was on it, and duplicates."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], float] = {}
        self.committed: dict[tuple[str, str], float] = {}
        self.duplicates = 0
        self.boards = 0
        self.lock = threading.Lock()

    def __call__(self, board: Any) -> None:
        now = time.time()
        keys = [(r.kind, r.id) for r in board.records]
        with self.lock:
            self.boards += 1
            self.duplicates = max(self.duplicates, len(keys) - len(set(keys)))
            for record in board.records:
                key = (record.kind, record.id)
                if key not in self.first:
                    self.first[key] = now
                    self.committed[key] = float(record.committed_at)


def _participant(
    url: str, code: str, name: str, seconds: float, start_at: float, written: list[str]
) -> None:
    """Join, then label a new example every second until ``seconds`` have passed."""
    me = join(url, code, name=name)
    try:
        k = 0
        while True:
            due = start_at + k
            if due - start_at >= seconds:
                break
            time.sleep(max(0.0, due - time.time()))
            me.label(UNITS[k % len(UNITS)], "concept" if k % 3 else "other", item=str(k))
            written.append(f"{name}/{k}")
            k += 1
    finally:
        me.close()


def measure(url: str, n: int, seconds: float, max_records: int = 200) -> dict[str, Any]:
    """Run the room; the latencies (s) of every record and what was lost."""
    mentor = start(url, mentor="mentor", title=f"load: {n} participants")
    seen = _Seen()
    board = SessionBoard(mentor, max_records=max_records)
    board.on_board.append(seen)
    written: list[str] = []
    start_at = time.time() + 2.0  # everyone joined and waiting: the writes start together
    threads = [
        threading.Thread(
            target=_participant,
            args=(url, mentor.code, f"p{i:02d}", seconds, start_at + i / n, written),
            name=f"participant {i}",
        )
        for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settle = time.time() + 10  # the last commits' boards
    while time.time() < settle and sum(k[0] == "label" for k in seen.first) < len(written):
        time.sleep(0.05)
    board.stop()
    final = mentor.board()
    mentor.close()
    labels = {key for key in seen.first if key[0] == "label"}
    latencies = [seen.first[k] - seen.committed[k] for k in labels]
    on_board = sum(r.kind == "label" for r in final.records)
    return {
        "written": len(written),
        "seen": len(labels),
        "on_final_board": on_board,
        "lost": len(written) - len(labels),
        "duplicates": seen.duplicates + (len(final.records) - len(set(final.records))),
        "latencies": latencies,
        "boards": seen.boards,
    }


def run(size: str = "full") -> list[Row]:
    n, seconds = SETTINGS[size]
    case = f"{n} participants, a record each per second for {seconds:g} s"
    with postgres_url() as url:
        if url is None:
            return [unavailable(BENCHMARK, case, "no PostgreSQL server here (make postgres-deps)")]
        got = measure(url, n, seconds)
    lat = got["latencies"]
    median, p95 = statistics.median(lat), percentile(lat, 95)
    details = {
        "written": got["written"], "seen": got["seen"], "lost": got["lost"],
        "duplicates": got["duplicates"], "boards_pushed": got["boards"],
        "p95_s": p95, "max_s": max(lat), "median_s": median,
    }  # fmt: skip
    return [
        Row(BENCHMARK, f"{case}: board update latency, median", "s", median,
            target=f"< {TARGET_S:g} s", met=median < TARGET_S, details=details),
        Row(BENCHMARK, f"{case}: board update latency, p95", "s", p95,
            target=f"< {TARGET_S:g} s", met=p95 < TARGET_S, details=details),
        Row(BENCHMARK, f"{case}: records lost or duplicated", "records",
            float(got["lost"] + got["duplicates"]), target="0",
            met=got["lost"] == 0 and got["duplicates"] == 0, details=details),
    ]  # fmt: skip


if __name__ == "__main__":
    from benchmarks.results import format_table

    print(format_table(run(sys.argv[1] if len(sys.argv) > 1 else "full")))
