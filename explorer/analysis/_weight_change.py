"""Relative weight change between two handles of one architecture, per layer, head and
neuron, read through the handle protocol (``weight``, ``unit_weights``): ``comparison``'s
``weights`` maps (``||W_B - W_A|| / ||W_A||`` over each unit's own weights)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explorer.models.handle import ModelHandle

_HEAD_WEIGHTS = ("query", "key", "value", "query_bias", "key_bias", "value_bias", "attn_out")
_LAYER_WEIGHTS = (*_HEAD_WEIGHTS, "attn_out_bias", "mlp_in", "mlp_out", "mlp_out_bias")
_MODEL_WEIGHTS = ("embed", "pos_embed", "unembed", "unembed_bias")


def _relative(delta_sq: torch.Tensor, base_sq: torch.Tensor) -> torch.Tensor:
    """``sqrt(delta_sq / base_sq)``; 0 where nothing changed, inf where A was all zero."""
    out = (delta_sq / base_sq).sqrt()
    return torch.where(delta_sq == 0, torch.zeros_like(out), out)


_CHUNK = 2**20  # entries converted to float64 at a time: an embedding is never copied whole


def _sq(a: torch.Tensor, b: torch.Tensor, dims: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum (b - a)^2, sum a^2)`` over ``dims`` in float64; a whole-tensor sum runs in
    chunks of rows, so a 50k-token embedding costs megabytes, not a float64 copy."""
    if a.ndim and tuple(dims) == tuple(range(a.ndim)) and a.numel() > _CHUNK:
        rows = max(1, _CHUNK // max(1, a[0].numel()))
        d = s = torch.zeros((), dtype=torch.float64)
        for ca, cb in zip(a.split(rows), b.split(rows)):
            dd, ss = _sq(ca, cb, tuple(range(ca.ndim)))
            d, s = d + dd, s + ss
        return d, s
    a, b = a.double(), b.double()
    return (b - a).square().sum(dims), a.square().sum(dims)


def transformer_weights(
    model: ModelHandle, other: ModelHandle
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    n_layers, n_heads = model.n_layers, model.n_heads or 0
    head_d = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    head_a = torch.zeros_like(head_d)
    layer_d = torch.zeros(n_layers, dtype=torch.float64)
    layer_a = torch.zeros_like(layer_d)
    width = max(model.layer_widths) if model.has_mlp else 0
    neuron_d = torch.full((n_layers, width), float("nan"), dtype=torch.float64)
    neuron_a = torch.ones_like(neuron_d)
    for layer in range(n_layers):
        for name in _LAYER_WEIGHTS:
            if name.startswith("mlp") and not model.has_mlp:
                continue
            wa, wb = model.weight(name, layer), other.weight(name, layer)
            d, a = _sq(wa, wb, tuple(range(wa.ndim)))
            layer_d[layer] += d
            layer_a[layer] += a
            if name in _HEAD_WEIGHTS:
                d, a = _sq(wa, wb, tuple(range(1, wa.ndim)))
                head_d[layer] += d
                head_a[layer] += a
        if model.has_mlp:
            d_in, a_in = _sq(model.weight("mlp_in", layer), other.weight("mlp_in", layer), (0,))
            d_out, a_out = _sq(model.weight("mlp_out", layer), other.weight("mlp_out", layer), (1,))
            n = d_in.shape[0]
            neuron_d[layer, :n], neuron_a[layer, :n] = d_in + d_out, a_in + a_out
    maps = {"layer": _relative(layer_d, layer_a).float()}
    if n_heads:
        maps["head"] = _relative(head_d, head_a).float()
    if model.has_mlp:
        maps["neuron"] = _relative(neuron_d, neuron_a).float()
    whole = {}
    for name in _MODEL_WEIGHTS:
        try:
            wa, wb = model.weight(name), other.weight(name)
        except ValueError:  # no learned position embedding
            continue
        d, a = _sq(wa, wb, tuple(range(wa.ndim)))
        whole[name] = float(_relative(d, a))
    return maps, whole


def plain_weights(model: ModelHandle, other: ModelHandle) -> dict[str, torch.Tensor]:
    """Plain MLP/CNN: each unit's incoming and outgoing weights (``unit_weights``)."""
    widths = model.layer_widths
    neuron = torch.full((len(widths), max(widths)), float("nan"), dtype=torch.float64)
    layer_d = torch.zeros(len(widths), dtype=torch.float64)
    layer_a = torch.zeros_like(layer_d)
    for layer, width in enumerate(widths):
        for n in range(width):
            d = a = torch.zeros((), dtype=torch.float64)
            for direction in ("incoming", "outgoing"):
                wa = model.unit_weights(layer, n, direction)
                dd, aa = _sq(wa, other.unit_weights(layer, n, direction), tuple(range(wa.ndim)))
                d, a = d + dd, a + aa
                if direction == "incoming":
                    layer_d[layer] += dd
                    layer_a[layer] += aa
            neuron[layer, n] = _relative(d, a)
    return {"layer": _relative(layer_d, layer_a).float(), "neuron": neuron.float()}
