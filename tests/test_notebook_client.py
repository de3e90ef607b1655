"""scripts/notebook_client.py: waits for kernel messages in short slices, so a reply whose
wake-up the event loop missed is read within a slice, not at the cell's timeout."""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty

import pytest
from notebook_runner import NotebookClient

SLICE_S = sys.modules[NotebookClient.__module__].SLICE_S
_in_slices = sys.modules[NotebookClient.__module__]._in_slices


def run(coroutine):
    """Run ``coroutine`` to its end in a thread of its own (another test in this worker may
    have left an event loop running in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class MissedWakeUp:
    """A channel whose message has arrived, but whose poll only notices it on a fresh poll
    after ``polls_before`` polls have run to their timeout."""

    def __init__(self, polls_before: int):
        self.polls_before = polls_before
        self.timeouts: list[float | None] = []

    async def get_msg(self, timeout: float | None = None) -> dict:
        self.timeouts.append(timeout)
        if len(self.timeouts) > self.polls_before:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(0.001)  # stands for a poll that runs to its timeout
        raise Empty


def test_a_missed_wake_up_costs_a_slice_not_the_whole_timeout():
    channel = MissedWakeUp(polls_before=3)
    msg = run(_in_slices(channel.get_msg)(timeout=900))
    assert msg == {"msg_type": "execute_reply"}
    assert len(channel.timeouts) == 4
    assert all(t is not None and 0 < t <= SLICE_S for t in channel.timeouts)


def test_no_timeout_still_polls_in_slices():
    channel = MissedWakeUp(polls_before=2)
    run(_in_slices(channel.get_msg)(timeout=None))
    assert channel.timeouts == [SLICE_S] * 3


def test_the_timeout_still_ends_the_wait():
    channel = MissedWakeUp(polls_before=10**9)
    start = time.monotonic()
    with pytest.raises(Empty):
        run(_in_slices(channel.get_msg)(timeout=0.05))
    assert time.monotonic() - start < 5


def test_the_notebook_tests_use_the_sliced_client():
    import nbclient

    assert issubclass(NotebookClient, nbclient.NotebookClient)
    assert NotebookClient is not nbclient.NotebookClient
