"""Activation patching: which activations carry the difference between two inputs.

Run the *corrupted* input and patch in one activation from the *clean* input
(denoising); the metric's recovery towards its clean value says how much that site
matters. Grids, each matching a ``transformer_lens.patching.get_act_patch_*`` function
(same axes, same order):
- ``"resid"``, ``"resid_mid"``, ``"attn_out"``, ``"mlp_out"``: ``[layer, position]``
  (``resid_pre``, ``resid_mid``, ``attn_out``, ``mlp_out``);
- ``"head"``: ``[layer, head]`` over ``hook_z`` at every position (``attn_head_out_all_pos``);
- ``"head_by_pos"``: ``[layer, position, head]`` (``attn_head_out_by_pos``);
- ``"q"``, ``"k"``, ``"v"``: ``[layer, head]``, all positions (``attn_head_q_all_pos`` ...);
  ``"q_by_pos"``, ``"k_by_pos"``, ``"v_by_pos"``: ``[layer, position, head]``. The ``k``/``v``
  head axis is the activation's: key/value heads under grouped-query attention, every
  head when the model was loaded ungrouped (transformer-lens then still patches only the
  first ``n_key_value_heads``);
- ``"pattern"``: ``[layer, head]`` (``attn_head_pattern_all_pos``);
  ``"pattern_by_pos"``: ``[layer, head, dest position]`` (``attn_head_pattern_by_pos``);
- ``"neuron"``: ``[layer, neuron]`` over ``mlp.hook_post`` (NaN past a layer's width).
Every cell is one intervention; cells run batched, fanning out after the shared prefix
(``interventions.run_sweep``).

Cross-model patching (``other=``, docs/comparing.md): the activations patched in come from a
second model of the same architecture run on ``inputs``, into ``model`` run on ``corrupted``
(default: the same ``inputs``). Same grids, same ``recovery``: 0 = ``model``'s own
behaviour, 1 = ``other``'s, so a cell's recovery is the fraction of the behaviour change
between the two models that its activation carries (B into A); swapping the two models
gives the way back (A into B: how much of B's behaviour is lost with that unit restored to
A's). A head is its ``hook_z`` and a neuron its ``hook_post``, as in one model: the readout
weights (``W_O``, ``W_out``) stay the receiving model's, so a change of those weights shows
in ``compare``'s weight map and in the ``resid`` grid of the next layer, not in the cell.
SAE features (``grid="feature", sae=``): feature ``i`` at every position is ``other``'s
activation encoded by the one SAE at its hook, decoded into ``model``'s run, whose own error
term (``x - decode(encode(x))``) stays: the cell is the share of the change carried by what
the SAE reads as feature ``i``. ``attribution_patching`` is the
gradient approximation (Nanda 2023): one forward and one backward pass for the whole grid.

Size: the grid table, its result type and the three callers of one cell runner (one model,
cross-model, SAE features) share ``_SPECS`` and the axis helpers; split apart they would
import each other's private tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from einops import reduce
from jaxtyping import Float

from explorer._checks import check_choice
from explorer._display import MAX_ROWS, Shown, long_frame, num, shape, strongest
from explorer.analysis._batch_size import accepts_max_tokens, token_budget
from explorer.analysis._model_pair import check_same_architecture, checked_pair
from explorer.analysis.feature_interventions import feature_patching
from explorer.analysis.interventions import (
    Site,
    clean_metric,
    run_sweep,
    sweep_base_hooks,
)
from explorer.analysis.metrics import Metric, evaluate, recovery
from explorer.features import SparseAutoencoder
from explorer.models.handle import ModelHandle

__all__ = [
    "PatchingResult",
    "activation_patching",
    "attribution_patching",
]

# grid -> (activation kind, einops pattern from the activation to one cell's axes)
_SPECS = {
    "resid": ("resid_pre", "b p d -> p"),
    "resid_mid": ("resid_mid", "b p d -> p"),
    "attn_out": ("attn_out", "b p d -> p"),
    "mlp_out": ("mlp_out", "b p d -> p"),
    "head": ("z", "b p h e -> h"),
    "head_by_pos": ("z", "b p h e -> p h"),
    "q": ("q", "b p h e -> h"),
    "k": ("k", "b p h e -> h"),
    "v": ("v", "b p h e -> h"),
    "q_by_pos": ("q", "b p h e -> p h"),
    "k_by_pos": ("k", "b p h e -> p h"),
    "v_by_pos": ("v", "b p h e -> p h"),
    "pattern": ("pattern", "b h q k -> h"),
    "pattern_by_pos": ("pattern", "b h q k -> h q"),
}
GRIDS = ("resid", "head", "neuron", *[g for g in _SPECS if g not in ("resid", "head")])
_AXIS_NAMES = {"p": "position", "h": "head", "q": "dest position"}


@dataclass(frozen=True, repr=False)
class PatchingResult(Shown):
    """Mean metric with each grid cell patched from clean into corrupted; for cross-model
    patching ``models`` is ``(source, receiver)``: ``clean_value`` is the source model's
    metric on the inputs, ``corrupted_value`` the receiving model's."""

    values: Float[torch.Tensor, "layer ..."]
    clean_value: float
    corrupted_value: float
    grid: str
    method: str = "activation"
    models: tuple[str, str] | None = None

    @property
    def recovery(self) -> Float[torch.Tensor, "layer ..."]:
        """``recovery(values, clean_value, corrupted_value)``: 0 = no better than
        corrupted, 1 = fully clean behaviour; NaN when the two inputs score the same."""
        return recovery(self.values, self.clean_value, self.corrupted_value)

    @property
    def axes(self) -> tuple[str, ...]:
        return grid_axes(self.grid)

    def to_dataframe(self) -> Any:
        """One row per cell: a column per axis (``layer``, ``position``, ``head``...), the
        mean metric patched (``value``) and its ``recovery``. The grid:
        ``frame.pivot(index="layer", columns="position", values="value")``."""
        frame = long_frame(self.values.double(), self.axes)
        frame["recovery"] = self.recovery.detach().double().flatten().numpy()
        return frame

    def _moved(self) -> tuple[str, torch.Tensor]:
        """What to rank cells by: recovery, or the change in the metric when it is undefined."""
        if abs(self.clean_value - self.corrupted_value) < 1e-12:
            return "change", self.values - self.corrupted_value
        return "recovery", self.recovery

    def _cell(self, flat: int) -> str:
        index = _unravel(flat, list(self.values.shape))
        return " ".join(f"{a} {i}" for a, i in zip(self.axes, index))

    def _summary(self) -> str:
        if self.models is not None:
            source, receiver = self.models
            return (
                f"cross-model patching of {self.grid}, {source} into {receiver}, "
                f"{shape(self.values, self.axes)}; metric {num(self.clean_value)} vs "
                f"{num(self.corrupted_value)}"
            )
        return (
            f"{self.method} patching of {self.grid}, {shape(self.values, self.axes)}; metric "
            f"clean {num(self.clean_value)}, corrupted {num(self.corrupted_value)}"
        )

    def _top(self) -> list[str]:
        what, moved = self._moved()
        return [f"{self._cell(i)} {what} {float(moved.flatten()[i]):.3g}" for i in strongest(moved)]

    def _table(self) -> tuple:
        what, moved = self._moved()
        rows = [
            (self._cell(i), float(moved.flatten()[i]), float(self.values.flatten()[i]))
            for i in strongest(moved, MAX_ROWS)
        ]
        note = f"{len(rows)} of {self.values.numel()} cells, largest {what} first"
        title = f"{self.method} patching ({self.grid}): clean {num(self.clean_value)}, corrupted {num(self.corrupted_value)}"
        if self.models is not None:
            title = f"cross-model patching ({self.grid}), {self.models[0]} into {self.models[1]}"
        return title, ("cell", what, "metric"), rows, note


def grid_axes(grid: str) -> tuple[str, ...]:
    """The axes of a grid's values, e.g. ``("layer", "position", "head")``."""
    if grid in ("neuron", "feature"):  # feature: an SAE's features (feature_patching)
        return ("layer", grid)
    out = _SPECS[grid][1].split("->")[1].split()
    return ("layer", *(_AXIS_NAMES[a] for a in out))


def supports(model: ModelHandle, *, grid: str) -> bool:
    """Whether ``model`` has the activations a grid patches."""
    if grid == "neuron":
        return model.has_mlp
    if not model.is_transformer:
        return False
    return model.has_mlp or _SPECS[grid][0] not in ("mlp_out", "resid_mid")


def _check_pair(
    model: ModelHandle, clean: torch.Tensor, corrupted: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    clean, corrupted = model.check_inputs(clean), model.check_inputs(corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(
            f"clean and corrupted inputs must have the same shape, got {list(clean.shape)} "
            f"and {list(corrupted.shape)}"
        )
    return clean, corrupted


def _check_grid(model: ModelHandle, grid: str) -> None:
    check_choice("patching grid", grid, GRIDS)
    if grid != "neuron" and not model.is_transformer:
        raise ValueError(f"the {grid!r} grid needs a transformer; use grid='neuron'")
    if not supports(model, grid=grid):
        raise ValueError(f"{model.name} is attention-only: no {grid} grid")


def _grid_sites(
    model: ModelHandle, grid: str, shapes: dict[str, tuple[int, ...]]
) -> tuple[list[list[Site]], list[tuple[int, ...]]]:
    """One single-site intervention per cell; ``shapes[hook]`` is each activation's shape."""
    _check_grid(model, grid)
    cells: list[tuple[int, ...]] = []
    sites: list[list[Site]] = []
    for layer in range(model.n_layers):
        hook = model.hook_name(_kind(grid), layer)
        shape = shapes[hook]
        if grid == "neuron":
            for neuron in range(model.layer_widths[layer]):
                cells.append((layer, neuron))
                index = (
                    (slice(None), slice(None), neuron) if len(shape) == 3 else (slice(None), neuron)
                )
                sites.append([(hook, index)])
            continue
        axes_in, axes_out = (part.split() for part in _SPECS[grid][1].split("->"))
        sizes = [shape[axes_in.index(a)] for a in axes_out]
        for flat in range(math.prod(sizes)):
            at = dict(zip(axes_out, _unravel(flat, sizes)))
            index = tuple(at.get(a, slice(None)) for a in axes_in)
            cells.append((layer, *(at[a] for a in axes_out)))
            sites.append([(hook, index)])
    return sites, cells


def _kind(grid: str) -> str:
    return "post" if grid == "neuron" else _SPECS[grid][0]


def _unravel(flat: int, sizes: list[int]) -> list[int]:
    out = []
    for size in reversed(sizes):
        out.append(flat % size)
        flat //= size
    return out[::-1]


def _to_grid(
    model: ModelHandle, cells: list[tuple[int, ...]], values: torch.Tensor
) -> torch.Tensor:
    shape = [model.n_layers, *(max(c[i] for c in cells) + 1 for i in range(1, len(cells[0])))]
    out = torch.full(shape, float("nan"))
    for cell, v in zip(cells, values):
        out[cell] = v
    return out


@accepts_max_tokens
@torch.no_grad()
def activation_patching(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    corrupted: torch.Tensor | None = None,
    metric: Metric,
    grid: str = "resid",
    other: ModelHandle | None = None,
    batch_size: int | None = None,
    sae: SparseAutoencoder | None = None,
) -> PatchingResult:
    """Patch each grid cell from the clean ``inputs`` into ``corrupted`` (same shape);
    ``values[layer, ...]`` is the
    mean metric (axes: ``grid_axes(grid)``). ``metric`` must score the corrupted batch
    (e.g. logit difference of the clean answer vs the corrupted answer). Equals
    transformer-lens's ``get_act_patch_*`` with ``metric(logits).mean()`` as its metric.
    ``batch_size`` bounds the inputs (rows) of one forward pass (None: the library chooses).
    ``other``: cross-model patching, ``other``'s activations on ``inputs`` patched into
    ``model`` run on ``corrupted`` (default ``inputs``); see the module docstring.
    ``grid="feature"`` with ``sae=``: each feature of the SAE (spliced in, error term kept)
    at every position; ``values[0, i]``. With ``other=`` too, feature ``i``'s activations
    are ``other``'s on ``inputs`` (encoded by the same SAE at its hook), written into
    ``model``'s spliced run on ``corrupted`` with ``model``'s own error term kept.

    >>> from explorer.analysis import metrics
    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> clean, corrupted = torch.tensor([[0, 3, 5, 3]]), torch.tensor([[0, 7, 5, 3]])
    >>> r = activation_patching(m, clean, corrupted=corrupted, metric=metrics.logit_diff(3, 7))
    >>> r.axes, tuple(r.values.shape)
    (('layer', 'position'), (2, 4))
    >>> round(float(r.recovery[0, 1]), 4)  # the whole clean stream where the inputs differ
    1.0
    """
    if grid == "feature" or sae is not None:
        return _features(
            model, inputs, corrupted, metric, grid, sae, "activation", batch_size, other
        )
    _check_grid(model, grid)
    source = model if other is None else other
    clean, corrupted = _check_sources(model, inputs, corrupted=corrupted, other=other)
    hooks = [model.hook_name(_kind(grid), layer) for layer in range(model.n_layers)]
    batch = clean.shape[0]

    def value(logits: torch.Tensor) -> torch.Tensor:  # in the pass: no logits come back
        return evaluate(metric, logits, batch)

    clean_values, clean_cache = source.cache_pass(clean, names=hooks, reduce=value)
    sites, cells = _grid_sites(model, grid, {h: tuple(clean_cache[h].shape) for h in hooks})
    bases = sorted(set(hooks) | set(sweep_base_hooks(model, hooks=hooks)))  # where passes start
    corrupted_values, corrupted_cache = model.cache_pass(corrupted, names=bases, reduce=value)
    clean_value = float(clean_values.mean())
    corrupted_value = float(corrupted_values.mean())
    flat = [cell[0] for cell in sites]
    after = run_sweep(
        model,
        corrupted,
        sites=flat,
        sources=clean_cache,
        clean_activations=corrupted_cache,
        metric=metric,
        max_tokens=token_budget(corrupted, batch_size),
    )
    models = None if other is None else (other.name, model.name)
    values = _to_grid(model, cells, after.mean(1))
    return PatchingResult(values, clean_value, corrupted_value, grid, models=models)


def _check_sources(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    corrupted: torch.Tensor | None,
    other: ModelHandle | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clean, corrupted)`` checked: clean by the model the sources come from."""
    if other is None:
        if corrupted is None:
            raise ValueError(
                "activation patching needs corrupted= (the inputs patched into), or other= "
                "(a second model whose activations on inputs are patched into model's)"
            )
        return _check_pair(model, inputs, corrupted)
    check_same_architecture(model, other)
    base, clean = checked_pair(model, other, inputs)
    if corrupted is None:
        return clean, base
    _, checked = _check_pair(model, base, corrupted)
    return clean, checked


def _features(
    model: ModelHandle,
    inputs: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    grid: str,
    sae: SparseAutoencoder | None,
    method: str,
    batch_size: int | None,
    other: ModelHandle | None = None,
) -> PatchingResult:
    if grid != "feature" or sae is None:
        raise ValueError("patching SAE features takes grid='feature' and sae= together")
    if other is None and corrupted is None:
        raise ValueError(
            "patching SAE features needs corrupted= (the inputs patched into), or other= "
            "(a second model whose features on inputs are patched into model's)"
        )
    values, clean_value, corrupted_value = feature_patching(
        model, inputs, corrupted=inputs if corrupted is None else corrupted, metric=metric,
        sae=sae, method=method, batch_size=batch_size, other=other,
    )  # fmt: skip
    models = None if other is None else (other.name, model.name)
    return PatchingResult(
        values[None], clean_value, corrupted_value, "feature", method, models=models
    )


def _per_unit(contrib: torch.Tensor) -> torch.Tensor:
    """``[batch, unit]`` from an MLP ``[b, d]``, transformer ``[b, pos, d]`` or conv ``[b, c, h, w]``."""
    if contrib.ndim == 2:
        return contrib
    if contrib.ndim == 3:
        return contrib.sum(1)
    return contrib.flatten(2).sum(-1)


def attribution_patching(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    corrupted: torch.Tensor,
    metric: Metric,
    grid: str = "resid",
    sae: SparseAutoencoder | None = None,
) -> PatchingResult:
    """First-order estimate of ``activation_patching`` (Nanda 2023).

    For a cell ``c`` covering activation entries ``a_c`` (a position's residual stream, a
    head's ``z`` at every position, one neuron) and prompts ``b = 1..B``::

        values[c] = m_corr + (1/B) sum_b  sum_{a in c} (a_clean[b] - a_corr[b]) * d m_b / d a[b]

    with ``m_b`` the metric of prompt ``b`` and the gradient taken on the corrupted run.
    ``m_corr`` is the batch-mean corrupted metric, so ``values`` estimates the batch-mean
    metric after patching, on the scale of ``activation_patching``. Each prompt's gradient
    is its own metric's (the backward pass runs on the *sum* of per-prompt metrics), so
    duplicating the batch leaves the estimate unchanged. ``grid="feature"`` with ``sae=``:
    each feature of the SAE, the gradient taken at its activations in the spliced run.
    """
    if not model.returns_gradients:
        raise ValueError(
            f"attribution patching takes gradients, and {model.name} runs its passes on a "
            "server, which sends back values without them: use activation_patching (exact, "
            "one pass per cell) or open the model without remote="
        )
    if grid == "feature" or sae is not None:
        return _features(model, inputs, corrupted, metric, grid, sae, "attribution", None)
    _check_grid(model, grid)
    clean, corrupted = _check_pair(model, inputs, corrupted)
    hooks = [model.hook_name(_kind(grid), layer) for layer in range(model.n_layers)]
    _, clean_cache = model.cache_pass(clean, names=hooks)
    saved: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook) -> None:
        act.retain_grad()
        saved[hook.name] = act

    clean_value = float(clean_metric(model, clean, metric=metric).mean())
    with torch.enable_grad():
        logits = model.run_with_hooks(corrupted, [(h, keep) for h in hooks])
        value = metric(logits)
        if value.shape != (corrupted.shape[0],):
            raise ValueError(f"a metric must return one value per example, got {list(value.shape)}")
        value.sum().backward()  # d m_b / d a[b] for every prompt b
    corrupted_value = float(value.detach().mean())
    model.zero_grad()
    rows = []
    for hook in hooks:
        act = saved[hook]
        contrib = (clean_cache[hook] - act.detach()) * act.grad
        if grid == "neuron":
            rows.append(_per_unit(contrib).sum(0) / corrupted.shape[0])
        else:
            rows.append(reduce(contrib, _SPECS[grid][1], "sum") / corrupted.shape[0])
    shape = [max(r.shape[i] for r in rows) for i in range(rows[0].ndim)]
    out = torch.full((len(rows), *shape), float("nan"))
    for i, r in enumerate(rows):
        out[(i, *(slice(0, n) for n in r.shape))] = r
    return PatchingResult(
        out + corrupted_value, clean_value, corrupted_value, grid, method="attribution"
    )
