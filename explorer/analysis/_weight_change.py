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


_CHUNK = 2**20  # entries differenced at a time: an embedding is never copied whole


def _sq(a: torch.Tensor, b: torch.Tensor, dims: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum (b - a)^2, sum a^2)`` over ``dims``, as float64: rows are summed in float32
    (a row's relative error ~1e-7) and rows added in float64; a whole-tensor sum runs in
    chunks of rows, so a 50k-token embedding costs megabytes, not a copy."""
    dims = tuple(dims)
    full = a.ndim > 0 and dims == tuple(range(a.ndim))
    if full and a.numel() > _CHUNK:
        rows = max(1, _CHUNK // max(1, a[0].numel()))
        d = s = torch.zeros((), dtype=torch.float64)
        for ca, cb in zip(a.split(rows), b.split(rows)):
            dd, ss = _sq(ca, cb, dims)
            d, s = d + dd, s + ss
        return d, s
    inner = dims[1:] if full else dims
    d, s = (b - a).square(), a.square()
    if inner:
        d, s = d.sum(inner), s.sum(inner)
    d, s = d.double(), s.double()
    return (d.sum(), s.sum()) if full else (d, s)


def transformer_weights(
    model: ModelHandle, other: ModelHandle
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    n_layers, n_heads = model.n_layers, model.n_heads or 0
    head_d = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    head_a = torch.zeros_like(head_d)
    layer_d = torch.zeros(n_layers, dtype=torch.float64)
    layer_a = torch.zeros_like(layer_d)
    width = max(model.layer_widths) if model.has_mlp else 0
    neuron_d = torch.zeros(n_layers, width, dtype=torch.float64)
    neuron_a = torch.zeros_like(neuron_d)
    for layer in range(n_layers):
        for name in _LAYER_WEIGHTS:
            if name.startswith("mlp") and not model.has_mlp:
                continue
            wa, wb = model.weight(name, layer), other.weight(name, layer)
            # each weight is read once: per unit where it has units, the layer sums those
            unit_dims = {"mlp_in": (0,), "mlp_out": (1,)}.get(name)
            if name in _HEAD_WEIGHTS:
                unit_dims = tuple(range(1, wa.ndim))
            d, a = _sq(wa, wb, unit_dims or tuple(range(wa.ndim)))
            layer_d[layer] += d.sum()
            layer_a[layer] += a.sum()
            if name in _HEAD_WEIGHTS:
                head_d[layer] += d
                head_a[layer] += a
            elif unit_dims is not None:
                neuron_d[layer, : d.shape[0]] += d
                neuron_a[layer, : d.shape[0]] += a
    for layer, n in enumerate(model.layer_widths if model.has_mlp else ()):
        neuron_d[layer, n:] = float("nan")  # past a layer's width
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
