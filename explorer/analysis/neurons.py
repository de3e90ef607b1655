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
from einops import reduce
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
    best_v = best_e = best_p = None
    seen = 0
    for batch in iter_batches(data, batch_size):
        _, cache = model.run_with_cache(batch, names=[name])
        acts = unit_values(cache.pop(name))  # [b, pos, u]
        lo, hi = torch.aminmax(acts)  # one pass; NaN and inf survive min/max
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError(f"activations at {name} contain NaN or infinite values")
        b, n_pos, _ = acts.shape
        # this batch's own top-k first: the candidates stay [units, 2k], never [units, b*pos]
        values, flat = acts.reshape(b * n_pos, -1).topk(min(k, b * n_pos), dim=0, largest=largest)
        values, flat = values.T, flat.T
        example, position = seen + flat // n_pos, flat % n_pos
        if best_v is not None:
            values = torch.cat([best_v, values], dim=1)
            example = torch.cat([best_e, example], dim=1)
            position = torch.cat([best_p, position], dim=1)
        best_v, order = values.topk(min(k, values.shape[1]), dim=1, largest=largest)
        best_e, best_p = example.gather(1, order), position.gather(1, order)
        seen += b
    assert best_v is not None and best_e is not None and best_p is not None
    return TopKExamples(best_v, best_e, best_p, name, seen)


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
