"""Comparing two models (issue 28): ``compare`` and cross-model patching, beside the naive way.

Rows:
- ``compare`` on two GPT-2-small-shaped models (``transformers.GPT2Config()`` defaults,
  random weights, B a perturbed copy of A, loaded with ``explorer.load``) on 4 prompts x 64
  tokens, against one forward pass of each model (target: at most 3x their sum). Peak
  memory is the growth of the process's resident set above what it held before the step
  (CPU tensors are invisible to ``tracemalloc``), beside the two plain passes'. The
  state ``compare`` keeps across batches is O(units): its size is in the row's details
  (``state_bytes``), beside what keeping every token's activations would take.
- Cross-model patching over every head (B's ``hook_z`` into A, ``activation_patching(a,
  inputs, other=b, grid="head")``) against the per-cell loop: one transformer-lens
  ``run_with_hooks`` pass of A per head (target >= 3x), equal to 1e-5.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import torch

from benchmarks.bench_gpt2 import GPT2_SMALL
from benchmarks.bench_topk import _PeakRSS
from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import activation_patching, compare, metrics
from explorer.models import ModelHandle, TransformerConfig, zoo

BENCHMARK = "comparing models"
TOLERANCE = 1e-5
TIME_TARGET_X = 3.0
PATCH_TARGET_X = 3.0
MB = 2**20


def _perturb(model: ModelHandle, scale: float = 0.02, seed: int = 1) -> ModelHandle:
    other = model.copy()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return other


def gpt2_pair(size: str) -> tuple[ModelHandle, ModelHandle, torch.Tensor]:
    """Two GPT-2-shaped handles (A and a perturbed B) and 4 prompts x 64 tokens."""
    # lazy: transformers is only needed to build the GPT-2-shaped model from its config
    from transformers import GPT2Config, GPT2LMHeadModel

    import explorer

    torch.manual_seed(0)
    if size == "tiny":
        config = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
    else:
        config = GPT2Config()  # GPT-2 small: 12 layers x 12 heads, d_model 768, 50,257 tokens
    a = explorer.load(GPT2LMHeadModel(config).eval())
    b = _perturb(a)
    tokens = torch.randint(
        0, config.vocab_size, (4, 64), generator=torch.Generator().manual_seed(2)
    )
    return a, b, tokens


def state_bytes(model: ModelHandle) -> int:
    """What ``compare`` keeps across batches: per head 2 x 3 float64 moments... (see below)."""
    heads = model.n_layers * (model.n_heads or 0)
    neurons = model.n_layers * max(model.layer_widths)
    moments = 3 * 8 * (heads + neurons)  # count, sum, sum of squares, float64
    divergence = 8 * heads
    dla = 2 * 4 * (heads + neurons)  # A's and B's, float32
    return moments + divergence + dla


def activation_bytes(model: ModelHandle, tokens: torch.Tensor) -> int:
    """Keeping every token's activations compare reads (z, post, patterns), both models."""
    b, p = tokens.shape
    per_layer = (model.n_heads * model.d_head + max(model.layer_widths)) * b * p
    per_layer += model.n_heads * b * p * p
    return 2 * 4 * model.n_layers * per_layer


def _peak(fn) -> tuple[float, Any]:
    gc.collect()
    with _PeakRSS() as rss:
        base = rss.peak
        out = fn()
    return (rss.peak - base) / MB, out


def compare_rows(size: str) -> list[Row]:
    a, b, tokens = gpt2_pair(size)
    repeats = 1 if size == "tiny" else 3

    def forwards() -> None:
        with torch.no_grad():
            a(tokens)
            b(tokens)

    run = lambda: compare(a, tokens, other=b, target=5, against=7)
    forwards()  # first calls pay lazy set-up
    times, results = best_of({"compare": run, "forwards": forwards}, repeats, warmup=True)
    mem_ours, _ = _peak(run)
    mem_plain, _ = _peak(forwards)
    result = results["compare"]
    ratio = times["compare"] / times["forwards"]
    state = state_bytes(a)
    acts = activation_bytes(a, tokens)
    shape = "GPT-2-small (GPT2Config defaults)" if size != "tiny" else "GPT-2-shaped 2L d64"
    case = f"{shape}, 4 x 64 tokens: compare vs one forward pass of each model"
    return [
        Row(
            BENCHMARK,
            case,
            "x",
            ratio,
            None,
            None,
            target=f"<= {TIME_TARGET_X:g}x",
            met=ratio <= TIME_TARGET_X,
            details={
                "compare_s": times["compare"],
                "forwards_s": times["forwards"],
                "peak_rss_growth_compare_mib": mem_ours,
                "peak_rss_growth_forwards_mib": mem_plain,
                "state_bytes": state,
                "activations_x_tokens_bytes": acts,
                "repeats": repeats,
                "n_tokens": result.n_tokens,
            },
            note=(
                f"compare {times['compare']:.2f} s, the two passes {times['forwards']:.2f} s; "
                f"peak RSS growth {mem_ours:.0f} MiB vs {mem_plain:.0f} MiB for the passes; state "
                f"kept across batches {state / 1024:.0f} KiB (O(units)) vs {acts / MB:.0f} MiB "
                "to keep every token's activations"
            ),
        )
    ]


MID = TransformerConfig(
    n_layers=4, d_model=256, n_heads=8, d_mlp=1024, d_vocab=2048, n_ctx=64, normalization="LN"
)
TINY = TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16)
# (config, prompts, tokens per prompt) of each patching case
PATCHING_CASES = {
    "tiny": [(TINY, 2, 12)],
    "small": [(MID, 4, 64)],
    "full": [(GPT2_SMALL, 2, 16), (MID, 4, 64)],
}


def patching_pair(
    cfg: TransformerConfig, n_prompts: int, n_tokens: int
) -> tuple[ModelHandle, ModelHandle, torch.Tensor, Any]:
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, cfg.d_vocab, (n_prompts, n_tokens), generator=gen)
    a = zoo.transformer(cfg)
    b = _perturb(a, scale=0.05)
    metric = metrics.logit_diff(tokens[:, 1], tokens[:, 2])
    return a, b, tokens, metric


@torch.no_grad()
def naive_cross_patching(
    a: ModelHandle, b: ModelHandle, tokens: torch.Tensor, metric: Any
) -> torch.Tensor:
    """``[layer, head]``: one transformer-lens ``run_with_hooks`` pass of A per head, B's
    ``hook_z`` of that head written in."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(a.n_layers)]
    _, cache = b.model.run_with_cache(tokens, names_filter=lambda n: n in names)
    out = torch.empty(a.n_layers, a.n_heads)
    for layer, name in enumerate(names):
        for head in range(a.n_heads):

            def patch(z: torch.Tensor, hook: Any, head: int = head) -> torch.Tensor:
                z[:, :, head] = cache[hook.name][:, :, head]
                return z

            logits = a.model.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            out[layer, head] = metric(logits).mean()
    return out


def patching_rows(size: str) -> list[Row]:
    return [row for case in PATCHING_CASES[size] for row in _patching_row(size, *case)]


def _patching_row(size: str, cfg: TransformerConfig, n_prompts: int, n_tokens: int) -> list[Row]:
    a, b, tokens, metric = patching_pair(cfg, n_prompts, n_tokens)
    repeats = 1 if size == "tiny" or cfg is GPT2_SMALL else 3
    times, results = best_of(
        {
            "ours": lambda: activation_patching(a, tokens, other=b, metric=metric, grid="head"),
            "naive": lambda: naive_cross_patching(a, b, tokens, metric),
        },
        repeats,
        warmup=size != "tiny" and cfg is not GPT2_SMALL,
    )
    diff = float((results["ours"].values - results["naive"]).abs().max())
    if not diff <= TOLERANCE:
        raise AssertionError(
            f"cross-model patching differs from the hook loop by {diff:.2e} (tolerance {TOLERANCE:g})"
        )
    heads = a.n_layers * a.n_heads
    return [
        faster(
            BENCHMARK,
            f"cross-model patching, all {heads} heads ({a.n_layers}L d{a.d_model}, "
            f"{tokens.shape[0]} x {tokens.shape[1]} tokens) vs the per-cell hook loop",
            times["ours"],
            times["naive"],
            target_x=PATCH_TARGET_X,
            details={"max_abs_diff": diff, "cells": heads, "repeats": repeats},
            note="the loop runs one transformer-lens run_with_hooks pass of A per head",
        )
    ]


def run(size: str = "full") -> list[Row]:
    start = time.perf_counter()
    rows = patching_rows(size) + compare_rows(size)
    for row in rows:
        row.details["bench_s"] = time.perf_counter() - start
    return rows
