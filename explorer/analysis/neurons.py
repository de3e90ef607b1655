"""Neurons across a dataset: top-k activating examples (streamed) and activation histograms.

Activations are read from ``blocks.{layer}.mlp.hook_post`` (or ``hook_pre``). A unit's value
for one example is its activation at each token position (text), the neuron itself (MLP),
or the channel's maximum over space (conv). Only the running top-k per unit is kept, so
memory is O(k x units) however large the dataset is. The same verbs read SAE features
(``top_k_examples(sae=...)``, ``unit=Feature(sae, i)``): the SAE encodes the activation at
its hook, batch by batch.

Size: about 440 lines, over the usual 400: neurons and SAE features share the streamed
top-k and its result; split apart they would import each other's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from einops import reduce
from jaxtyping import Float, Int

from explorer._checks import check_choice, check_finite, check_positive, check_tensor
from explorer._deprecate import renamed_arguments
from explorer.analysis._shown import HistogramShown, TopKShown, WindowsShown
from explorer.analysis.cache import iter_batches
from explorer.analysis.feature_units import Feature, encode_batch
from explorer.analysis.units import Neuron, neuron_index
from explorer.features import SparseAutoencoder, check_hooks_fit
from explorer.models.handle import ModelHandle

__all__ = [
    "ExampleWindows",
    "Histogram",
    "TopKExamples",
    "activation_histogram",
    "example_windows",
    "layer_activations",
    "top_k_examples",
]

HOOKS = ("post", "pre")
DENSE = 0.1  # a unit active (> 0) at more than this share of tokens is *dense*


@dataclass(frozen=True, repr=False)
class TopKExamples(TopKShown):
    """For each unit, its ``k`` highest activations over a dataset, best first.

    ``example[u, i]`` indexes the dataset (in iteration order) and ``position[u, i]`` the
    token position (0 for images). A unit whose best activation is not above 0 never fired
    on the data (a *dead* unit): its "top" examples are arbitrary ties, so ``dead_units``
    names them, the repr counts them, and ``ranked`` leaves them out. ``density[u]`` is the
    share of tokens (examples for images) where unit ``u`` is above 0; ``dense_units``
    names those above ``DENSE`` (an SAE feature that fires everywhere explains little).
    """

    values: Float[torch.Tensor, "unit k"]
    example: Int[torch.Tensor, "unit k"]
    position: Int[torch.Tensor, "unit k"]
    hook: str
    n_examples: int
    largest: bool = True
    density: Float[torch.Tensor, " unit"] | None = None

    def fires(self, threshold: float = 0.0) -> torch.Tensor:
        """``[unit]`` bool: whether the unit's best activation exceeds ``threshold``.

        A ReLU unit that never fires on the dataset (a *dead* unit) has top values of 0 and
        arbitrary top examples (ties): leave it out of any ranking of units.

        >>> t = TopKExamples(torch.tensor([[2.0, 1.0], [0.0, 0.0]]), torch.zeros(2, 2, dtype=torch.long),
        ...                  torch.zeros(2, 2, dtype=torch.long), "blocks.0.mlp.hook_post", 5)
        >>> t.fires().tolist(), t.dead_units
        ([True, False], (1,))
        """
        if not self.largest:
            raise ValueError(
                "this table holds each unit's lowest activations (largest=False): it cannot "
                "say which units fire; run top_k_examples with largest=True"
            )
        return self.values[:, 0] > threshold

    @property
    def dead_units(self) -> tuple[int, ...]:
        """Units that never fire (best activation <= 0) on the data; empty for a bottom-k table."""
        if not self.largest:
            return ()
        return tuple(int(u) for u in (~self.fires()).nonzero().flatten())

    @property
    def dense_units(self) -> tuple[int, ...]:
        """Units active (> 0) at more than ``DENSE`` of the tokens read."""
        if self.density is None:
            return ()
        return tuple(int(u) for u in (self.density > DENSE).nonzero().flatten())

    def ranked(self) -> list[int]:
        """Units by their best activation, strongest first, dead units left out."""
        dead = set(self.dead_units)
        order = self.values[:, 0].argsort(descending=self.largest, stable=True)
        return [int(u) for u in order if int(u) not in dead]

    def of(self, unit: int) -> list[tuple[int, int, float]]:
        """``(example, position, value)`` for one unit, best first."""
        return [
            (int(e), int(p), float(v))
            for e, p, v in zip(self.example[unit], self.position[unit], self.values[unit])
        ]


@dataclass(frozen=True, repr=False)
class Histogram(HistogramShown):
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


def _stop(model: ModelHandle, name: str) -> int | None:
    """For a transformer, the ``stop_at_layer`` that still runs hook ``blocks.{L}...``:
    reading layer 0 of 12 costs a twelfth of a forward pass."""
    parts = name.split(".")
    if model.stops_early and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1]) + 1
    return None


def _unit_reader(
    model: ModelHandle, unit: Neuron | Feature | str, hooks: str
) -> tuple[str, int, Callable[[torch.Tensor], torch.Tensor]]:
    """``(hook, index, read)`` of a neuron or an SAE feature: ``read(batch)`` gives the
    ``[b, pos, unit]`` values the unit's ``index`` selects from."""
    if isinstance(unit, Feature):
        check_hooks_fit(model, unit.sae)
        return unit.sae.hook, unit.feature, lambda batch: encode_batch(model, batch, unit.sae)
    layer, neuron = neuron_index(model, unit=unit)
    name = _hook(model, layer, hooks)
    return name, neuron, lambda batch: _activations(model, batch, name)


def _activations(model: ModelHandle, batch: torch.Tensor, name: str) -> torch.Tensor:
    _, cache = model.cache_pass(batch, names=[name], stop_at_layer=_stop(model, name))
    return check_finite(f"activations at {name}", unit_values(cache[name]))


@renamed_arguments(k="n", hook="hooks")
@torch.no_grad()
def top_k_examples(
    model: ModelHandle,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    layer: int | None = None,
    n: int = 10,
    batch_size: int = 256,
    hooks: str = "post",
    largest: bool = True,
    sae: SparseAutoencoder | None = None,
) -> TopKExamples:
    """The ``n`` strongest activations of every unit of ``layer``, streamed over ``inputs``;
    ``hooks`` is the layer's hook read (``"post"`` or ``"pre"``). With ``sae`` instead of
    ``layer``: of every feature of the SAE (unit ``i`` is ``Feature(sae, i)``).

    >>> import torch
    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(8,))
    >>> top = top_k_examples(m, torch.rand(50, 1, 28, 28), layer=0, n=3)
    >>> tuple(top.values.shape), bool((top.values[:, 0] >= top.values[:, 1]).all())
    ((8, 3), True)
    """
    check_positive("n", n)
    if (layer is None) == (sae is None):
        raise ValueError("give layer= (its neurons) or sae= (its features), one of the two")
    if sae is None:
        name = _hook(model, layer, hooks)  # type: ignore[arg-type]
    else:
        check_hooks_fit(model, sae)
        name = sae.hook
    best: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    seen, tokens, active = 0, 0, None
    stop = _stop(model, name)
    for batch in iter_batches(inputs, batch_size):
        if sae is None:
            _, cache = model.cache_pass(batch, names=[name], stop_at_layer=stop)
            acts = unit_values(cache.pop(name))  # [b, pos, u]
        else:
            acts = encode_batch(model, batch, sae)
        lo, hi = torch.aminmax(acts)  # one pass; NaN and inf survive min/max
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError(f"activations at {name} contain NaN or infinite values")
        best = _merge_batch(best, acts, seen, n, largest)
        fired = (acts > 0).sum((0, 1))
        active = fired if active is None else active + fired
        seen += acts.shape[0]
        tokens += acts.shape[0] * acts.shape[1]
    if best is None or active is None:
        raise ValueError("no data: top_k_examples needs at least one example")
    return TopKExamples(*best, name, seen, largest, active.float() / tokens)


_SPARSE_SHARE = 16  # the threshold path while at most 1/16 of a batch's values beat it
_SPARSE_WIDTH = 8  # ... and no unit has more than 8k candidates in the batch


def _merge_batch(
    best: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    acts: torch.Tensor,
    seen: int,
    k: int,
    largest: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The running ``(values, example, position)`` ``[units, k]`` merged with one batch.

    Once every unit has ``k`` values, only entries beating a unit's current k-th best can
    enter, and after a few batches those are rare: they are found with one comparison
    against the thresholds and merged (no top-k over the whole batch). Early batches, or
    a batch where many values qualify, take a per-batch top-k: ``[units, 2k]`` candidates.
    """
    b, n_pos, n_units = acts.shape
    flat = acts.reshape(b * n_pos, n_units)
    if best is not None and best[0].shape[1] == k:
        thresholds = best[0][:, -1]
        beats = flat > thresholds if largest else flat < thresholds
        rows, units = beats.nonzero(as_tuple=True)
        if rows.numel() == 0:
            return best
        candidates = _candidates(flat, rows, units, k, largest)
        if candidates is not None:
            return _keep_best(best, *candidates, seen, n_pos, k, largest)
    values, index = flat.T.contiguous().topk(min(k, b * n_pos), dim=1, largest=largest)
    return _keep_best(best, values, index, seen, n_pos, k, largest)


def _candidates(
    flat: torch.Tensor, rows: torch.Tensor, units: torch.Tensor, k: int, largest: bool
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(values, row index)`` ``[units, width]`` of the entries ``flat[rows, units]``,
    padded with -inf (+inf for ``largest=False``); None when they are too many to be
    worth it (a per-batch top-k is cheaper then)."""
    n_units = flat.shape[1]
    counts = torch.bincount(units, minlength=n_units)
    width = int(counts.max())
    if rows.numel() * _SPARSE_SHARE > flat.numel() or width > _SPARSE_WIDTH * k:
        return None
    order = units.argsort(stable=True)
    rows, units = rows[order], units[order]
    slot = torch.arange(rows.numel()) - (counts.cumsum(0) - counts)[units]
    fill = float("-inf") if largest else float("inf")
    values = torch.full((n_units, width), fill, dtype=flat.dtype)
    values[units, slot] = flat[rows, units]
    index = torch.zeros(n_units, width, dtype=torch.long)
    index[units, slot] = rows
    return values, index


def _keep_best(
    best: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    values: torch.Tensor,
    index: torch.Tensor,
    seen: int,
    n_pos: int,
    k: int,
    largest: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge ``[units, c]`` candidates (``index`` into the batch's ``b * pos`` rows) into
    ``best``; padding (+-inf) never wins because ``best`` already holds ``k`` values."""
    example, position = seen + index // n_pos, index % n_pos
    if best is not None:
        values = torch.cat([best[0], values], dim=1)
        example = torch.cat([best[1], example], dim=1)
        position = torch.cat([best[2], position], dim=1)
    values, order = values.topk(min(k, values.shape[1]), dim=1, largest=largest)
    return values, example.gather(1, order), position.gather(1, order)


@renamed_arguments(hook="hooks")
@torch.no_grad()
def activation_histogram(
    model: ModelHandle,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    unit: Neuron | Feature | str,
    bins: int = 40,
    labels: torch.Tensor | None = None,
    batch_size: int = 256,
    hooks: str = "post",
) -> Histogram:
    """Histogram of one unit's activations over ``data`` (every position for text).

    With ``labels`` (one class per example, images) also counts per class.
    """
    check_positive("bins", bins)
    name, neuron, read = _unit_reader(model, unit, hooks)
    if labels is not None:
        labels = check_tensor("labels", torch.as_tensor(labels), ndim=1)
        if labels.dtype.is_floating_point:
            raise TypeError(
                f"labels must be integer class ids (one per example), got dtype {labels.dtype}: "
                "convert whole-number labels with labels.long()"
            )
        if labels.dtype == torch.bool or int(labels.min()) < 0:
            raise ValueError(
                "labels must be class ids 0, 1, 2, ... (one per example); got "
                + ("bools" if labels.dtype == torch.bool else f"a negative id {int(labels.min())}")
            )
    chunks, label_chunks, seen = [], [], 0
    for batch in iter_batches(inputs, batch_size):
        acts = read(batch)[:, :, neuron]  # [b, pos]
        chunks.append(acts.flatten())
        if labels is not None:
            label_chunks.append(labels[seen : seen + len(batch)].repeat_interleave(acts.shape[1]))
        seen += len(batch)
    values = torch.cat(chunks)
    if labels is not None and len(labels) != seen:
        raise ValueError(f"labels has {len(labels)} entries but the data has {seen} examples")
    lab = torch.cat(label_chunks) if labels is not None else None
    return histogram(values, bins=bins, hook=name, unit=neuron, labels=lab)


def histogram(
    values: Float[torch.Tensor, " n"],
    *,
    bins: int = 40,
    hook: str = "",
    unit: int = 0,
    labels: Int[torch.Tensor, " n"] | None = None,
) -> Histogram:
    """Bin one unit's activations (already read) the way ``activation_histogram`` does:
    ``bins`` equal bins from the smallest to the largest value (a constant unit gets one
    bin of width 1e-6); with ``labels`` (one per value) also per class.

    >>> h = histogram(torch.tensor([0.0, 0.0, 1.0, 2.0]), bins=2)
    >>> h.counts.tolist(), h.edges.tolist()
    ([2, 2], [0.0, 1.0, 2.0])
    """
    check_positive("bins", bins)
    values = check_finite("activations", values.flatten().float())
    if values.numel() == 0:
        raise ValueError("a histogram needs at least one value")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts = torch.histc(values, bins=bins, min=lo, max=hi).long()
    edges = torch.linspace(lo, hi, bins + 1)
    by_class = None
    if labels is not None:
        n_classes = int(labels.max()) + 1
        by_class = torch.stack(
            [
                torch.histc(values[labels == c], bins=bins, min=lo, max=hi).long()
                for c in range(n_classes)
            ]
        )
    return Histogram(counts, edges, hook, unit, by_class)


@renamed_arguments(hook="hooks")
@torch.no_grad()
def layer_activations(
    model: ModelHandle,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    layer: int,
    batch_size: int = 256,
    hooks: str = "post",
) -> Float[torch.Tensor, "value unit"]:
    """Every unit's value on every example (and position) of ``data``: ``[values, unit]``,
    rows in iteration order (example-major for text). Holds the whole table: a view keeps
    it to histogram any neuron of the layer without another pass.

    >>> from explorer.models import zoo
    >>> tuple(layer_activations(zoo.mnist_mlp(hidden=(8,)), torch.rand(5, 1, 28, 28), layer=0).shape)
    (5, 8)
    """
    name = _hook(model, layer, hooks)
    chunks = [_activations(model, b, name).flatten(0, 1) for b in iter_batches(inputs, batch_size)]
    if not chunks:
        raise ValueError("no data: layer_activations needs at least one example")
    return torch.cat(chunks)


@dataclass(frozen=True, repr=False)
class ExampleWindows(WindowsShown):
    """A window of tokens around each top example's top position, with one unit's activation
    at each token: ``acts[i]`` covers positions ``starts[i] .. starts[i] + width - 1`` of
    example ``examples[i]``."""

    examples: Int[torch.Tensor, " k"]
    starts: tuple[int, ...]
    acts: Float[torch.Tensor, "k width"]


@renamed_arguments(hook="hooks")
@torch.no_grad()
def example_windows(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    unit: Neuron | Feature | str,
    examples: Int[torch.Tensor, " k"],
    positions: Int[torch.Tensor, " k"],
    context: int = 12,
    after: int = 3,
    hooks: str = "post",
) -> ExampleWindows:
    """Neuron ``layer.neuron`` on windows of ``tokens[examples]``: ``context`` tokens before
    each position and ``after`` after it (shifted to stay inside the sequence); one forward
    pass over the k examples.

    >>> from explorer.models import zoo
    >>> m = zoo.modular_addition_transformer(p=7, d_model=8)
    >>> w = example_windows(m, torch.tensor([[0, 1, 7], [2, 3, 7]]), unit="neuron 0.5",
    ...                     examples=torch.tensor([1]), positions=torch.tensor([2]), context=1, after=0)
    >>> w.starts, tuple(w.acts.shape)
    ((1,), (1, 2))
    """
    _, neuron, read = _unit_reader(model, unit, hooks)
    n_pos = inputs.shape[1]
    width = min(n_pos, context + 1 + after)
    starts = tuple(min(max(0, int(p) - context), n_pos - width) for p in positions)
    acts = read(inputs[examples])[..., neuron]  # [k, pos]
    windows = torch.stack([acts[i, s : s + width] for i, s in enumerate(starts)])
    return ExampleWindows(examples, starts, windows)
