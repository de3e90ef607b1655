"""One queue per view: requests from Python and from the page run one at a time, on the
model they started on.

``RequestQueue`` is mixed into ``ExplorerWidget`` (``_base``): a reentrant lock per view,
taken by every request (a page request, an action or observer called from Python,
``set_model``). The outermost request of a thread records the model it runs on (identity
and weights version, no hashing); if the view's model is another one when it ends, what
it computed is dropped: the view redraws on the model it has now (``_use_model``, as ``set_model`` does),
or where a view cannot, the traits it changed are put back; ``error`` says what was dropped.

>>> class Counter(RequestQueue):
...     model = None
...     _depth_seen = []
...     @in_queue
...     def bump(self):
...         self._depth_seen.append(self.__dict__["_depth"])
>>> c = Counter()
>>> c.bump(); c._depth_seen
[1]
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["Busy", "RequestQueue", "in_queue"]

F = TypeVar("F", bound=Callable[..., Any])


class Busy(RuntimeError):
    """The view is running another request and the caller must not wait for it."""


_local = threading.local()


def _held() -> set[int]:
    """The views whose queue this thread holds (ids)."""
    if not hasattr(_local, "views"):
        _local.views = set()
    return _local.views


class RequestQueue:
    """The view's queue and the model check (see the module docstring). The view provides
    ``model``, ``_use_model``, ``_redraws_on_new_model``, ``_fail`` and its traits."""

    def _queue(self) -> threading.RLock:
        """The view's lock: one request at a time, whichever thread sends it."""
        return self.__dict__.setdefault("_queue_lock", threading.RLock())

    @contextlib.contextmanager
    def _request(self, *, wait: bool = True) -> Iterator[dict[str, Any]]:
        """Run one request in the view's queue. The outermost request of a thread records
        the model it runs on and, when it ends on another model, drops its result.

        Waits for the request running unless ``wait`` is False (the page's messages, which
        must not block the kernel: Cancel comes that way) or this thread is inside another
        view's request (a linked trait): then a busy view raises ``Busy``, so two views'
        workers never wait for each other."""
        lock, held = self._queue(), _held()
        mine = id(self) not in held  # else: this thread's own request, nested
        if not mine or (wait and not held):
            lock.acquire()
        elif not lock.acquire(blocking=False):
            running = getattr(self, "busy", "") or "another request"
            raise Busy(
                f"{type(self).__name__} is still running {running}: wait for it or press "
                "Cancel, then try again"
            )
        if mine:
            held.add(id(self))
        try:
            depth = self.__dict__.get("_depth", 0)
            self.__dict__["_depth"] = depth + 1
            record: dict[str, Any] = {"dropped": ""}
            if depth == 0:
                self.__dict__["_ran_on"] = self._model_token()
                self.__dict__["_record"] = record
                before = {name: getattr(self, name) for name in self._result_traits()}
            else:
                record = self.__dict__.get("_record", record)
            try:
                yield record
                if depth == 0:
                    self._drop_if_model_changed(before, record)
            finally:
                self.__dict__["_depth"] = depth
        finally:
            if mine:
                held.discard(id(self))
            lock.release()

    def _model_token(self) -> tuple[int, int] | None:
        """(identity, weights version) of the view's model: cheap, no hashing; None
        without a model."""
        model = self.__dict__.get("model")
        version = getattr(model, "weights_version", None)
        if not callable(version):
            return None
        try:
            return id(model), int(version())
        except Exception:  # a remote model whose weights are not here: nothing to compare
            return None

    def _model_label(self) -> str:
        model = self.__dict__.get("model")
        name = getattr(model, "name", type(model).__name__)
        try:
            return f"{name} @{model.fingerprint()}"  # type: ignore[union-attr]
        except Exception:
            return str(name)

    def _rebase_model(self) -> None:
        """The request running changed the model on purpose (``set_model``, a scrubber's
        step): its result belongs to the new model."""
        if self.__dict__.get("_depth", 0):
            self.__dict__["_ran_on"] = self._model_token()

    def _result_traits(self) -> list[str]:
        names = getattr(self, "_allowed_traits", list)()
        return [n for n in names if n not in getattr(self, "_page_read_only", ())]

    def _drop_if_model_changed(self, before: dict[str, Any], record: dict[str, Any]) -> None:
        ran_on, now = self.__dict__.get("_ran_on"), self._model_token()
        if ran_on is None or now is None or ran_on == now:
            return
        label = self._model_label()
        how = "its weights changed" if ran_on[0] == now[0] else "another model replaced it"
        record["dropped"] = (
            f"a result computed on the view's model before {how} was dropped, not shown "
            f"under {label}: the view shows {label} now; run the request again if needed"
        )
        self.__dict__["_ran_on"] = now
        if self._redraws_on_new_model():
            self._use_model(None)  # drop what was computed and redraw, as set_model does
            if self.has_trait("model_name"):
                self.model_name = label
        else:
            with self.hold_sync():
                for name, value in before.items():
                    if getattr(self, name) is not value:
                        setattr(self, name, value)
        self._fail(RuntimeError(record["dropped"]))


def in_queue(method: F) -> F:
    """Decorate a method that computes for the view: it runs in the view's queue (waits for
    the request running, from Python or the page) and its result is dropped if the view's
    model changed while it ran."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._request():
            return method(self, *args, **kwargs)

    wrapper._in_queue = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
