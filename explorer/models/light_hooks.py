"""Hook points and a root module that indexes them, without importing transformer-lens.

The same protocol as transformer-lens's ``HookPoint`` / ``HookedRootModule`` (hook functions
``fn(activation, hook=point)``, ``add_hook``, ``fwd_hooks`` holding handles whose ``.hook``
removes them, ``hook_dict``, ``hooks()``, ``run_with_hooks``, ``run_with_cache``), for the
light transformer (``explorer.models.light``); ``act_name`` is transformer-lens's
``get_act_name`` for the kinds explorer asks for.

>>> act_name("pattern", 0), act_name("post", 1), act_name("scale")
('blocks.0.attn.hook_pattern', 'blocks.1.mlp.hook_post', 'ln_final.hook_scale')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class _Handle:
    """What transformer-lens's ``LensHandle`` holds and explorer reads: the torch handle."""

    __slots__ = ("context_level", "hook", "is_permanent")

    def __init__(self, hook: Any, is_permanent: bool = False, level: int | None = None) -> None:
        self.hook, self.is_permanent, self.context_level = hook, is_permanent, level


class HookPoint(nn.Module):
    """An identity module whose hooks get ``fn(activation, hook=self)`` (transformer-lens's
    signature); a hook that returns a tensor replaces the activation."""

    def __init__(self) -> None:
        super().__init__()
        self.fwd_hooks: list[_Handle] = []
        self.bwd_hooks: list[_Handle] = []
        self.ctx: dict[Any, Any] = {}
        self.name: str | None = None

    def add_hook(
        self,
        hook: Callable[..., Any],
        dir: str = "fwd",
        is_permanent: bool = False,
        level: int | None = None,
        prepend: bool = False,
    ) -> None:
        if dir == "fwd":

            def fwd(module: nn.Module, inputs: Any, output: torch.Tensor) -> Any:
                return hook(output, hook=self)

            handle = _Handle(self.register_forward_hook(fwd, prepend=prepend), is_permanent, level)
            hooks = self.fwd_hooks
        elif dir == "bwd":

            def bwd(module: nn.Module, grad_in: Any, grad_out: Any) -> Any:
                out = hook(grad_out[0], hook=self)
                return None if out is None else (out if isinstance(out, tuple) else (out,))

            handle = _Handle(
                self.register_full_backward_hook(bwd, prepend=prepend), is_permanent, level
            )
            hooks = self.bwd_hooks
        else:
            raise ValueError(f"dir must be 'fwd' or 'bwd', got {dir!r}")
        hooks.insert(0, handle) if prepend else hooks.append(handle)

    def remove_hooks(
        self, dir: str = "fwd", including_permanent: bool = False, level: int | None = None
    ) -> None:
        def keep(handles: list[_Handle]) -> list[_Handle]:
            kept = []
            for h in handles:
                if including_permanent or (
                    not h.is_permanent and (level is None or h.context_level == level)
                ):
                    h.hook.remove()
                else:
                    kept.append(h)
            return kept

        if dir in ("fwd", "both"):
            self.fwd_hooks = keep(self.fwd_hooks)
        if dir in ("bwd", "both"):
            self.bwd_hooks = keep(self.bwd_hooks)

    def clear_context(self) -> None:
        self.ctx = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def layer(self) -> int:
        if self.name is None:
            raise ValueError("this hook point has no name yet")
        return int(self.name.split(".")[1])

    def __repr__(self) -> str:
        return f"HookPoint(name={self.name!r})"


def act_name(name: str, layer: int | None = None) -> str:
    """transformer-lens's ``get_act_name`` for the kinds explorer asks for:
    ``act_name("pattern", 0) == "blocks.0.attn.hook_pattern"``."""
    if ("." in name or name.startswith("hook_")) and layer is None:
        return name
    alias = {"attn": "pattern", "attn_logits": "attn_scores", "key": "k", "query": "q",
             "value": "v", "mlp_pre": "pre", "mlp_mid": "mid", "mlp_post": "post"}  # fmt: skip
    name = alias.get(name, name)
    full = "" if layer is None else f"blocks.{layer}."
    if name in ("k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"):
        full += "attn."
    elif name in ("pre", "post", "mid", "pre_linear"):
        full += "mlp."
    full += f"hook_{name}"
    if name in ("scale", "normalized") and layer is None:
        full = f"ln_final.{full}"
    return full


class HookedRoot(nn.Module):
    """A module whose ``HookPoint`` submodules are named and indexed by ``setup()``."""

    def setup(self) -> None:
        """Name every hook point and index them (``hook_dict``), as transformer-lens does."""
        self.mod_dict: dict[str, nn.Module] = {}
        self.hook_dict: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if name == "":
                continue
            module.name = name  # type: ignore[assignment]
            self.mod_dict[name] = module
            if isinstance(module, HookPoint):
                self.hook_dict[name] = module

    # --- hooks, as transformer-lens's HookedRootModule ---------------------------------
    def hook_points(self) -> list[HookPoint]:
        return list(self.hook_dict.values())

    def reset_hooks(self, including_permanent: bool = False, level: int | None = None) -> None:
        for hp in self.hook_dict.values():
            hp.remove_hooks("both", including_permanent=including_permanent, level=level)

    def _pairs(self, hooks: Sequence[tuple[Any, Callable[..., Any]]]) -> Iterator[tuple]:
        for name, fn in hooks:
            if isinstance(name, str):
                yield self.mod_dict[name], fn
            else:
                yield from ((hp, fn) for n, hp in self.hook_dict.items() if name(n))

    @contextmanager
    def hooks(self, fwd_hooks=(), bwd_hooks=(), reset_hooks_end=True, clear_contexts=False):
        try:
            for hp, fn in self._pairs(fwd_hooks):
                hp.add_hook(fn, dir="fwd", level=-1)
            for hp, fn in self._pairs(bwd_hooks):
                hp.add_hook(fn, dir="bwd", level=-1)
            yield self
        finally:
            if reset_hooks_end:
                self.reset_hooks(level=-1)
            if clear_contexts:
                for hp in self.hook_dict.values():
                    hp.clear_context()

    def run_with_hooks(self, *args, fwd_hooks=(), bwd_hooks=(), reset_hooks_end=True,
                       clear_contexts=False, **kwargs):  # fmt: skip
        with self.hooks(fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts):
            return self(*args, **kwargs)

    def run_with_cache(self, *args, names_filter=None, remove_batch_dim=False, **kwargs):
        """``(output, {hook name: activation})``; a plain dict, not an ``ActivationCache``."""
        if names_filter is None:
            keep = lambda n: True
        elif isinstance(names_filter, str):
            keep = lambda n: n == names_filter
        elif callable(names_filter):
            keep = names_filter
        else:
            wanted = set(names_filter)
            keep = lambda n: n in wanted
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = (act[0] if remove_batch_dim else act).detach()  # type: ignore[index]

        hooks = [(n, save) for n in self.hook_dict if keep(n)]
        return self.run_with_hooks(*args, fwd_hooks=hooks, **kwargs), cache
