"""explorer._cache: a result two processes need at once is computed once (``one_writer``).

flock locks belong to an open file, so two threads that each open the lock conflict just
as two processes do: threads stand in for the test suite's workers here.
"""

from __future__ import annotations

import threading

from explorer._cache import cached_path, one_writer, write_cached


def _needs(path, computed: list[str], who: str, started: threading.Event, go: threading.Event):
    with one_writer(path):
        started.set()
        if not path.is_file():
            computed.append(who)
            go.wait(10)  # the first holds the lock while the second asks for it
            write_cached(path, who.encode())


def test_the_second_asker_waits_and_reads_the_first_ones_file(tmp_path):
    path = cached_path("example", "seed", 1, folder=tmp_path)
    computed: list[str] = []
    first_in, second_in, go = threading.Event(), threading.Event(), threading.Event()
    first = threading.Thread(target=_needs, args=(path, computed, "first", first_in, go))
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=_needs, args=(path, computed, "second", second_in, go))
    second.start()
    assert not second_in.wait(0.5)  # blocked while the first computes
    go.set()
    first.join(10)
    second.join(10)
    assert second_in.is_set() and computed == ["first"]
    assert path.read_bytes() == b"first"


def test_without_a_cache_folder_nothing_is_locked(monkeypatch):
    monkeypatch.delenv("EXPLORER_CACHE", raising=False)
    assert cached_path("example", 1) is None
    with one_writer(None), one_writer(None):  # no lock to wait on
        pass
