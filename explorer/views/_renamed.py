"""Old spellings of view arguments and traits that still work for one release.

Keyword arguments go through ``explorer._deprecate.renamed_arguments``; this module adds the
two shapes a view also needs: arguments that became keyword-only (``PatchingView(model,
inputs, corrupted, metric)`` -> ``PatchingView(model, inputs, corrupted=..., metric=...)``)
and a renamed trait read or set under its old name (``panel.kind`` -> ``panel.ablation``).
Each warns with a ``DeprecationWarning`` naming the new spelling.

>>> import warnings
>>> class Panel:
...     ablation = "zero"
...     kind = renamed_trait("kind", "ablation")
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     Panel().kind
'zero'
>>> print(caught[0].message)
Panel.kind is deprecated and goes away in explorer 0.4: write Panel.ablation
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from explorer._deprecate import REMOVED_IN

__all__ = ["keyword_only_now", "renamed_trait"]

F = TypeVar("F", bound=Callable[..., Any])


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"{old} is deprecated and goes away in {REMOVED_IN}: write {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def keyword_only_now(*names: str) -> Callable[[F], F]:
    """``names`` were positional and are keyword-only now: given by position, they are
    taken as keywords, with a warning; too many positions is a TypeError."""

    def wrap(function: F) -> F:
        params = inspect.signature(function).parameters.values()
        n_positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)  # with self
        name = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            extra = args[n_positional:]
            if extra:
                if len(extra) > len(names):
                    raise TypeError(
                        f"{name}() takes {n_positional - 1} positional arguments; "
                        f"give {', '.join(names)} by keyword"
                    )
                moved = dict(zip(names, extra))
                both = sorted(set(moved) & set(kwargs))
                if both:
                    raise TypeError(f"{name}() got {both[0]} by position and by keyword")
                given = ", ".join(f"{n}=..." for n in moved)
                # the caller is past this wrapper and the view's open_when_built (_base)
                old = f"{name}() with {', '.join(moved)} by position"
                _warn(old, f"{name}(..., {given})", stacklevel=4)
                kwargs.update(moved)
                args = args[:n_positional]
            return function(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap


def renamed_trait(old: str, new: str) -> property:
    """A class property ``old`` that reads and sets the trait ``new``, with a warning.

    The warning is attributed to this module, not to the caller's line: a notebook cell
    reading ``panel.kind`` to print JSON (a program reading the cell's output) gets no
    warning text in its output; tests and ``python -W default`` still see it."""

    def where(obj: Any) -> tuple[str, str]:
        cls = type(obj).__name__
        return f"{cls}.{old}", f"{cls}.{new}"

    def get(self: Any) -> Any:
        _warn(*where(self), stacklevel=2)
        return getattr(self, new)

    def set_(self: Any, value: Any) -> None:
        _warn(*where(self), stacklevel=2)
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated: the trait ``{new}``.")
