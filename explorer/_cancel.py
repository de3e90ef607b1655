"""Cooperative cancellation: a long computation stops at its next forward pass when asked.

A widget runs a request from the page on a worker thread inside ``cancellable(event)``.
Every forward pass of a ``ModelHandle`` (``handle(x)``, ``run_with_hooks`` and so every
``cache_pass``, one nnsight trace) calls ``check_cancelled()`` first, so a sweep of a
hundred chunks, or a remote trace per chunk, stops before its next pass once Cancel has
set the event, by raising ``Cancelled``. A pass already running finishes (a remote trace
cannot be interrupted halfway); nothing it computed is kept.

Outside ``cancellable`` the check is one context-variable read: analysis stays pure and
knows nothing of widgets. The flag is a context variable, so it belongs to the worker
thread that set it; the kernel's own cells never see it.

>>> import threading
>>> stop = threading.Event()
>>> with cancellable(stop):
...     check_cancelled()  # not asked yet: nothing happens
...     stop.set()
...     check_cancelled()
Traceback (most recent call last):
...
explorer._cancel.Cancelled: cancelled from the page
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_flag: ContextVar[threading.Event | None] = ContextVar("explorer_cancel", default=None)


class Cancelled(BaseException):
    """Raised at a forward pass once the running request was cancelled.

    A ``BaseException`` (like ``KeyboardInterrupt``): code that catches ``Exception`` to
    record a failure (a hypothesis measure, one unit of a sweep) must not swallow it.
    """


@contextmanager
def cancellable(event: threading.Event) -> Iterator[threading.Event]:
    """Within this block (in this thread), ``check_cancelled`` raises once ``event`` is set."""
    token = _flag.set(event)
    try:
        yield event
    finally:
        _flag.reset(token)


def check_cancelled() -> None:
    """Raise ``Cancelled`` if the surrounding ``cancellable`` block was asked to stop."""
    event = _flag.get()
    if event is not None and event.is_set():
        raise Cancelled("cancelled from the page")
