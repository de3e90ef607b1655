"""Compare two models of one architecture unit by unit: what did fine-tuning change?

``compare(model, inputs, *, other=...)`` reads model A (``model``) and model B (``other``)
- base and fine-tuned, two checkpoints of a run, two seeds - and returns one
``Comparison`` of per-unit *change maps*, each ``[layer]``, ``[layer, head]`` or
``[layer, neuron]`` (NaN past a layer's width):

- ``weights``: relative weight change ``||W_B - W_A|| / ||W_A||`` per layer (all of the
  layer's weights), per head (its ``W_Q, W_K, W_V`` slices with their biases and its
  ``W_O`` slice) and per neuron (its ``W_in`` column and ``W_out`` row; for a plain MLP/CNN
  its incoming and outgoing weights). Read through the handle (``weight``,
  ``unit_weights``), never from the torch modules.
- ``attention``: per head, the Jensen-Shannon divergence (base 2, so in ``[0, 1]``) between
  A's and B's attention pattern of each query, averaged over the queries of the inputs
  (padding queries left out).
- ``activation_mean`` / ``activation_spread``: per unit, the mean and the standard deviation
  over tokens (padding left out) of the change of its activation on the same token:
  ``post_B - post_A`` for a neuron, ``||z_B - z_A||`` for a head.
- ``dla``: per unit, the change ``B - A`` of its batch-mean direct logit attribution
  (``direct_logit_attribution``) to ``target`` (minus ``against``) at ``position``, when a
  target is given; ``dla_a`` and ``dla_b`` hold each model's own.

Inputs are streamed in batches of ``batch_size`` rows: one cached pass per model and batch,
folded into per-unit sums (count, sum, sum of squares), so the state kept across batches is
O(units) - a few floats per head and neuron - and the transient memory is one batch's
activations of both models, never the activations of every token.

>>> from explorer.models import zoo
>>> a = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
>>> b = a.copy()
>>> b.set_weight("query", a.weight("query", 1)[2] * 2, 1, head=2)
>>> r = compare(a, torch.tensor([[0, 3, 5, 3, 7, 1]]), other=b)
>>> [(str(unit), round(value, 2)) for unit, value in r.top(1, measure="weights")]
[('head 1.2', 0.49)]
>>> float(r.attention[0].abs().max())  # layer 0 is untouched
0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_choice, check_positive
from explorer._display import MAX_ROWS, Shown, num, pandas, strongest
from explorer.analysis._change_statistics import Moments, js_divergence, samples
from explorer.analysis._model_pair import check_same_architecture, checked_pair
from explorer.analysis._weight_change import plain_weights, transformer_weights
from explorer.analysis.cache import iter_batches
from explorer.analysis.logit_attribution import (
    TokenSpec,
    describe_direction,
    head_dla,
    neuron_dla,
    read_direction,
    resolve_positions,
    resolve_tokens,
)
from explorer.analysis.units import Head, Neuron
from explorer.models.handle import ModelHandle

__all__ = ["MEASURES", "Comparison", "compare"]

MEASURES = ("weights", "attention", "activation_mean", "activation_spread", "dla")
_ROWS = 32  # default inputs per pass: both models' activations of one batch are held at once


@dataclass(frozen=True, repr=False)
class Comparison(Shown):
    """Per-unit change maps from model A (``names[0]``) to model B (``names[1]``).

    Each map is a tensor keyed by granularity: ``weights`` has ``"layer"`` ``[layer]``,
    ``"head"`` ``[layer, head]`` and ``"neuron"`` ``[layer, neuron]`` (those the models
    have); ``activation_mean``, ``activation_spread``, ``dla_a`` and ``dla_b`` have
    ``"head"`` and ``"neuron"``; ``attention`` is ``[layer, head]`` (None without heads).
    ``logit_a``/``logit_b``: each model's mean logit (difference) at ``position`` (None
    without a target). ``model_weights``: relative change of the embedding, position
    embedding and unembedding.
    """

    weights: dict[str, torch.Tensor]
    attention: Float[torch.Tensor, "layer head"] | None
    activation_mean: dict[str, torch.Tensor]
    activation_spread: dict[str, torch.Tensor]
    dla_a: dict[str, torch.Tensor]
    dla_b: dict[str, torch.Tensor]
    names: tuple[str, str]
    n_inputs: int
    n_tokens: int
    direction: str | None = None
    logit_a: float | None = None
    logit_b: float | None = None
    model_weights: dict[str, float] = field(default_factory=dict)

    @property
    def dla(self) -> dict[str, torch.Tensor]:
        """Per-unit change of the direct logit attribution, ``dla_b - dla_a``."""
        return {g: self.dla_b[g] - self.dla_a[g] for g in self.dla_a}

    def map(self, measure: str, granularity: str = "head") -> torch.Tensor:
        """One change map: ``map("attention")``, ``map("weights", "neuron")`` ...

        >>> # e.g. r.map("activation_mean", "neuron") -> [layer, neuron]
        """
        check_choice("measure", measure, MEASURES)
        if measure == "attention":
            if granularity != "head" or self.attention is None:
                raise ValueError("attention divergence is per head: granularity='head'")
            return self.attention
        maps = getattr(self, measure)
        if granularity not in maps:
            have = ", ".join(map(repr, maps)) or "none (no target= was given)"
            raise ValueError(f"no {measure} map by {granularity!r}: this comparison has {have}")
        return maps[granularity]

    def top(
        self, n: int = 5, *, measure: str = "weights", granularity: str = "head"
    ) -> list[tuple[Head | Neuron, float]]:
        """The ``n`` units that changed most on ``measure`` (by magnitude), as units."""
        values = self.map(measure, granularity)
        if values.ndim != 2:
            raise ValueError(f"top() ranks heads or neurons, not {granularity!r}")
        unit = Head if granularity == "head" else Neuron
        width = values.shape[1]
        return [
            (unit(i // width, i % width), float(values.flatten()[i])) for i in strongest(values, n)
        ]

    def _maps(self) -> Iterable[tuple[str, str, torch.Tensor]]:
        for measure in MEASURES:
            if measure == "attention":
                if self.attention is not None:
                    yield measure, "head", self.attention
                continue
            for granularity, values in getattr(self, measure).items():
                yield measure, granularity, values

    def to_dataframe(self) -> Any:
        """One row per (measure, unit): ``measure``, ``granularity``, ``layer``, ``index``
        (the head or neuron; -1 for a whole layer), ``unit`` (``L1H4``, ``L0N7``, ``L2``) and
        ``value``; cells past a layer's width are left out. ``model_weights`` come as rows of
        granularity ``"model"`` (layer -1). A map back:
        ``frame.query("measure == 'attention'").pivot(index="layer", columns="index", values="value")``."""
        rows: list[tuple[str, str, int, int, str, float]] = []
        for measure, granularity, values in self._maps():
            letter = {"head": "H", "neuron": "N"}.get(granularity)
            for flat, value in enumerate(values.detach().double().flatten().tolist()):
                if math.isnan(value):
                    continue
                if letter is None:
                    rows.append((measure, granularity, flat, -1, f"L{flat}", value))
                else:
                    layer, index = divmod(flat, values.shape[1])
                    unit = f"L{layer}{letter}{index}"
                    rows.append((measure, granularity, layer, index, unit, value))
        for name, value in self.model_weights.items():
            rows.append(("weights", "model", -1, -1, name, value))
        columns = ("measure", "granularity", "layer", "index", "unit", "value")
        return pandas().DataFrame(rows, columns=list(columns))

    def _summary(self) -> str:
        a, b = self.names
        logit = (
            ""
            if self.logit_a is None or self.logit_b is None
            else f"; {self.direction} {num(self.logit_a)} -> {num(self.logit_b)}"
        )
        return f"{a} -> {b}, {self.n_inputs} inputs ({self.n_tokens} tokens){logit}"

    def _top(self) -> list[str]:
        out = []
        for measure in ("weights", "attention"):
            if measure == "attention" and self.attention is None:
                continue
            granularity = "head" if self.attention is not None else "neuron"
            for unit, value in self.top(1, measure=measure, granularity=granularity):
                out.append(f"{measure} {unit} {value:.3g}")
        return out

    def _table(self) -> tuple:
        rows = []
        for measure, granularity, _values in self._maps():
            if granularity == "layer":
                continue
            for unit, value in self.top(2, measure=measure, granularity=granularity):
                rows.append((f"{measure} ({granularity})", str(unit), value))
        a, b = self.names
        note = f"the 2 largest changes per map of {len(rows) // 2 or 0}; to_dataframe() has all"
        return f"What changed from {a} to {b}", ("map", "unit", "change"), rows[:MAX_ROWS], note


def _batches(inputs: Any, target: Any, against: Any, batch_size: int):
    """Row batches of the inputs with the matching rows of per-example targets."""
    if not isinstance(inputs, torch.Tensor):
        for spec in (target, against):
            if isinstance(spec, torch.Tensor | Sequence) and not isinstance(spec, str):
                raise ValueError(
                    "per-example target/against need the inputs as one tensor: pass a "
                    "tensor, or one token id or string for every batch"
                )
        for batch in iter_batches(inputs, batch_size):
            yield batch, target, against
        return
    n = inputs.shape[0]

    def rows(spec: Any, start: int) -> Any:
        if isinstance(spec, torch.Tensor | Sequence) and not isinstance(spec, str):
            values = torch.as_tensor(spec)
            if values.ndim == 1 and values.numel() == n:
                return values[start : start + batch_size]
        return spec

    for start in range(0, n, batch_size):
        yield inputs[start : start + batch_size], rows(target, start), rows(against, start)


@torch.no_grad()
def compare(
    model: ModelHandle,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    other: ModelHandle,
    target: TokenSpec | None = None,
    against: TokenSpec | None = None,
    position: int = -1,
    batch_size: int | None = None,
) -> Comparison:
    """What changed from ``model`` (A) to ``other`` (B), unit by unit (module docstring).

    Args:
        model: model A (e.g. the base model or the earlier checkpoint).
        inputs: token ids ``[batch, pos]`` (images for a plain MLP/CNN), or an iterable of
            such batches (streamed; then ``target``/``against`` are one token for all).
        other: model B, of the same architecture as ``model``.
        target, against: the logit (difference) whose direct attribution is compared: a
            token id, a token string or one id per example; None leaves ``dla`` empty.
        position: the position whose logits are attributed (negative counts from the end).
        batch_size: inputs per pass (default 32): both models' activations of one batch
            are held at once, nothing more.
    """
    check_same_architecture(model, other)
    if target is None and against is not None:
        raise ValueError("against= needs a target=: the DLA direction is target - against")
    if target is not None and not model.is_transformer:
        raise ValueError(f"{model.name} takes images: DLA (target=) needs a transformer")
    rows = _ROWS if batch_size is None else check_positive("batch_size", batch_size)
    transformer = model.is_transformer
    n_layers, widths = model.n_layers, tuple(model.layer_widths)
    has_neurons = model.has_mlp or not transformer
    n_heads = (model.n_heads or 0) if transformer else 0
    hooks = {"post": [model.hook_name("post", l) for l in range(n_layers)] if has_neurons else []}
    if n_heads:
        hooks["z"] = [model.hook_name("z", l) for l in range(n_layers)]
        hooks["pattern"] = [model.hook_name("pattern", l) for l in range(n_layers)]
    if target is not None and model.final_norm()[0] is not None:
        hooks["scale"] = ["ln_final.hook_scale"]
    names = [h for v in hooks.values() for h in v]
    width = max(widths) if has_neurons else 0
    neuron_moments = Moments((n_layers, width))
    head_moments = Moments((n_layers, n_heads))
    js_total = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    js_count = 0.0
    dla_sum = {
        side: {"head": torch.zeros(n_layers, n_heads), "neuron": torch.zeros(n_layers, width)}
        for side in "ab"
    }
    logit_sum = {"a": 0.0, "b": 0.0}
    n_inputs = n_tokens = 0
    direction = None
    for batch, tgt, ag in _batches(inputs, target, against, rows):
        batch, batch_b = checked_pair(model, other, batch)
        size = batch.shape[0]
        at = (
            (torch.arange(size), resolve_positions(position, size, batch.shape[1]))
            if target is not None
            else None
        )

        def keep(
            logits: torch.Tensor, at: tuple | None = at
        ) -> torch.Tensor:  # attributed logits only
            return logits[at] if at is not None else logits[:0]

        logits_a, acts_a = model.cache_pass(batch, names=names, reduce=keep)
        logits_b, acts_b = other.cache_pass(batch_b, names=names, reduce=keep)
        mask = model.attention_mask(batch) if transformer else None
        mask = None if mask is None else mask.bool()
        n_inputs += size
        if transformer:
            n_tokens += int(mask.sum()) if mask is not None else batch.numel()
        else:
            n_tokens += size
        for l, name in enumerate(hooks["post"]):
            values, weight = samples(acts_b[name] - acts_a[name], mask)
            neuron_moments.add(values, weight, (l, slice(0, values.shape[1])))
        for l, name in enumerate(hooks.get("z", [])):
            change = (acts_b[name] - acts_a[name]).norm(dim=-1)  # [b, pos, head]
            values, weight = samples(change, mask)
            head_moments.add(values, weight, (l,))
        for l, name in enumerate(hooks.get("pattern", [])):
            js = js_divergence(acts_a[name], acts_b[name])  # [b, head, query]
            queries = torch.ones(size, js.shape[-1]) if mask is None else mask.double()
            js_total[l] += (js * queries[:, None]).sum((0, 2))
            if l == 0:
                js_count += float(queries.sum())
        if target is not None:
            target_ids = resolve_tokens(model, spec=tgt, batch=size, what="target")
            against_ids = (
                None if ag is None else resolve_tokens(model, spec=ag, batch=size, what="against")
            )
            direction = direction or describe_direction(
                model, target=target_ids, against=against_ids
            )
            assert at is not None
            for side, handle, logits, acts in (
                ("a", model, logits_a, acts_a),
                ("b", other, logits_b, acts_b),
            ):
                read, logit = read_direction(
                    handle,
                    last_logits=logits,
                    target=target_ids,
                    against=against_ids,
                    scale=acts["ln_final.hook_scale"][at] if "scale" in hooks else None,
                )
                logit_sum[side] += float(logit.sum())
                for l, name in enumerate(hooks.get("z", [])):
                    z = acts[name][at]
                    dla_sum[side]["head"][l] += head_dla(handle, layer=l, z=z, read=read).sum(0)
                for l, name in enumerate(hooks["post"]):
                    post = acts[name][at]
                    values = neuron_dla(handle, layer=l, post=post, read=read).sum(0)
                    dla_sum[side]["neuron"][l, : values.shape[0]] += values
        del acts_a, acts_b, logits_a, logits_b
    if transformer:
        weights, whole = transformer_weights(model, other)
    else:
        weights, whole = plain_weights(model, other), {}
    activation_mean, activation_spread = {}, {}
    if n_heads:
        activation_mean["head"], activation_spread["head"] = head_moments.mean(), head_moments.std()
    if has_neurons:
        activation_mean["neuron"] = neuron_moments.mean()
        activation_spread["neuron"] = neuron_moments.std()
    dla_a: dict[str, torch.Tensor] = {}
    dla_b: dict[str, torch.Tensor] = {}
    if target is not None:
        for side, out in (("a", dla_a), ("b", dla_b)):
            if n_heads:
                out["head"] = dla_sum[side]["head"] / n_inputs
            if has_neurons:
                grid = dla_sum[side]["neuron"] / n_inputs
                for l, w in enumerate(widths):
                    grid[l, w:] = float("nan")
                out["neuron"] = grid
    return Comparison(
        weights=weights,
        attention=(js_total / max(js_count, 1.0)).float() if n_heads else None,
        activation_mean=activation_mean,
        activation_spread=activation_spread,
        dla_a=dla_a,
        dla_b=dla_b,
        names=(model.name, other.name),
        n_inputs=n_inputs,
        n_tokens=n_tokens,
        direction=direction,
        logit_a=None if target is None else logit_sum["a"] / n_inputs,
        logit_b=None if target is None else logit_sum["b"] / n_inputs,
        model_weights=whole,
    )
