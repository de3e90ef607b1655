"""Neurons across a dataset: top-k activating examples (streamed) and activation histograms.

Activations are read from ``blocks.{layer}.mlp.hook_post`` (or ``hook_pre``). A unit's value
for one example is its activation at each token position (text), the neuron itself (MLP),
or the channel's maximum over space (conv). Only the running top-k per unit is kept, so
memory is O(k x units) however large the dataset is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from einops import rearrange, reduce
from jaxtyping import Float, Int

from explorer._checks import check_choice, check_finite, check_positive
from explorer.analysis.cache import iter_batches
from explorer.models.handle import ModelHandle

HOOKS = ("post", "pre")


@dataclass(frozen=True)
class TopKExamples:
    """For each unit, its ``k`` highest activations over a dataset, best first.

    ``example[u, i]`` indexes the dataset (in iteration order) and ``position[u, i]`` the
    token position (0 for images).
    """

    values: Float[torch.Tensor, "unit k"]
    example: Int[torch.Tensor, "unit k"]
    position: Int[torch.Tensor, "unit k"]
    hook: str
    n_examples: int

    def of(self, unit: int) -> list[tuple[int, int, float]]:
        """``(example, position, value)`` for one unit, best first."""
        return [
            (int(e), int(p), float(v))
            for e, p, v in zip(self.example[unit], self.position[unit], self.values[unit])
        ]


@dataclass(frozen=True)
class Histogram:
    """Counts of one unit's activations in ``bins`` equal-width bins between ``edges``."""

    counts: Int[torch.Tensor, " bins"]
    edges: Float[torch.Tensor, " bins_plus_1"]
    hook: str
    unit: int
    by_class: Int[torch.Tensor, "classes bins"] | None = None


def unit_values(act: torch.Tensor) -> Float[torch.Tensor, "batch pos unit"]:
    """Rearrange a hook's activation to ``[batch, pos, unit]`` (pos = 1 for MLPs and convs)."""
    if act.ndim == 2:
        return act[:, None, :]
    if act.ndim == 3:
        return act
    if act.ndim == 4:  # conv: a channel's value for an image is its maximum over space
        return reduce(act, "b c h w -> b 1 c", "max")
    raise ValueError(f"cannot read units from an activation of shape {list(act.shape)}")


def _hook(model: ModelHandle, layer: int, hook: str) -> str:
    check_choice("hook", hook, HOOKS)
    if not model.has_mlp:
        raise ValueError(f"{model.name} is attention-only: it has no MLP neurons")
    return model.hook_name(hook, layer)


def _activations(model: ModelHandle, batch: torch.Tensor, name: str) -> torch.Tensor:
    _, cache = model.run_with_cache(batch, names=[name])
    return check_finite(f"activations at {name}", unit_values(cache[name]))


@torch.no_grad()
def top_k_examples(
    model: ModelHandle,
    data: torch.Tensor | Iterable[torch.Tensor],
    layer: int,
    k: int = 10,
    *,
    batch_size: int = 256,
    hook: str = "post",
    largest: bool = True,
) -> TopKExamples:
    """The ``k`` strongest activations of every unit of ``layer``, streamed over ``data``.

    >>> import torch
    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(8,))
    >>> top = top_k_examples(m, torch.rand(50, 1, 28, 28), layer=0, k=3)
    >>> tuple(top.values.shape), bool((top.values[:, 0] >= top.values[:, 1]).all())
    ((8, 3), True)
    """
    check_positive("k", k)
    name = _hook(model, layer, hook)
    best_v: torch.Tensor | None = None
    best_e = best_p = None
    seen = 0
    for batch in iter_batches(data, batch_size):
        acts = _activations(model, batch, name)  # [b, pos, u]
        b, n_pos, _ = acts.shape
        flat = rearrange(acts, "b p u -> u (b p)")
        if not largest:
            flat = -flat
        idx = torch.arange(b * n_pos)
        ex, pos = seen + idx // n_pos, idx % n_pos
        cand_v = flat if best_v is None else torch.cat([best_v, flat], dim=1)
        cand_e = (
            ex.expand(flat.shape[0], -1)
            if best_e is None
            else torch.cat([best_e, ex.expand(flat.shape[0], -1)], 1)
        )
        cand_p = (
            pos.expand(flat.shape[0], -1)
            if best_p is None
            else torch.cat([best_p, pos.expand(flat.shape[0], -1)], 1)
        )
        keep = min(k, cand_v.shape[1])
        best_v, order = cand_v.topk(keep, dim=1)
        best_e, best_p = cand_e.gather(1, order), cand_p.gather(1, order)
        seen += b
    assert best_v is not None and best_e is not None and best_p is not None
    values = best_v if largest else -best_v
    return TopKExamples(values, best_e, best_p, name, seen)


@torch.no_grad()
def activation_histogram(
    model: ModelHandle,
    data: torch.Tensor | Iterable[torch.Tensor],
    layer: int,
    neuron: int,
    *,
    bins: int = 40,
    labels: torch.Tensor | None = None,
    batch_size: int = 256,
    hook: str = "post",
) -> Histogram:
    """Histogram of one unit's activations over ``data`` (every position for text).

    With ``labels`` (one class per example, images) also counts per class.
    """
    check_positive("bins", bins)
    name = _hook(model, layer, hook)
    model.check_neuron(layer, neuron)
    chunks, label_chunks, seen = [], [], 0
    for batch in iter_batches(data, batch_size):
        acts = _activations(model, batch, name)[:, :, neuron]  # [b, pos]
        chunks.append(acts.flatten())
        if labels is not None:
            label_chunks.append(labels[seen : seen + len(batch)].repeat_interleave(acts.shape[1]))
        seen += len(batch)
    values = torch.cat(chunks)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts = torch.histc(values, bins=bins, min=lo, max=hi).long()
    edges = torch.linspace(lo, hi, bins + 1)
    by_class = None
    if labels is not None:
        if len(labels) != seen:
            raise ValueError(f"labels has {len(labels)} entries but the data has {seen} examples")
        lab = torch.cat(label_chunks)
        n_classes = int(lab.max()) + 1
        by_class = torch.stack(
            [
                torch.histc(values[lab == c], bins=bins, min=lo, max=hi).long()
                for c in range(n_classes)
            ]
        )
    return Histogram(counts, edges, name, neuron, by_class)
