"""What every explorer widget shares: the model, the page's requests, errors and long runs.

A view holds its model (``set_model`` swaps it) and answers two kinds of input from the
page. A synced trait changes (a click on a cell sets ``layer``): its observer calls
analysis and assigns the results to traits. Or the page sends a request (a button) on
anywidget's own command channel: ``exRequest(model, "_page_sweep", args)`` in the JS calls
``experimental.invoke``, and the Python method of that name, decorated ``@page_request``
(an ``anywidget.experimental.command``), answers it with the arguments as keywords. Every
request goes through one reporter: an exception becomes ``error`` (shown as a banner in
the page) instead of escaping into the comm handler, so the kernel and the widget stay
usable, and success clears it. The reply, ``{outcome, error}``, tells the page the request
was answered, so it re-enables its buttons whatever happened (``requests`` counts them on
the kernel side).

Requests decorated ``@page_request(background=True)`` may take long (a sweep over a large
model, a remote nnsight trace per chunk); trait changes sent with ``exSet`` are one such
request, ``_page_set``. They run on a worker thread: the command returns at once
(``started``), so the kernel keeps running cells; ``busy`` names the running request (the
page shows "running… 12 s [Cancel]" and dims the view), and the ``_page_cancel`` command
sets a flag that the model handle checks before each forward pass (``explorer._cancel``). A
cancelled request ends with ``last_run["outcome"] == "cancelled"``; what it would have
changed is left (or, for trait changes, put back) as it was, so the view stays
consistent. Calls from Python (``panel.sweep()``) run in the caller's thread as before.

One request at a time per view, from Python or the page: every request (a page request,
an action or observer called from Python, ``set_model``) waits for the one running, so a
``panel.sweep()`` never runs beside the page's sweep and ``set_model(B)`` lands after the
sweep on A, then clears it; a page message finding the view busy is refused ("still
running ..."): the kernel's thread never waits. Each request carries the model it ran on
(identity and weights version); one that ends on another model (weights changed in place)
is dropped, the view redraws on its model and ``error`` says so (outcome "dropped"). The
page cannot set ``error``, ``busy``, ``spent``, ``last_run`` or ``model_name``: such a
change is refused and the page's copy put back.

Unknown keyword arguments raise ``TypeError`` naming the allowed ones.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import anywidget
import traitlets
from anywidget.experimental import command

from explorer._cancel import Cancelled, cancellable
from explorer._deprecate import renamed_arguments
from explorer.views._inputs import check_model
from explorer.views._relink import new_model_id, resync
from explorer.views._reporting import page_request
from explorer.views._request_queue import Busy, RequestQueue, in_queue
from explorer.views._results import ResultCache
from explorer.views.serialize import css


class ExplorerWidget(RequestQueue, anywidget.AnyWidget):
    """Base class: an anywidget with a model, page requests, ``error`` and long-run state.

    The browser hears of a view once, complete: the comm to the page opens when the
    subclass's ``__init__`` has finished (with every trait it computed), not when
    ``anywidget.AnyWidget.__init__`` runs. anywidget gives a new model 2 s (wall clock) to
    load its module, and every message sent to it meanwhile holds up JupyterLab's handling
    of all later kernel messages until it is ready, then in a burst that can starve the next
    models past their 2 s (after which anywidget drops every message to a model). Where it
    runs out all the same, the page relinks the model (``_link.js``, ``_relink.py``).
    """

    _css = css("views.css")
    #: traits that report what happened: the kernel sets them, the page only reads them
    _page_read_only: ClassVar[frozenset[str]] = frozenset(
        {"error", "busy", "spent", "last_run", "model_name"}
    )

    error = traitlets.Unicode(
        "", help="readable message of the last failed analysis; empty when the view is up to date"
    ).tag(sync=True)
    requests = traitlets.Int(
        0,
        help="page requests answered, failed or not (kernel side only: the page hears "
        "each answer as the reply to its invoke)",
    )
    busy = traitlets.Unicode(
        "", help="the page request running in the background now (e.g. 'sweep'); empty: idle"
    ).tag(sync=True)
    spent = traitlets.Dict(
        help="{forward, backward, examples}: the passes the view's model has run so far "
        "(ModelHandle.spent), refreshed after every request and analysis: the budget meter"
    ).tag(sync=True)
    last_run = traitlets.Dict(
        help="how the last background request ended: {action, outcome: done, failed or "
        "cancelled, seconds}"
    ).tag(sync=True)
    _ex_model_id = traitlets.Unicode(help="the comm's id, chosen here (_relink.py)").tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # anywidget collects the @command methods
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        model_at = _model_parameter(init)

        @functools.wraps(init)
        def open_when_built(self: ExplorerWidget, *args: Any, **kw: Any) -> None:
            if model_at is not None:  # a view of None: say so, not an AttributeError
                at, optional = model_at
                model = args[at] if len(args) > at else kw.get("model")
                if model is not None or not optional:
                    check_model(model, type(self).__name__)
            outermost = not self.__dict__.get("_building", False)
            self.__dict__["_building"] = True
            try:
                init(self, *args, **kw)
            finally:
                if outermost:
                    self.__dict__["_building"] = False
            if outermost:
                self._meter()
                self.open()  # one comm_open carrying the whole state

        cls.__init__ = open_when_built  # type: ignore[method-assign]

    def __init__(self, **kwargs: Any) -> None:
        unknown = [name for name in kwargs if name not in self._allowed_traits()]
        if unknown:
            arguments, traits = self._allowed_keywords()
            raise TypeError(
                f"{type(self).__name__} got an unexpected keyword argument {unknown[0]!r}: "
                f"allowed are the arguments {', '.join(arguments)} and the traits "
                f"{', '.join(traits)}"
            )
        self._cancel = threading.Event()
        self._worker: threading.Thread | None = None
        self._results = ResultCache()  # analysis results kept for redraws, bounded
        self._queue()
        model_id = new_model_id()  # the page finds the model by it to relink it (_relink.py)
        super().__init__(model_id=model_id, _ex_model_id=model_id, **kwargs)
        self.on_msg(resync)

    @classmethod
    def _allowed_traits(cls) -> list[str]:
        return [n for n in cls.class_trait_names(sync=True) if not n.startswith("_")]

    @classmethod
    def _allowed_keywords(cls) -> tuple[list[str], list[str]]:
        """The constructor's own arguments, and the traits a keyword may set."""
        params = inspect.signature(cls.__init__).parameters.values()
        named = [
            p.name
            for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        ]
        return named, sorted(set(cls._allowed_traits()) - set(named))

    def open(self) -> None:
        """Open the comm to the page, unless the view is still being built (see above)."""
        if not self.__dict__.get("_building", False):
            super().open()

    # ------------------------------------------------------------------ the model
    @renamed_arguments(data="inputs")
    def set_model(self, model: Any, inputs: Any = None) -> None:
        """Show ``model`` (a new checkpoint, say) from now on; ``inputs`` replaces the inputs
        where the view takes new ones (the hypothesis widgets). Cached results are dropped
        and the view redrawn. It waits for the request running (a page sweep on the old
        model) to end."""
        with self._request():
            self.model = model
            self._rebase_model()
            self._use_model(inputs)
            if self.has_trait("model_name"):
                self.model_name = f"{model.name} @{model.fingerprint()}"

    def _use_model(self, inputs: Any) -> None:
        """Drop what was computed for the old model and redraw (each view says how)."""
        raise TypeError(f"{type(self).__name__} cannot change its model: build a new view")

    @classmethod
    def _redraws_on_new_model(cls) -> bool:
        return cls._use_model is not ExplorerWidget._use_model

    # ------------------------------------------------------------------ page requests
    def _from_page(
        self,
        name: str,
        method: Callable[..., Any],
        arguments: Any,
        background: bool,
        user_code: bool,
    ) -> str:
        """Answer one page request (a ``@page_request`` command): run it in the background
        or here, through the one reporter; its outcome (``started`` for a background one)."""
        if not isinstance(arguments, dict):
            self._fail(
                TypeError(f"a {name} request takes a JSON object of arguments, got {arguments!r}")
            )
            self.requests += 1
            return "failed"
        if background:
            return self._start(name, method, arguments, user_code)
        return self._answer(method, arguments, user_code, wait=False)  # the kernel never waits

    def _answer(
        self,
        method: Callable[..., Any],
        arguments: dict[str, Any],
        user_code: bool,
        *,
        wait: bool = True,
    ) -> str:
        """Run one request through the one reporter, in the view's queue; its outcome:
        done, failed, cancelled or dropped (it ended on another model)."""
        try:
            with self._request(wait=wait) as record:
                outcome = self._answer_now(method, arguments, user_code)
        except Busy as exc:
            self._fail(exc)
            self.requests += 1
            return "failed"
        return "dropped" if record["dropped"] else outcome

    def _answer_now(
        self, method: Callable[..., Any], arguments: dict[str, Any], user_code: bool
    ) -> str:
        try:
            with self._reported(BaseException if user_code else Exception, clear_after=False):
                method(self, **arguments)  # wrong arguments from the page are reported too
        except Cancelled:
            return "cancelled"
        finally:
            self.requests += 1
        return "failed" if self.error else "done"

    @contextlib.contextmanager
    def _reported(
        self, caught: type[BaseException] = Exception, *, clear_after: bool = True
    ) -> Iterator[None]:
        """The one error path of every view: what fails inside (a page request, an
        observer, a Python call decorated ``reports_errors``) becomes ``error`` through
        ``_fail``, shown in the page's banner. ``error`` is cleared first and, unless
        ``clear_after`` is False (a page request: the observers it runs report their own
        failures), again on success. A cancellation passes through."""
        self.error = ""
        try:
            yield
        except Cancelled:
            raise
        except caught as exc:
            self._fail(exc)
        else:
            if clear_after:
                self.error = ""
        finally:
            self._meter()

    def _meter(self) -> None:
        """Refresh ``spent`` from the model's pass counters (views without one keep {})."""
        counters = getattr(self.__dict__.get("model"), "spent", None)
        if counters is None or not hasattr(counters, "snapshot"):
            return
        forward, backward, examples = counters.snapshot()
        now = {"forward": forward, "backward": backward, "examples": examples}
        if now != self.spent:
            self.spent = now

    def _start(
        self, name: str, method: Callable[..., Any], arguments: dict[str, Any], user_code: bool
    ) -> str:
        if self.busy:
            self._fail(RuntimeError(f"still running {self.busy}: wait for it or press Cancel"))
            self.requests += 1
            return "failed"
        self._cancel = cancel = threading.Event()
        self.busy = name
        started = time.monotonic()

        def work() -> None:
            outcome = "failed"
            try:
                with cancellable(cancel):
                    outcome = self._answer(method, arguments, user_code)
            finally:
                seconds = round(time.monotonic() - started, 2)
                with self.hold_sync():
                    self.last_run = {"action": name, "outcome": outcome, "seconds": seconds}
                    self.busy = ""

        # in the handler's context: the kernel keeps the message being answered in context
        # variables, so output the work displays (an on_step callback drawing into an Output
        # widget) goes where it went when the handler ran it itself
        context = contextvars.copy_context()
        thread_name = f"explorer {type(self).__name__}.{name}"
        self._worker = threading.Thread(
            target=context.run, args=(work,), name=thread_name, daemon=True
        )
        self._worker.start()
        return "started"

    def cancel(self) -> None:
        """Ask the running background request to stop at its next forward pass."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background request (if any) to end; False if it is still running."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    @page_request(background=True)
    def _page_set(self, **changes: Any) -> None:
        """The page's ``invoke("_page_set", {trait: value, ...})``: set synced traits as
        one change, in the background (a new grid may take long), with Cancel."""
        self._set_from_page(**changes)

    @command
    def _page_cancel(self, _msg: Any, _buffers: list[bytes]) -> tuple[dict[str, str], list]:
        """The page's Cancel: the running background request stops at its next pass (not
        queued: it must reach the request it cancels)."""
        self._cancel.set()
        return {"outcome": "done", "error": ""}, []

    @in_queue
    def _set_from_page(self, **changes: Any) -> None:
        """Set synced traits as one change (their observers run here). If cancelled, the
        traits are put back, so what is shown matches what is selected."""
        allowed = set(self._allowed_traits()) - self._page_read_only
        bad = sorted(set(changes) - allowed)
        if bad:
            why = (
                " (read-only: they report what happened)"
                if set(bad) <= self._page_read_only
                else ""
            )
            raise ValueError(f"the page cannot set {', '.join(bad)}{why}")
        before = {name: getattr(self, name) for name in changes}
        try:
            with self.hold_trait_notifications():
                for name, value in changes.items():
                    setattr(self, name, value)
        except Cancelled:
            with cancellable(threading.Event()):  # putting back must not be cancelled again
                with self.hold_trait_notifications():
                    for name, value in before.items():
                        setattr(self, name, value)
            raise

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """State the page sends (ipywidgets' "update" message). The read-only traits are
        not taken: the page's copy is put back to the kernel's value."""
        refused = sorted(set(sync_data) & self._page_read_only)
        if refused:
            sync_data = {k: v for k, v in sync_data.items() if k not in refused}
            self.log.warning("the page cannot set %s (read-only)", ", ".join(refused))
            self.send_state(refused)
        if not sync_data:
            return
        try:
            with self._request(wait=False):  # the kernel's thread never waits
                super().set_state(sync_data)
        except Busy as exc:  # a click while a request runs: the page shows what is computed
            self.send_state(sorted(sync_data))
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self.error == message:  # the page must hear a repeat: it re-enables what failed
            self.error = ""
        self.error = message
        self.log.debug("analysis failed in %s:\n%s", type(self).__name__, traceback.format_exc())


def _model_parameter(init: Callable[..., Any]) -> tuple[int, bool] | None:
    """The position (after self) of ``init``'s ``model`` argument, and whether it may be
    None (its default is None); None if it takes no model."""
    params = list(inspect.signature(init).parameters.values())[1:]
    for at, param in enumerate(params):
        if param.name == "model":
            return at, param.default is None
    return None


def check_range(name: str, value: int, n: int, what: str = "") -> int:
    """Trait validation: raise a TraitError naming the valid range."""
    if not 0 <= value < n:
        where = f" {what}" if what else ""
        valid = f"0..{n - 1}" if n > 0 else "none"
        raise traitlets.TraitError(f"{name} {value} out of range: valid {name}s are {valid}{where}")
    return value
