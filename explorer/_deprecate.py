"""Old names that still work for one release, with a ``DeprecationWarning`` naming the new one.

docs/api.md keeps one name per concept (its glossary). When a parameter or a public name is
renamed to meet it, the old spelling goes through here, so a caller's code keeps running and
is told exactly what to write instead. Every shim says the release it goes away in.

>>> import warnings
>>> @renamed_arguments(k="n", target_class="target")
... def top(values, *, n=3, target=None):
...     return sorted(values)[-n:]
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     top([3, 1, 2], k=2)
[2, 3]
>>> print(caught[0].message)
top(k=...) is deprecated and goes away in explorer 0.4: write top(n=...)
>>> top([3, 1, 2], k=2, n=2)
Traceback (most recent call last):
...
TypeError: top() got both k= (the old name) and n=; write only n=
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REMOVED_IN = "explorer 0.4"


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"{old} is deprecated and goes away in {REMOVED_IN}: write {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_arguments(**old_to_new: str) -> Callable[[F], F]:
    """Accept each old keyword argument as its new name, with a warning; both at once is an error."""

    def wrap(function: F) -> F:
        name = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(
                        f"{name}() got both {old}= (the old name) and {new}=; write only {new}="
                    )
                _warn(f"{name}({old}=...)", f"{name}({new}=...)", stacklevel=3)
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        call.__deprecated_arguments__ = dict(old_to_new)  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap


def moved_names(
    module: str, moves: dict[str, tuple[str, Callable[[], Any]]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves names which moved elsewhere, with a warning.

    ``moves`` maps an old name to ``(where it lives now, a function returning it)``.
    """

    def __getattr__(name: str) -> Any:
        if name in moves:
            where, get = moves[name]
            _warn(f"{module}.{name}", where, stacklevel=3)
            return get()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
