"""The shared mechanism behind ablation and patching: replace parts of activations.

An *intervention* is a list of ``(hook name, index)`` sites; running it replaces
``act[index]`` with ``source[hook][index]`` where ``source[hook]`` is a tensor shaped like
the activation (zeros, a mean, resampled or clean activations). Many interventions run
together by stacking copies of the batch, so a sweep over every head of a model costs a
few forward passes instead of one per unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from explorer.analysis.metrics import Metric, evaluate
from explorer.models.handle import ModelHandle

Site = tuple[str, tuple]


def _replace(act: torch.Tensor, source: torch.Tensor, index: tuple) -> None:
    act[index] = source[index].to(act.dtype)


@torch.no_grad()
def run_interventions(
    model: ModelHandle,
    inputs: torch.Tensor,
    interventions: Sequence[Sequence[Site]],
    sources: dict[str, torch.Tensor],
    metric: Metric,
    *,
    max_batch: int = 2048,
    fired: set[str] | None = None,
) -> torch.Tensor:
    """Metric per intervention and example: ``[n_interventions, batch]``.

    ``inputs`` has been checked by the caller; ``sources[hook]`` is ``[batch, ...]``.
    """
    batch = inputs.shape[0]
    per_pass = max(1, max_batch // batch)
    results = []
    for start in range(0, len(interventions), per_pass):
        chunk = interventions[start : start + per_pass]
        copies = len(chunk)
        by_hook: dict[str, list[tuple[int, tuple]]] = defaultdict(list)
        for copy, sites in enumerate(chunk):
            for hook, index in sites:
                by_hook[hook].append((copy, index))

        def make_hook(hook_name: str, edits: list[tuple[int, tuple]], copies: int = copies) -> Any:
            def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
                view = act.reshape(copies, batch, *act.shape[1:])
                src = sources[hook_name]
                for copy, index in edits:
                    _replace(view[copy], src, index)
                if fired is not None:
                    fired.add(hook_name)
                return view.reshape(act.shape)

            return hook_fn

        hooks = [(name, make_hook(name, edits)) for name, edits in by_hook.items()]
        stacked = inputs.repeat(copies, *([1] * (inputs.ndim - 1)))
        logits = model.run_with_hooks(stacked, hooks, _checked=True)
        logits = logits.view(copies, batch, *logits.shape[1:])
        results.extend(evaluate(metric, logits[c], batch) for c in range(copies))
    return torch.stack(results)


@torch.no_grad()
def clean_metric(model: ModelHandle, inputs: torch.Tensor, metric: Metric) -> torch.Tensor:
    """The metric per example without any intervention."""
    return evaluate(metric, model.run_with_hooks(inputs, [], _checked=True), inputs.shape[0])
