"""nbclient's NotebookClient, made robust against a missed wake-up on the kernel's sockets.

nbclient waits for a cell's reply with ``await socket.poll(timeout)`` on a zmq.asyncio
socket. Now and then (in our runs, one notebook in three with both cores busy, always in
a cell whose widgets send comm messages) the event loop misses the socket's
edge-triggered wake-up: the reply sits in the socket and is read only when the poll times
out. With the tests' 900 s timeout, a 15 s notebook then took 900 s and failed
(pyzmq issue 1558 describes the same: "the poller will return a received event after the
timeout"). It happened with ipykernel 6.31 and 7.4 alike, so it is the client's side.

``NotebookClient`` here polls in short slices instead: at the end of each slice zmq checks
the socket itself, so a missed wake-up costs at most ``SLICE_S`` seconds. The tests, the
docs build and the first-widget benchmark all execute notebooks through it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from jupyter_core.utils import run_sync
from nbclient import NotebookClient as _NotebookClient

#: the longest a message that has arrived can wait unread
SLICE_S = 0.25


def _in_slices(
    get_msg: Callable[..., Awaitable[dict[str, Any]]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def get_msg_in_slices(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(SLICE_S, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_slices


class NotebookClient(_NotebookClient):
    """nbclient's client whose shell and iopub waits poll in ``SLICE_S`` slices."""

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = _in_slices(channel.get_msg)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)
