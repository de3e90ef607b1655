"""The shared mechanism behind ablation and patching: replace parts of activations.

An *intervention* is a list of ``(hook name, index)`` sites; running it replaces
``act[index]`` with ``source[hook][index]`` where ``source[hook]`` is a tensor shaped like
the activation (zeros, a mean, resampled or clean activations).

Sweeps (one single-site intervention per unit) are where users wait, so they avoid
recomputing what the edit cannot change. The batch runs once up to the edit, then fans out
into one copy per unit:
- a residual-stream hook, or any hook of a plain (chain-shaped) module: fan out at the
  hook itself, each copy edited;
- a head (``attn.hook_z``) or neuron (``mlp.hook_post``) of a transformer: its effect on the
  residual stream is linear (``z W_O``, ``post W_out``), so the fan-out happens at the
  next residual hook, adding each copy's exact change. Nothing before the next block is
  recomputed per unit.
Multi-site interventions stack copies of the whole batch. Both paths are tested against a
plain per-unit loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from einops import einsum

from explorer.analysis.metrics import Metric, evaluate
from explorer.models.handle import ModelHandle

Site = tuple[str, tuple]

MAX_TOKENS = 8192  # rows x positions per forward pass: bigger chunks spill CPU caches


def _per_pass(inputs: torch.Tensor, max_tokens: int) -> int:
    per_copy = inputs.shape[0] * (inputs.shape[1] if inputs.dtype == torch.long else 1)
    return max(1, max_tokens // per_copy)


def _evaluate_copies(
    metric: Metric, logits: torch.Tensor, copies: int, batch: int
) -> list[torch.Tensor]:
    logits = logits.reshape(copies, batch, *logits.shape[1:])
    return [evaluate(metric, logits[c], batch) for c in range(copies)]


@torch.no_grad()
def run_interventions(
    model: ModelHandle,
    inputs: torch.Tensor,
    interventions: Sequence[Sequence[Site]],
    sources: dict[str, torch.Tensor],
    metric: Metric,
    *,
    max_tokens: int = MAX_TOKENS,
    fired: set[str] | None = None,
) -> torch.Tensor:
    """Metric per intervention and example, ``[n_interventions, batch]``, stacking copies.

    ``inputs`` has been checked by the caller; ``sources[hook]`` is ``[batch, ...]``.
    """
    batch = inputs.shape[0]
    per_pass = _per_pass(inputs, max_tokens)
    results: list[torch.Tensor] = []
    for start in range(0, len(interventions), per_pass):
        chunk = interventions[start : start + per_pass]
        copies = len(chunk)
        by_hook: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        for copy, sites in enumerate(chunk):
            for hook, index in sites:
                by_hook[hook].append((copy, index))

        def make_hook(name: str, edits: list[tuple[int, tuple]], copies: int = copies) -> Any:
            def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
                view = act.reshape(copies, batch, *act.shape[1:])
                for copy, index in edits:
                    view[copy][index] = sources[name][index].to(act.dtype)
                if fired is not None:
                    fired.add(name)
                return view.reshape(act.shape)

            return hook_fn

        hooks = [(name, make_hook(name, edits)) for name, edits in by_hook.items()]
        stacked = inputs.repeat(copies, *([1] * (inputs.ndim - 1)))
        logits = model.run_with_hooks(stacked, hooks, _checked=True)
        results.extend(_evaluate_copies(metric, logits, copies, batch))
    return torch.stack(results)


def _linear_readout(model: ModelHandle, hook: str) -> tuple[str, str] | None:
    """For a transformer's ``attn.hook_z`` / ``mlp.hook_post``: ``(kind, residual hook)``
    where its linear effect lands; None when the fast path does not apply."""
    if not model.is_transformer or getattr(model.model.cfg, "parallel_attn_mlp", False):
        return None
    parts = hook.split(".")
    if len(parts) != 4 or parts[0] != "blocks":
        return None
    layer = int(parts[1])
    if parts[2:] == ["attn", "hook_z"]:
        after = "hook_resid_post" if not model.has_mlp else "hook_resid_mid"
        return "head", f"blocks.{layer}.{after}"
    if parts[2:] == ["mlp", "hook_post"] and not getattr(model.model.cfg, "gated_mlp", False):
        return "neuron", f"blocks.{layer}.hook_resid_post"
    return None


def _fan_out_at_site(
    name: str, sites: Sequence[Site], sources: dict[str, torch.Tensor], fired: set[str] | None
) -> Any:
    copies = len(sites)

    def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.unsqueeze(0).repeat(copies, *([1] * act.ndim))
        for copy, (_, index) in enumerate(sites):
            out[copy][index] = sources[name][index].to(act.dtype)
        if fired is not None:
            fired.add(name)
        return out.reshape(copies * act.shape[0], *act.shape[1:])

    return hook_fn


def _fan_out_linear(
    model: ModelHandle,
    kind: str,
    name: str,
    sites: Sequence[Site],
    clean: torch.Tensor,
    source: torch.Tensor,
    fired: set[str] | None,
) -> Any:
    """Hook for the residual stream adding each copy's change ``(source - clean) W``."""
    layer = int(name.split(".")[1])
    block = model.model.blocks[layer]
    # units: head index in hook_z [b, p, h, e] or neuron index in hook_post [b, p, n]
    units = torch.tensor([index[2] for _, index in sites])
    positions = [index[1] for _, index in sites]
    diff = (source - clean).index_select(2, units)  # [b, p, c, (e)]
    mask = torch.ones(len(sites), clean.shape[1], dtype=clean.dtype)
    for copy, pos in enumerate(positions):
        if isinstance(pos, int):
            mask[copy].zero_()
            mask[copy, pos] = 1.0
    if kind == "head":
        diff = diff * mask.T[None, :, :, None]
        delta = einsum(diff, block.attn.W_O[units], "b p c e, c e d -> c b p d")
    else:
        diff = diff * mask.T[None]
        delta = einsum(diff, block.mlp.W_out[units], "b p c, c d -> c b p d")

    def hook_fn(resid: torch.Tensor, hook: Any) -> torch.Tensor:
        if fired is not None:
            fired.add(name)
        out = resid.unsqueeze(0) + delta.to(resid.dtype)
        return out.reshape(-1, *resid.shape[1:])

    return hook_fn


@torch.no_grad()
def run_sweep(
    model: ModelHandle,
    inputs: torch.Tensor,
    sites: Sequence[Site],
    sources: dict[str, torch.Tensor],
    clean: dict[str, torch.Tensor],
    metric: Metric,
    *,
    max_tokens: int = MAX_TOKENS,
) -> torch.Tensor:
    """Metric per single-site intervention and example, ``[n_sites, batch]``, fanning out
    after the shared prefix (see module docstring). ``clean[hook]`` is the activation on
    ``inputs`` without edits."""
    batch = inputs.shape[0]
    per_pass = _per_pass(inputs, max_tokens)
    by_hook: dict[str, list[int]] = defaultdict(list)
    for i, (hook, _) in enumerate(sites):
        by_hook[hook].append(i)
    out = torch.empty(len(sites), batch)
    for name, order in by_hook.items():
        readout = _linear_readout(model, name)
        fans_at_site = readout is None and (
            not model.is_transformer or name.split(".")[-1].startswith("hook_resid")
        )
        for start in range(0, len(order), per_pass):
            chunk = order[start : start + per_pass]
            chunk_sites = [sites[i] for i in chunk]
            if readout is not None:
                kind, resid = readout
                hook = (
                    resid,
                    _fan_out_linear(
                        model, kind, name, chunk_sites, clean[name], sources[name], None
                    ),
                )
                logits = model.run_with_hooks(inputs, [hook], _checked=True)
            elif fans_at_site:
                hook = (name, _fan_out_at_site(name, chunk_sites, sources, None))
                logits = model.run_with_hooks(inputs, [hook], _checked=True)
            else:
                values = run_interventions(
                    model,
                    inputs,
                    [[s] for s in chunk_sites],
                    sources,
                    metric,
                    max_tokens=max_tokens,
                )
                out[chunk] = values
                continue
            out[chunk] = torch.stack(_evaluate_copies(metric, logits, len(chunk), batch))
    return out


@torch.no_grad()
def clean_metric(model: ModelHandle, inputs: torch.Tensor, metric: Metric) -> torch.Tensor:
    """The metric per example without any intervention."""
    return evaluate(metric, model.run_with_hooks(inputs, [], _checked=True), inputs.shape[0])
