"""Activation patching: which activations carry the difference between two inputs.

Run the *corrupted* input and patch in one activation from the *clean* input
(denoising); the metric's recovery towards its clean value says how much that site
matters. Grids:
- ``"resid"``: ``[layer, position]`` over ``hook_resid_pre`` (transformers);
- ``"head"``: ``[layer, head]`` over ``hook_z`` at every position;
- ``"neuron"``: ``[layer, neuron]`` over ``mlp.hook_post`` (NaN past a layer's width).
Every cell is one intervention; cells run batched, fanning out after the shared prefix
(``interventions.run_sweep``). ``attribution_patching`` is the
gradient approximation (Nanda 2023): one forward and one backward pass for the whole grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import reduce
from jaxtyping import Float

from explorer._checks import check_choice
from explorer.analysis.interventions import (
    MAX_TOKENS,
    Site,
    clean_metric,
    run_sweep,
    sweep_base_hooks,
)
from explorer.analysis.metrics import Metric, evaluate
from explorer.models.handle import ModelHandle

GRIDS = ("resid", "head", "neuron")


@dataclass(frozen=True)
class PatchingResult:
    """Mean metric with each grid cell patched from clean into corrupted."""

    values: Float[torch.Tensor, "layer x"]
    clean_value: float
    corrupted_value: float
    grid: str
    method: str = "activation"

    @property
    def recovery(self) -> Float[torch.Tensor, "layer x"]:
        """0 = no better than corrupted, 1 = fully clean behaviour."""
        span = self.clean_value - self.corrupted_value
        if abs(span) < 1e-12:
            raise ValueError("clean and corrupted inputs give the same metric: nothing to recover")
        return (self.values - self.corrupted_value) / span

    @property
    def axes(self) -> tuple[str, str]:
        return ("layer", {"resid": "position", "head": "head", "neuron": "neuron"}[self.grid])


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
    if grid == "neuron" and not model.has_mlp:
        raise ValueError(f"{model.name} is attention-only: no neuron grid")
    if grid != "neuron" and not model.is_transformer:
        raise ValueError(f"the {grid!r} grid needs a transformer; use grid='neuron'")


def _grid_sites(
    model: ModelHandle, grid: str, n_pos: int, act_ndim: int
) -> tuple[list[list[Site]], list[tuple[int, int]]]:
    _check_grid(model, grid)
    cells: list[tuple[int, int]] = []
    sites: list[list[Site]] = []
    for layer in range(model.n_layers):
        if grid == "resid":
            hook = model.hook_name("resid_pre", layer)
            for pos in range(n_pos):
                cells.append((layer, pos))
                sites.append([(hook, (slice(None), pos))])
        elif grid == "head":
            hook = model.hook_name("z", layer)
            for head in range(model.n_heads or 0):
                cells.append((layer, head))
                sites.append([(hook, (slice(None), slice(None), head))])
        else:
            hook = model.hook_name("post", layer)
            for neuron in range(model.layer_widths[layer]):
                cells.append((layer, neuron))
                index = (
                    (slice(None), slice(None), neuron) if act_ndim == 3 else (slice(None), neuron)
                )
                sites.append([(hook, index)])
    return sites, cells


def _to_grid(
    model: ModelHandle, cells: list[tuple[int, int]], values: torch.Tensor
) -> torch.Tensor:
    width = max(c[1] for c in cells) + 1
    out = torch.full((model.n_layers, width), float("nan"))
    for (layer, x), v in zip(cells, values):
        out[layer, x] = v
    return out


@torch.no_grad()
def activation_patching(
    model: ModelHandle,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    grid: str = "resid",
    *,
    max_tokens: int = MAX_TOKENS,
) -> PatchingResult:
    """Patch each grid cell from ``clean`` into ``corrupted``; ``values[layer, x]`` is the
    mean metric. ``metric`` must score the corrupted batch (e.g. logit difference of the
    clean answer vs the corrupted answer).
    """
    _check_grid(model, grid)
    clean, corrupted = _check_pair(model, clean, corrupted)
    n_pos = clean.shape[1] if model.is_transformer else 1
    probe_hook = model.hook_name("post", 0) if grid == "neuron" else None
    ndim = 3
    if probe_hook is not None:
        _, probe = model.run_with_cache(clean[:1], names=[probe_hook])
        ndim = probe[probe_hook].ndim
    sites, cells = _grid_sites(model, grid, n_pos, ndim)
    hooks = sorted({s[0][0] for s in sites})
    clean_logits, clean_cache = model.run_with_cache(clean, names=hooks)
    bases = sorted(set(hooks) | set(sweep_base_hooks(model, hooks)))  # where passes start
    corrupted_logits, corrupted_cache = model.run_with_cache(corrupted, names=bases)
    clean_value = float(evaluate(metric, clean_logits, clean.shape[0]).mean())
    corrupted_value = float(evaluate(metric, corrupted_logits, corrupted.shape[0]).mean())
    flat = [cell[0] for cell in sites]
    after = run_sweep(
        model, corrupted, flat, clean_cache, corrupted_cache, metric, max_tokens=max_tokens
    )
    return PatchingResult(_to_grid(model, cells, after.mean(1)), clean_value, corrupted_value, grid)


def _per_unit(contrib: torch.Tensor) -> torch.Tensor:
    """``[batch, unit]`` from an MLP ``[b, d]``, transformer ``[b, pos, d]`` or conv ``[b, c, h, w]``."""
    if contrib.ndim == 2:
        return contrib
    if contrib.ndim == 3:
        return contrib.sum(1)
    return contrib.flatten(2).sum(-1)


def attribution_patching(
    model: ModelHandle,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    grid: str = "resid",
) -> PatchingResult:
    """First-order estimate of ``activation_patching`` (Nanda 2023).

    For a cell ``c`` covering activation entries ``a_c`` (a position's residual stream, a
    head's ``z`` at every position, one neuron) and prompts ``b = 1..B``::

        values[c] = m_corr + (1/B) sum_b  sum_{a in c} (a_clean[b] - a_corr[b]) * d m_b / d a[b]

    with ``m_b`` the metric of prompt ``b`` and the gradient taken on the corrupted run.
    ``m_corr`` is the batch-mean corrupted metric, so ``values`` estimates the batch-mean
    metric after patching, on the scale of ``activation_patching``. Each prompt's gradient
    is its own metric's (the backward pass runs on the *sum* of per-prompt metrics), so
    duplicating the batch leaves the estimate unchanged.
    """
    _check_grid(model, grid)
    clean, corrupted = _check_pair(model, clean, corrupted)
    kind = {"resid": "resid_pre", "head": "z", "neuron": "post"}[grid]
    hooks = [model.hook_name(kind, layer) for layer in range(model.n_layers)]
    _, clean_cache = model.run_with_cache(clean, names=hooks)
    saved: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook) -> None:
        act.retain_grad()
        saved[hook.name] = act

    clean_value = float(clean_metric(model, clean, metric).mean())
    with torch.enable_grad():
        logits = model.run_with_hooks(corrupted, [(h, keep) for h in hooks], _checked=True)
        value = metric(logits)
        if value.shape != (corrupted.shape[0],):
            raise ValueError(f"a metric must return one value per example, got {list(value.shape)}")
        value.sum().backward()  # d m_b / d a[b] for every prompt b
    corrupted_value = float(value.detach().mean())
    model.model.zero_grad(set_to_none=True)
    rows = []
    for hook in hooks:
        act = saved[hook]
        contrib = (clean_cache[hook] - act.detach()) * act.grad
        if grid == "resid":
            rows.append(reduce(contrib, "b p d -> p", "sum") / corrupted.shape[0])
        elif grid == "head":
            rows.append(reduce(contrib, "b p h d -> h", "sum") / corrupted.shape[0])
        else:
            rows.append(_per_unit(contrib).sum(0) / corrupted.shape[0])
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), float("nan"))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return PatchingResult(
        out + corrupted_value, clean_value, corrupted_value, grid, method="attribution"
    )
