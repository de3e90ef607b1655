"""Direct logit attribution and the logit lens at GPT-2-small size: ours vs cache-everything.

The model is GPT-2 small's shape from a config with random weights (12 layers x 12 heads,
d_model 768, d_mlp 3072, vocabulary 50,257; LayerNorm weights 1, so transformer-lens's
``logit_attrs`` and ours compute the same numbers). The naive way is what a
transformer-lens user writes:

- DLA: ``run_with_cache`` of everything, ``cache.get_full_resid_decomposition(
  expand_neurons=True, pos_slice=-1)`` (a ``[37,000 components, batch, d_model]`` stack)
  and ``cache.logit_attrs``; ours reads each head as ``z . (W_O d)`` and each neuron as
  ``post . (W_out d)`` at the last position only (``direct_logit_attribution``,
  ``units="all"``, the same components);
- logit lens: ``run_with_cache``, ``cache.accumulated_resid(apply_ln=True) @ W_U + b_U``
  (``[13, batch, pos, 50,257]`` logits) and ``topk``; ours keeps one row's logits at a time
  and only the top-k (``logit_lens``).

Time: interleaved, best of the repeats, in this process. Memory: each variant runs once
in a fresh subprocess (``python -m benchmarks.bench_lm_analyses --variant ...``), which
reports its peak RSS above the RSS after building the model (as ``bench_topk``). Both
sides' results are compared (max abs difference, equal top-k ids). The ``tiny`` size runs
everything in-process with a 2-layer model, for the smoke test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch

from benchmarks.bench_topk import _max_rss_bytes, _PeakRSS
from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import direct_logit_attribution, logit_lens
from explorer.models import ModelHandle

BENCHMARK = "DLA and logit lens"
VARIANTS = ("dla_ours", "dla_tl", "lens_ours", "lens_tl")
TOLERANCE = 1e-4  # float32 sums over 768 dims, ours and transformer-lens in different orders
K = 5


@dataclass(frozen=True)
class Setting:
    n_layers: int
    n_heads: int
    d_model: int
    d_vocab: int
    batch: int
    pos: int


SETTINGS = {
    "tiny": Setting(2, 4, 32, 50, 2, 8),
    "small": Setting(4, 8, 256, 8000, 4, 32),
    "full": Setting(12, 12, 768, 50257, 4, 64),
}


def build(s: Setting) -> tuple[ModelHandle, torch.Tensor]:
    """A GPT-2-shaped HookedTransformer with random weights, and random tokens."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=s.n_layers,
        d_model=s.d_model,
        n_heads=s.n_heads,
        d_head=s.d_model // s.n_heads,
        d_mlp=4 * s.d_model,
        d_vocab=s.d_vocab,
        n_ctx=max(64, s.pos),
        act_fn="gelu_new",
        normalization_type="LN",
        seed=0,
        device="cpu",
    )
    model = HookedTransformer(cfg).eval()
    tokens = torch.randint(
        0, s.d_vocab, (s.batch, s.pos), generator=torch.Generator().manual_seed(0)
    )
    return ModelHandle(model, kind="tokens", name="gpt2-shaped"), tokens


def _targets(tokens: torch.Tensor, d_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tokens[:, 0], (tokens[:, 0] + 1) % d_vocab


@torch.no_grad()
def dla_tl(model: ModelHandle, tokens: torch.Tensor) -> torch.Tensor:
    """``[component, batch]`` the transformer-lens way (cache everything)."""
    target, against = _targets(tokens, model.d_vocab or 0)
    _, cache = model.model.run_with_cache(tokens)
    stack = cache.get_full_resid_decomposition(expand_neurons=True, pos_slice=-1)
    return cache.logit_attrs(stack, tokens=target, incorrect_tokens=against, pos_slice=-1)


def dla_ours(model: ModelHandle, tokens: torch.Tensor) -> torch.Tensor:
    target, against = _targets(tokens, model.d_vocab or 0)
    return direct_logit_attribution(
        model, tokens, target=target, against=against, granularity="all"
    ).values.T


@torch.no_grad()
def lens_tl(model: ModelHandle, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(top values, top ids)`` ``[row, batch, pos, k]`` the transformer-lens way."""
    _, cache = model.model.run_with_cache(tokens)
    logits = cache.accumulated_resid(apply_ln=True) @ model.model.W_U + model.model.b_U
    values, ids = logits.topk(K, dim=-1)
    return values, ids


def lens_ours(model: ModelHandle, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lens = logit_lens(model, tokens, n=K)
    return lens.top_logits, lens.top_ids


FUNCTIONS = {"dla_ours": dla_ours, "dla_tl": dla_tl, "lens_ours": lens_ours, "lens_tl": lens_tl}


def measure(variant: str, size: str) -> tuple[dict[str, Any], Any]:
    """Run one variant once in this process: seconds and peak RSS growth."""
    model, tokens = build(SETTINGS[size])
    fn = FUNCTIONS[variant]
    with torch.no_grad():
        model.model(tokens[:1, :4])  # warm up kernels and the allocator
    rss_start, max_rss_start = psutil.Process().memory_info().rss, _max_rss_bytes()
    with _PeakRSS() as sampler:
        start = time.perf_counter()
        result = fn(model, tokens)
        seconds = time.perf_counter() - start
    max_rss_end = _max_rss_bytes()
    peak = max_rss_end if max_rss_end > max_rss_start else sampler.peak
    return {
        "variant": variant,
        "seconds": seconds,
        "peak_growth_mb": max(0, peak - rss_start) / 2**20,
    }, result


def _in_subprocess(variant: str, size: str, threads: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_lm_analyses", "--variant", variant]
    command += ["--size", size, "--threads", str(threads)]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(
            f"{variant} subprocess failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(size: str = "full") -> list[Row]:
    s = SETTINGS[size]
    threads = torch.get_num_threads()
    if size == "tiny":
        memory = {v: measure(v, size)[0] for v in VARIANTS}
    else:
        memory = {v: _in_subprocess(v, size, threads) for v in VARIANTS}
    model, tokens = build(s)
    repeats = {"tiny": 1, "small": 2, "full": 3}[size]
    times, results = best_of(
        {v: (lambda fn=FUNCTIONS[v]: fn(model, tokens)) for v in VARIANTS}, repeats, warmup=True
    )
    dla_diff = float((results["dla_ours"] - results["dla_tl"]).abs().max())
    lens_diff = float((results["lens_ours"][0] - results["lens_tl"][0]).abs().max())
    same_ids = bool(torch.equal(results["lens_ours"][1], results["lens_tl"][1]))
    if not (dla_diff <= TOLERANCE and lens_diff <= TOLERANCE and same_ids):
        raise AssertionError(
            f"ours differs from transformer-lens: DLA {dla_diff:.2e}, lens {lens_diff:.2e}, "
            f"same top-k ids {same_ids} (tolerance {TOLERANCE:g})"
        )
    shape = (
        f"{s.n_layers}L x {s.n_heads}H, d_model {s.d_model}, vocab {s.d_vocab:,}, "
        f"batch {s.batch} x {s.pos} tokens"
    )
    components = results["dla_ours"].shape[0]
    rows = []
    for name, what, diff in (
        ("dla", "DLA of every head and neuron", dla_diff),
        ("lens", "logit lens top-5", lens_diff),
    ):
        ours, tl = memory[f"{name}_ours"], memory[f"{name}_tl"]
        details = {
            "max_abs_diff": diff,
            "repeats": repeats,
            "isolated_subprocesses": size != "tiny",
        }
        if name == "dla":
            details["components"] = components
        else:
            details["same_top_k_ids"] = same_ids
        rows.append(
            faster(
                BENCHMARK,
                f"time: {what}, {shape}",
                times[f"{name}_ours"],
                times[f"{name}_tl"],
                details=details,
                note="vs transformer-lens: run_with_cache of everything, then "
                + (
                    "get_full_resid_decomposition + logit_attrs"
                    if name == "dla"
                    else "accumulated_resid(apply_ln=True) @ W_U"
                ),
            )
        )
        rows.append(
            Row(
                BENCHMARK,
                f"peak memory (RSS growth): {what}, {shape}",
                "MiB",
                ours["peak_growth_mb"],
                tl["peak_growth_mb"],
                tl["peak_growth_mb"] / max(ours["peak_growth_mb"], 1e-9),
                details={"seconds_in_subprocesses": {"ours": ours["seconds"], "tl": tl["seconds"]}},
                note="each variant once in a fresh process, above the RSS after building the model",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Child entry point: run one variant and print its report as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--size", choices=tuple(SETTINGS), default="full")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report, _ = measure(args.variant, args.size)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
