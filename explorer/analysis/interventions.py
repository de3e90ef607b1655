"""The shared mechanism behind ablation and patching: replace parts of activations.

An *intervention* is a list of ``(hook name, index)`` sites; running it replaces
``act[index]`` with ``source[hook][index]`` where ``source[hook]`` is a tensor shaped like
the activation (zeros, a mean, resampled or clean activations).

Sweeps (one single-site intervention per unit) are where users wait, so they avoid
recomputing what the edit cannot change. The batch runs once up to the edit, then fans out
into one copy per unit:
- a residual-stream hook, or a hook of a plain module that the rest of the model reads
  and nothing computed before it (``models.fast_paths.fans_out``, proven from the traced
  graph): fan out at the hook itself, each copy edited; other plain-module hooks (a
  residual connection around them) stack copies of the whole batch;
- a head (``attn.hook_z``) or neuron (``mlp.hook_post``) of a transformer: its effect on the
  residual stream is linear (``z W_O``, ``post W_out``), so the fan-out happens at the
  next residual hook, adding each copy's exact change. Nothing before the next block is
  recomputed per unit. The same holds for a plain module's neurons when the structure
  proves that one ``nn.Linear`` with a hook point reads them and nothing else, and that the
  rest of the model reads only that output (``models.fast_paths.linear_readout``): the fan-out
  happens at that Linear's output.
For transformers the prefix is not even recomputed once per chunk: every pass starts at
the edited block (``start_at_layer``) from the clean residual stream that the caller's
clean pass cached (``sweep_base_hooks``), so a whole sweep over every layer shares one
clean pass. Sites that take one integer on one axis (a neuron, a position) are written for
all copies in one indexed assignment.
Multi-site interventions stack copies of the whole batch. Both paths are tested against a
plain per-unit loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from explorer._cancel import check_cancelled
from explorer.analysis.metrics import Metric, evaluate, evaluate_copies
from explorer.models.fast_paths import (
    Readout,
    fans_out,
    finish_block,
    finishes_blocks,
    linear_readout,
    run_from_layer,
    starts_mid_model,
)
from explorer.models.handle import ModelHandle

__all__ = []

Site = tuple[str, tuple]

MAX_TOKENS = 8192  # rows x positions per forward pass: bigger chunks spill CPU caches
PASS_BYTES = 4 * 2**20  # a small transformer pass's widest activation: more spills caches


def _per_pass(model: ModelHandle, inputs: torch.Tensor, max_tokens: int) -> int:
    """Copies of the batch per forward pass: at most ``max_tokens`` rows x positions, and
    for transformers the widest activation of a pass (attention scores ``[heads, pos,
    pos]``, MLP hidden or logits, over all its copies) at most ``PASS_BYTES`` or the
    model's own size, whichever is larger.

    A pass has a fixed cost (reading every weight; transformer-lens's unembedding even
    copies ``W_U`` each pass) and a cost per copy that grows once the copies' activations
    outgrow the caches: a small model wants few copies a pass (4 copies of a 2-layer d64
    model at 64 tokens ran 25% slower each than 2), a large one many (GPT-2-small's
    fixed cost is a 154 MB copy). Activations as large as the weights at most double the
    memory a forward pass needs.
    """
    per_copy = inputs.shape[0] * (inputs.shape[1] if inputs.dtype == torch.long else 1)
    copies = max(1, max_tokens // per_copy)
    if model.is_transformer:
        pos = inputs.shape[-1]
        widest = max(
            model.d_model or 0, model.n_outputs or 0, (model.n_heads or 0) * pos, model.d_mlp or 0
        )
        size = torch.finfo(model.dtype).bits // 8
        weights = sum(p.numel() for p in model.parameters()) * size
        copies = min(copies, max(1, max(PASS_BYTES, weights) // (per_copy * widest * size)))
    return copies


@torch.no_grad()
def run_interventions(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    interventions: Sequence[Sequence[Site]],
    sources: dict[str, torch.Tensor],
    metric: Metric,
    max_tokens: int = MAX_TOKENS,
    fired: set[str] | None = None,
) -> torch.Tensor:
    """Metric per intervention and example, ``[n_interventions, batch]``, stacking copies.

    ``inputs`` has been checked by the caller; ``sources[hook]`` is ``[batch, ...]``.
    An empty intervention is the clean run:

    >>> from explorer.analysis import metrics
    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(8,))
    >>> x, metric = torch.rand(4, 1, 28, 28), metrics.neg_cross_entropy(torch.tensor([0, 1, 2, 3]))
    >>> hook = "blocks.0.mlp.hook_post"
    >>> zero_neuron_3 = [(hook, (slice(None), 3))]
    >>> out = run_interventions(m, x, interventions=[zero_neuron_3, []], sources={hook: torch.zeros(4, 8)}, metric=metric)
    >>> tuple(out.shape), torch.allclose(out[1], clean_metric(m, x, metric=metric))
    ((2, 4), True)
    """
    batch = inputs.shape[0]
    per_pass = _per_pass(model, inputs, max_tokens)
    results: list[torch.Tensor] = []
    for start in range(0, len(interventions), per_pass):
        chunk = interventions[start : start + per_pass]
        copies = len(chunk)
        by_hook: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        for copy, sites in enumerate(chunk):
            for hook, index in sites:
                by_hook[hook].append((copy, index))

        def make_hook(name: str, edits: list[tuple[int, tuple]], copies: int = copies) -> Any:
            source = sources[name]  # this hook's only: a remote backend ships the closure

            def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
                view = act.reshape(copies, batch, *act.shape[1:])
                for copy, index in edits:
                    view[copy][index] = source[index].to(act.device, act.dtype)
                if fired is not None:
                    fired.add(name)
                return view.reshape(act.shape)

            return hook_fn

        hooks = [(name, make_hook(name, edits)) for name, edits in by_hook.items()]
        stacked = inputs.repeat(copies, *([1] * (inputs.ndim - 1)))
        results.append(  # reduced in the pass: a remote backend sends back numbers only
            model.run_reduced(
                stacked,
                hooks,
                lambda logits, copies=copies: evaluate_copies(metric, logits, copies, batch),
            )
        )
    return torch.cat(results)


def _full_index(index: Any, ndim: int) -> tuple | None:
    """``index`` spelled out over all ``ndim`` axes, or None if it is not ints and ``:``."""
    if not isinstance(index, tuple):
        index = (index,)
    if sum(e is Ellipsis for e in index) > 1:
        return None
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (ndim - len(index) + 1) + index[at + 1 :]
    if len(index) > ndim:
        return None
    index = index + (slice(None),) * (ndim - len(index))
    for entry in index:
        is_int = isinstance(entry, int) and not isinstance(entry, bool)
        if not (is_int or (isinstance(entry, slice) and entry == slice(None))):
            return None
    return index


def _one_axis(sites: Sequence[Site], ndim: int) -> tuple[int, list[int]] | None:
    """``(axis, ints)`` when every site selects one integer on the same axis (a neuron, a
    position) and everything on the others; None otherwise."""
    axis: int | None = None
    ints = []
    for _, index in sites:
        full = _full_index(index, ndim)
        if full is None:
            return None
        at = [i for i, entry in enumerate(full) if not isinstance(entry, slice)]
        if len(at) != 1 or (axis is not None and at[0] != axis):
            return None
        axis = at[0]
        ints.append(full[axis])
    return None if axis is None else (axis, ints)


def _fanned(act: torch.Tensor, sites: Sequence[Site], source: torch.Tensor) -> torch.Tensor:
    """``[copies * batch, ...]``: one copy of ``act`` per site, each with its site replaced
    from ``source`` (one indexed write for all copies when the sites allow it)."""
    copies = len(sites)
    out = act.unsqueeze(0).repeat(copies, *([1] * act.ndim))
    source = source.to(act.device, act.dtype)
    plan = _one_axis(sites, act.ndim)
    if plan is None:
        for copy, (_, index) in enumerate(sites):
            out[copy][index] = source[index]
    else:
        axis, ints = plan
        picked = torch.tensor(ints)
        out.movedim(axis + 1, 1)[torch.arange(copies), picked] = source.movedim(axis, 0)[picked]
    return out.reshape(copies * act.shape[0], *act.shape[1:])


def _linear_delta(
    weight: torch.Tensor, sites: Sequence[Site], clean: torch.Tensor, source: torch.Tensor
) -> torch.Tensor | None:
    """``[copies, batch, ..., d_out]``: each copy's change ``(source - clean) @ weight[u]``
    of the readout (see ``Readout``), or None if a site is not one unit (optionally at
    one position) of every example.

    The unit axis of the activation is the one ``weight`` starts with (heads:
    ``hook_z [b, p, h, e]``; neurons: ``[b, p, n]`` or ``[b, n]``); integers on the axes
    between batch and unit (a position) keep the change there only.
    """
    ndim = clean.ndim
    axis = ndim - weight.ndim + 1
    if axis < 1:
        return None
    mid = clean.shape[1:axis]
    everything = (slice(None),) * axis
    mask = None
    if all(type(i) is tuple and len(i) == axis + 1 and i[:axis] == everything for _, i in sites):
        units = [index[axis] for _, index in sites]  # the usual sites: one unit, all of it
        if not all(type(u) is int for u in units):
            return None
    else:
        units = []
        mask = torch.ones(len(sites), *mid, dtype=clean.dtype) if mid else None
        for copy, (_, index) in enumerate(sites):
            full = _full_index(index, ndim)
            if full is None or not isinstance(full[axis], int) or full[0] != slice(None):
                return None
            if any(not isinstance(entry, slice) for entry in full[axis + 1 :]):
                return None
            units.append(full[axis])
            where = full[1:axis]
            if mask is not None and any(not isinstance(entry, slice) for entry in where):
                mask[copy].zero_()
                mask[copy][where] = 1.0
    picked = torch.tensor(units)
    picked = torch.where(picked < 0, picked + clean.shape[axis], picked)  # as act[..., -1]
    diff = (source - clean).index_select(axis, picked).movedim(axis, 0)  # [c, b, *mid, *trail]
    if mask is not None:
        diff = diff * mask.reshape(len(sites), 1, *mid, *([1] * (ndim - axis - 1)))
    w = weight.index_select(0, picked).to(diff.dtype)  # [c, *trail, d]
    if w.ndim == 2:  # one number per unit: an outer product
        return diff.unsqueeze(-1) * w.reshape(len(sites), *([1] * (diff.ndim - 1)), -1)
    flat = diff.reshape(len(sites), -1, w[0, ..., 0].numel())
    out = torch.bmm(flat, w.reshape(len(sites), -1, w.shape[-1]))
    return out.reshape(*diff.shape[: 1 + axis], w.shape[-1])


@dataclass(frozen=True)
class _Plan:
    """How the sweep at one hook runs.

    ``mode``: ``"linear"`` (add each copy's change of ``hook``, the linear readout
    ``readout``), ``"site"`` (copies of the activation, each edited) or ``"stack"`` (copies
    of the whole batch, ``run_interventions``).
    ``hook``: where the copies appear. With ``base`` set, the pass starts at block ``start``
    from the clean ``base`` residual: copies are the input itself when ``hook == base``
    (for a plain module, ``readout.tail`` runs on from the clean ``base``).
    """

    mode: str
    hook: str
    readout: Readout | None = None
    base: str | None = None
    start: int = 0
    finish_block: bool = False  # base is block ``start``'s resid_mid: run its MLP half first


def _plan(model: ModelHandle, name: str, padded: bool = False) -> _Plan:
    if not model.edits_fan_out or padded:
        # the batch keeps its size through a pass, or its attention mask has the batch's
        # rows (a padded batch): stack copies at the input
        return _Plan("stack", name)
    readout = linear_readout(model, name)
    if readout is not None:
        mode, hook = "linear", readout.hook
    elif name.split(".")[-1].startswith("hook_resid") or (fans_out(model, name)):
        mode, hook = "site", name
    else:
        return _Plan("stack", name)
    if readout is not None and readout.tail is not None:  # a plain module, run on from hook
        return _Plan(mode, hook, readout, base=hook)
    parts = hook.split(".")
    if not starts_mid_model(model) or len(parts) != 3 or parts[0] != "blocks":
        return _Plan(mode, hook, readout)
    layer = int(parts[1])
    if parts[2] == "hook_resid_post":
        return _Plan(mode, hook, readout, base=hook, start=layer + 1)
    if parts[2] == "hook_resid_mid" and finishes_blocks(model):
        return _Plan(mode, hook, readout, base=hook, start=layer, finish_block=True)
    return _Plan(mode, hook, readout, base=f"blocks.{layer}.hook_resid_pre", start=layer)


def sweep_base_hooks(model: ModelHandle, *, hooks: Sequence[str]) -> list[str]:
    """The residual hooks ``run_sweep`` starts from for sweeps at ``hooks``: cache them in
    the clean pass that callers run anyway, or ``run_sweep`` runs one more."""
    return sorted({p.base for p in (_plan(model, h) for h in hooks) if p.base is not None})


def _reads_clean(model: ModelHandle, hooks: Sequence[str]) -> set[str]:
    """The swept ``hooks`` whose clean activations ``run_sweep`` reads: those with a linear
    readout (it adds ``(source - clean) @ W``) and those its passes start from."""
    plans = {h: _plan(model, h) for h in hooks}
    return {h for h, p in plans.items() if p.readout is not None or p.base == h}


@torch.no_grad()
def run_sweep(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    sites: Sequence[Site],
    sources: dict[str, torch.Tensor],
    clean_activations: dict[str, torch.Tensor],
    metric: Metric,
    max_tokens: int = MAX_TOKENS,
) -> torch.Tensor:
    """Metric per single-site intervention and example, ``[n_sites, batch]``, fanning out
    after the shared prefix (see module docstring). ``clean[hook]`` is the activation on
    ``inputs`` without edits; for transformers it should also hold ``sweep_base_hooks``,
    the residual streams the passes start from (one extra clean pass otherwise)."""
    batch = inputs.shape[0]
    per_pass = _per_pass(model, inputs, max_tokens)
    by_hook: dict[str, list[int]] = defaultdict(list)
    for i, (hook, _) in enumerate(sites):
        by_hook[hook].append(i)
    padded = model.attention_mask(inputs) is not None
    plans = {name: _plan(model, name, padded) for name in by_hook}
    missing = sorted({p.base for p in plans.values() if p.base and p.base not in clean_activations})
    if missing:
        _, extra = model.cache_pass(inputs, names=missing)
        clean_activations = {**clean_activations, **extra}
    out = torch.empty(len(sites), batch)
    for name, order in by_hook.items():
        plan = plans[name]
        for start in range(0, len(order), per_pass):
            check_cancelled()  # the fast paths below run blocks without the handle's check
            chunk = order[start : start + per_pass]
            rows: slice | list[int] = chunk
            if chunk[-1] - chunk[0] == len(chunk) - 1:  # consecutive: a view, no gather
                rows = slice(chunk[0], chunk[-1] + 1)
            chunk_sites = [sites[i] for i in chunk]
            delta = None
            if plan.readout is not None:
                delta = _linear_delta(
                    plan.readout.weight, chunk_sites, clean_activations[name], sources[name]
                )
            if plan.mode == "stack" or (plan.mode == "linear" and delta is None):
                out[rows] = run_interventions(
                    model,
                    inputs,
                    interventions=[[s] for s in chunk_sites],
                    sources=sources,
                    metric=metric,
                    max_tokens=max_tokens,
                )
                continue
            if delta is not None:

                def edit(act: torch.Tensor, delta: torch.Tensor = delta) -> torch.Tensor:
                    out = act.unsqueeze(0) + delta.to(act.dtype)
                    return out.reshape(-1, *act.shape[1:])
            else:

                def edit(
                    act: torch.Tensor, chunk_sites: list = chunk_sites, source: Any = sources[name]
                ) -> torch.Tensor:
                    return _fanned(act, chunk_sites, source)

            if plan.base == plan.hook:  # copies are the input (the chunk's delta, reused)
                base = clean_activations[plan.base]
                copies = delta.to(base.dtype).add_(base) if delta is not None else edit(base)
                copies = copies.reshape(-1, *base.shape[1:])
            if plan.base is None:  # the whole pass, copies from the hook on
                hook = (plan.hook, lambda act, hook, edit=edit: edit(act))
                logits = model.run_with_hooks(inputs, [hook])
            elif plan.base == plan.hook and plan.readout and plan.readout.tail:  # plain module
                logits = plan.readout.tail(copies)
            elif plan.finish_block:  # the rest of the edited block, then the blocks after
                logits = finish_block(model, plan.start, copies)
            elif plan.base == plan.hook:  # start at the block after
                logits = run_from_layer(model, copies, plan.start)
            else:  # start at the hook's block, copies from the hook on
                with model.hooks([(plan.hook, lambda act, hook, edit=edit: edit(act))]):
                    logits = run_from_layer(model, clean_activations[plan.base], plan.start)
            out[rows] = evaluate_copies(metric, logits, len(chunk), batch)
    return out


@torch.no_grad()
def clean_metric(model: ModelHandle, inputs: torch.Tensor, *, metric: Metric) -> torch.Tensor:
    """The metric per example without any intervention (reduced in the pass: a remote
    backend sends back one number per example)."""
    batch = inputs.shape[0]
    return model.run_reduced(inputs, [], lambda logits: evaluate(metric, logits, batch))
