"""The shared mechanism behind ablation and patching: replace parts of activations.

An *intervention* is a list of ``(hook name, index)`` sites; running it replaces
``act[index]`` with ``source[hook][index]`` where ``source[hook]`` is a tensor shaped like
the activation (zeros, a mean, resampled or clean activations).

These functions state what to run and how to score it (a ``models.sweeps.SweepPlan``);
the handle decides how (``Handle.run_sweep``): how many copies of the batch a pass takes,
where a sweep fans out after the shared prefix, what a remote pass sends back. Sweeps are
tested against a plain per-unit loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from explorer.analysis.metrics import Metric, evaluate, evaluate_copies
from explorer.models.handle import ModelHandle
from explorer.models.sweeps import MAX_TOKENS, Site, SweepPlan

__all__: list[str] = []


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
    plan = SweepPlan(
        interventions,
        sources,
        lambda logits, copies: evaluate_copies(metric, logits, copies, batch),
        max_tokens=max_tokens,
        fired=fired,
    )
    return model.run_sweep(inputs, plan)


def sweep_base_hooks(model: ModelHandle, *, hooks: Sequence[str]) -> list[str]:
    """The residual hooks ``run_sweep`` starts from for sweeps at ``hooks``: cache them in
    the clean pass that callers run anyway, or ``run_sweep`` runs one more."""
    return model.sweep_bases(hooks)


def _reads_clean(model: ModelHandle, hooks: Sequence[str]) -> set[str]:
    """The swept ``hooks`` whose clean activations ``run_sweep`` reads."""
    return model.sweep_reads(hooks)


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
    after the shared prefix (``models.sweeps``). ``clean[hook]`` is the activation on
    ``inputs`` without edits; for transformers it should also hold ``sweep_base_hooks``,
    the residual streams the passes start from (one extra clean pass otherwise)."""
    batch = inputs.shape[0]
    plan = SweepPlan(
        [[site] for site in sites],
        sources,
        lambda logits, copies: evaluate_copies(metric, logits, copies, batch),
        clean=clean_activations,
        max_tokens=max_tokens,
    )
    return model.run_sweep(inputs, plan)


@torch.no_grad()
def clean_metric(model: ModelHandle, inputs: torch.Tensor, *, metric: Metric) -> torch.Tensor:
    """The metric per example without any intervention (reduced in the pass: a remote
    backend sends back one number per example)."""
    batch = inputs.shape[0]
    return model.run_reduced(inputs, [], lambda logits: evaluate(metric, logits, batch))
