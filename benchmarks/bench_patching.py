"""Activation patching over a layer x position grid: batched vs a loop, and its approximation.

The task is induction on the 2-layer attention-only tutorial model: the clean prompt is
``[BOS][A][A minus its last token]`` (answer: the last token of ``A``), the corrupted one
is the same with other random tokens ``B``. The metric is the logit difference of the
clean answer over the corrupted one (the last tokens of ``A`` and ``B``). The
naive way patches ``hook_resid_pre`` of one (layer, position) per ``run_with_hooks`` pass.
``attribution_patching`` estimates the whole grid from one forward and one backward pass;
its Pearson correlation with exact patching says how far the estimate can be trusted
(the model is untrained, so the grid measures speed and agreement, not a circuit).
"""

from __future__ import annotations

import torch

from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import activation_patching, attribution_patching, metrics
from explorer.data import repeated_tokens
from explorer.models import ModelHandle, zoo

BENCHMARK = "activation patching"
TOLERANCE = 1e-5


def task(size: str) -> tuple[ModelHandle, torch.Tensor, torch.Tensor, metrics.Metric]:
    """``(model, clean, corrupted, metric)``."""
    if size == "tiny":
        model = zoo.attention_only_transformer(2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)
        batch, half, vocab = 4, 6, 20
    else:
        model = zoo.attention_only_transformer(2, d_model=64, n_heads=4, d_vocab=64, n_ctx=64)
        batch, half, vocab = 32, 31, 64
    clean_full = repeated_tokens(batch, half, vocab, seed=1)
    other = repeated_tokens(batch, half, vocab, seed=2)
    clean, corrupted = clean_full[:, :-1], other[:, :-1]
    metric = metrics.logit_diff(clean_full[:, -1], other[:, -1])
    return model, clean, corrupted, metric


@torch.no_grad()
def naive_patching(
    model: ModelHandle, clean: torch.Tensor, corrupted: torch.Tensor, metric: metrics.Metric
) -> torch.Tensor:
    """``[layer, position]`` mean metric, one ``run_with_hooks`` per cell."""
    n_layers, n_pos = model.n_layers, clean.shape[1]
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)]
    _, cache = model.model.run_with_cache(clean, names_filter=lambda n: n in names)
    out = torch.empty(n_layers, n_pos)
    for layer, name in enumerate(names):
        for pos in range(n_pos):

            def patch(act: torch.Tensor, hook: object, pos: int = pos) -> torch.Tensor:
                act[:, pos] = cache[hook.name][:, pos]  # type: ignore[attr-defined]
                return act

            logits = model.model.run_with_hooks(corrupted, fwd_hooks=[(name, patch)])
            out[layer, pos] = metric(logits).mean()
    return out


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-30))


def run(size: str = "full") -> list[Row]:
    repeats = {"tiny": 1, "small": 1, "full": 3}[size]
    model, clean, corrupted, metric = task(size)
    times, results = best_of(
        {
            "ours": lambda: activation_patching(
                model, clean, corrupted=corrupted, metric=metric, grid="resid"
            ),
            "naive": lambda: naive_patching(model, clean, corrupted, metric),
            "attribution": lambda: attribution_patching(
                model, clean, corrupted=corrupted, metric=metric, grid="resid"
            ),
        },
        repeats,
    )
    exact, naive, approx = results["ours"], results["naive"], results["attribution"]
    diff = float((exact.values - naive).abs().max())
    if not diff <= TOLERANCE:
        raise AssertionError(
            f"activation_patching differs from the naive loop by {diff:.2e} (tolerance {TOLERANCE:g})"
        )
    correlation = _pearson(approx.values, exact.values)
    cells = exact.values.numel()
    grid = f"{model.n_layers} layers x {clean.shape[1]} positions, batch {clean.shape[0]}"
    return [
        faster(
            BENCHMARK,
            f"exact, resid grid {grid}",
            times["ours"],
            times["naive"],
            details={"max_abs_diff": diff, "cells": cells, "repeats": repeats},
            note="no target set; the naive loop runs one forward pass per cell",
        ),
        faster(
            BENCHMARK,
            "attribution patching (1 fwd + 1 bwd) vs exact (ours)",
            times["attribution"],
            times["ours"],
            details={"pearson_r": correlation},
        ),
        Row(
            BENCHMARK,
            "attribution vs exact: correlation over the grid",
            "r",
            correlation,
            note=f"Pearson r over {cells} cells (untrained model)",
        ),
    ]
