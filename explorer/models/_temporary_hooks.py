"""Hooks added for one run and removed after it, touching only their own hook points.

>>> from explorer.models import zoo
>>> m = zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8)
>>> seen = []
>>> with m.hooks([("blocks.0.attn.hook_z", lambda act, hook: seen.append(hook.name))]):
...     _ = m(torch.tensor([[1, 2, 3]]))
>>> seen, m.model.blocks[0].attn.hook_z.fwd_hooks
(['blocks.0.attn.hook_z'], [])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch  # noqa: F401  (the example uses it)

__all__ = ["TemporaryHooks"]

HookFn = Callable[..., Any]


class TemporaryHooks:
    """``with``: add forward hooks ``[(name or name filter, fn(act, hook))]`` to hook points
    (through ``HookPoint.add_hook``, as transformer-lens does) and remove exactly those."""

    def __init__(
        self,
        hook_dict: dict[str, Any],
        fwd_hooks: Sequence[tuple[str | Callable[[str], bool], HookFn]],
    ) -> None:
        self._pairs = []
        for name, fn in fwd_hooks:
            if isinstance(name, str):
                self._pairs.append((hook_dict[name], fn))
            else:
                self._pairs += [(hp, fn) for n, hp in hook_dict.items() if name(n)]
        self._added: list[tuple[Any, Any]] = []

    def __enter__(self) -> TemporaryHooks:
        try:
            for point, fn in self._pairs:
                point.add_hook(fn, dir="fwd")
                self._added.append((point, point.fwd_hooks[-1]))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for point, handle in reversed(self._added):
            handle.hook.remove()
            point.fwd_hooks = [h for h in point.fwd_hooks if h is not handle]
        self._added.clear()
