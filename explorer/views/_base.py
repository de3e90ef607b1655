"""What every explorer widget shares: the error banner trait and running analysis safely.

A click in the browser changes a synced trait; the widget's observer calls analysis and
assigns the results to traits. If analysis raises, the message goes to ``error`` (shown
as a banner in the page) instead of escaping into the comm handler, so the kernel and the
widget stay usable and the next click clears it.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import anywidget
import traitlets

from explorer.views.serialise import css

F = TypeVar("F", bound=Callable[..., Any])


class ExplorerWidget(anywidget.AnyWidget):
    """Base class: an anywidget with an ``error`` message and the shared stylesheet.

    The browser hears of a view once, complete: the comm to the page opens when the
    subclass's ``__init__`` has finished (with every trait it computed), not when
    ``anywidget.AnyWidget.__init__`` runs. anywidget gives a new model 2 s (wall clock) to
    load its module, and every message sent to it meanwhile holds up JupyterLab's handling
    of all later kernel messages until it is ready; they are then handled in one burst that
    can starve the next models past their 2 s ("[anywidget] Failed to initialize model.",
    after which a model drops every message). Sending the computed traits as updates right
    after the opening did exactly that under CPU load.
    """

    _css = css("views.css")
    error = traitlets.Unicode(
        "", help="readable message of the last failed analysis; empty when the view is up to date"
    ).tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def open_when_built(self: ExplorerWidget, *args: Any, **kw: Any) -> None:
            outermost = not self.__dict__.get("_building", False)
            self.__dict__["_building"] = True
            try:
                init(self, *args, **kw)
            finally:
                if outermost:
                    self.__dict__["_building"] = False
            if outermost:
                self.open()  # one comm_open carrying the whole state

        cls.__init__ = open_when_built  # type: ignore[method-assign]

    def open(self) -> None:
        """Open the comm to the page, unless the view is still being built (see above)."""
        if not self.__dict__.get("_building", False):
            super().open()

    def _fail(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self.error == message:  # the page must hear a repeat: it re-enables what failed
            self.error = ""
        self.error = message
        self.log.debug("analysis failed in %s:\n%s", type(self).__name__, traceback.format_exc())


def reports_errors(method: F) -> F:
    """Decorate an observer or action: its exceptions become ``self.error``, success clears it."""
    return _reporting(method, Exception)


def reports_user_code_errors(method: F) -> F:
    """``reports_errors`` for actions that run user code (a hypothesis's measure): a
    ``SystemExit`` or ``KeyboardInterrupt`` raised there becomes ``self.error`` too, instead
    of ending the kernel."""
    return _reporting(method, BaseException)


def _reporting(method: F, caught: type[BaseException]) -> F:
    @functools.wraps(method)
    def wrapper(self: ExplorerWidget, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except caught as exc:
            self._fail(exc)
            return None
        self.error = ""
        return result

    return wrapper  # type: ignore[return-value]


def check_range(name: str, value: int, n: int, what: str = "") -> int:
    """Trait validation: raise a TraitError naming the valid range."""
    if not 0 <= value < n:
        where = f" {what}" if what else ""
        valid = f"0..{n - 1}" if n > 0 else "none"
        raise traitlets.TraitError(f"{name} {value} out of range: valid {name}s are {valid}{where}")
    return value
