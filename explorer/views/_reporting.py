"""How a view answers: page requests on anywidget's command channel, and the decorators that
put a Python call on the view's one error path.

``page_request`` makes a method a command the page sends with ``invoke`` (anywidget's
``experimental.command``); ``reports_errors`` makes an observer or a public method report
its failure as the view's ``error`` instead of raising. Both go through the view's one
reporter, ``ExplorerWidget._reported`` (``_base``), and its one writer of ``error``,
``_fail``.

>>> @page_request(background=True)
... def _page_sweep(self):
...     ...
>>> _page_sweep._anywidget_command, _page_sweep.__name__
(True, '_page_sweep')
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from anywidget.experimental import command

__all__ = ["Reply", "page_request", "reports_errors", "reports_user_code_errors"]

F = TypeVar("F", bound=Callable[..., Any])
#: what a page request answers: its outcome (done, failed, cancelled, dropped; started for
#: a background one, which then reports through ``busy`` and ``last_run``) and ``error``
Reply = tuple[dict[str, str], list]


def page_request(
    *, background: bool = False, user_code: bool = False
) -> Callable[[Callable[..., None]], Callable[..., Reply]]:
    """Make ``method(self, **arguments)`` a request the page sends through anywidget's
    command channel: ``invoke("<method name>", arguments)`` in the view's JS
    (``exRequest``). It runs in the view's queue through the one reporter (an exception
    becomes ``error``); ``background`` runs it on a worker thread with the pending line and
    Cancel; ``user_code`` (a hypothesis's measure) reports even ``SystemExit``. The reply is
    ``{"outcome", "error"}``; ``busy`` and ``last_run`` name the request without its
    ``_page_`` prefix."""

    def decorate(method: Callable[..., None]) -> Callable[..., Reply]:
        name = method.__name__.removeprefix("_page_")

        @functools.wraps(method)
        def answer(self: Any, msg: Any, _buffers: list[bytes]) -> Reply:
            outcome = self._from_page(name, method, msg, background, user_code)
            # started: it reports later through busy, last_run and error
            return {"outcome": outcome, "error": "" if outcome == "started" else self.error}, []

        return command(answer)

    return decorate


def reports_errors(method: F) -> F:
    """Decorate an observer or a public action: it runs in the view's queue and its
    exceptions become ``self.error`` (the one error path); success clears it. A
    cancellation passes through to the request that was cancelled."""
    return _reporting(method, Exception)


def reports_user_code_errors(method: F) -> F:
    """``reports_errors`` for actions that run user code (a hypothesis's measure): a
    ``SystemExit`` or ``KeyboardInterrupt`` raised there becomes ``self.error`` too, instead
    of ending the kernel."""
    return _reporting(method, BaseException)


def _reporting(method: F, caught: type[BaseException]) -> F:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = None
        with self._request(), self._reported(caught):
            result = method(self, *args, **kwargs)
        return result

    wrapper._in_queue = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
