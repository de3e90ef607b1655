"""What runs inside an nnsight trace of the nnsight backend, and travels to a server.

A remote trace (``remote=`` on ``explorer.load(..., backend="nnsight")``) ships the code
its body calls by value (``nnsight.register("explorer")``): these functions and the hook
functions of the analyses. So they name only plain data, tensors and each other, never a
handle (which would drag the model and transformer-lens along). ``_apply`` hands one module
tensor to the hooks that read or edit it, in transformer-lens's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

HookFn = Callable[..., Any]
_QKV = ("attn.hook_q", "attn.hook_k", "attn.hook_v")


class _Hook:
    """What a transformer-lens hook function receives as ``hook``: its name (and layer)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def layer(self) -> int:
        return int(self.name.split(".")[1])


@dataclass(frozen=True)
class SavedBytes:
    """What one trace saved, in bytes of data as ``torch.save`` writes it (``_nbytes``):
    ``total``; the ``output`` (logits, their reduction,
    or the residual stream at ``stop_at_layer``); the ``largest`` kept activation (after
    ``select``; 0 when none); and the hooks whose activations it kept."""

    total: int
    largest: int
    output: int
    hooks: tuple[str, ...]


def _nbytes(value: Any) -> int:
    """The bytes of ``value``'s data that ``torch.save`` writes (what a remote trace's
    response carries): its whole storage, so one element for a zero expanded to any shape,
    and all of the base tensor for a view into one (``clone`` a slice to ship only it)."""
    return value.untyped_storage().nbytes() if isinstance(value, torch.Tensor) else 0


def _total_bytes(values: list[Any]) -> int:
    """``_nbytes`` summed over distinct storages: ``torch.save`` writes a shared one once."""
    storages = {
        v.untyped_storage().data_ptr(): _nbytes(v) for v in values if isinstance(v, torch.Tensor)
    }
    return sum(storages.values())


def _save(value: Any) -> Any:
    # lazy: called inside an nnsight trace, so nnsight is loaded already; the module stays importable without it
    import nnsight

    return nnsight.save(value)


def _read(envoy: Any, where: str) -> Any:
    return envoy.input if where == "input" else envoy.output


def _to_tl(name: str, value: Any, view: dict[str, Any]) -> torch.Tensor:
    """A module's tensor in the shape transformer-lens gives the hook."""
    if name.endswith(("attn.hook_z", *_QKV)):  # [batch, pos, head, d_head]
        return value.reshape(*value.shape[:-1], -1, view["heads"][1])
    if name == "hook_pos_embed":
        return value.expand(view["batch"], *value.shape[1:])
    if name == "ln_final.hook_scale":
        x = value.float()
        if view["centre"]:
            x = x - x.mean(-1, keepdim=True)
        return (x.pow(2).mean(-1, keepdim=True) + view["eps"]).sqrt().to(value.dtype)
    return value


def _split_qkv(raw: torch.Tensor, view: dict[str, Any]) -> list[torch.Tensor]:
    """A fused query/key/value output as transformer-lens's ``[q, k, v]``, each
    ``[batch, pos, head, d_head]``."""
    heads, d_head = view["heads"]
    if view["fused"] == "gpt2":  # Conv1D output [q | k | v], each head-major
        return [x.reshape(*raw.shape[:-1], heads, d_head) for x in raw.split(heads * d_head, -1)]
    per_head = raw.reshape(*raw.shape[:-1], heads, 3 * d_head)  # NeoX: [q_h | k_h | v_h]
    return list(per_head.split(d_head, -1))


def _join_qkv(parts: list[torch.Tensor], raw: torch.Tensor, view: dict[str, Any]) -> torch.Tensor:
    if view["fused"] == "gpt2":
        return torch.cat([x.reshape(*raw.shape[:-1], -1) for x in parts], -1)
    return torch.cat(parts, -1).reshape(raw.shape)


def _apply(
    envoy: Any,
    where: str,
    writable: bool,
    hooks: list[tuple[str, list[HookFn], bool]],
    view: dict[str, Any],
    saved: dict[str, torch.Tensor],
) -> None:
    """Inside a trace: hand one module tensor to each hook's functions, keep the ones
    asked for in ``saved`` (after ``view["select"]``), write back any edit."""
    if where == "weights":
        raw = envoy.output[1]
        if raw is None:
            raise ValueError(
                f"{hooks[0][0]}: the model computes attention without returning its pattern; "
                "load it with attn_implementation='eager'"
            )
    else:
        raw = _read(envoy, where)
    fused = view["fused"] is not None and hooks[0][0].endswith(_QKV)
    parts = _split_qkv(raw, view) if fused else None
    for name, fns, keep in hooks:
        slot = _QKV.index(name[name.index("attn.") :]) if fused else 0
        act = parts[slot] if fused else _to_tl(name, raw, view)
        hook = _Hook(name)
        for fn in fns:
            new = fn(act, hook)
            if new is not None:
                if not writable:
                    raise ValueError(
                        f"{name} is read-only on the nnsight backend: Hugging Face computes "
                        "it inside one module, so an edit would not reach the rest of the pass"
                    )
                act = new
        if keep:
            chosen = act if view["select"] is None else view["select"](name, act)
            saved[name] = chosen.detach()
        if fused:
            parts[slot] = act
        else:
            raw_out = act
    if writable:  # always write back, so gradients reach the tensor the hooks saw
        value = _join_qkv(parts, raw, view) if fused else raw_out.reshape(raw.shape)
        if where == "input":
            envoy.input = value
        else:
            envoy.output = value
