"""Dataset-wide top-k feature examples of the shipped SAE on the standard-library LM: streamed
(``top_k_examples(sae=)``) vs keeping every activation, side by side in one run (issue 26).

Three variants over the same held-out windows of ``load_stdlib_lm()`` with
``load_stdlib_sae()`` (256 features at ``blocks.1.hook_resid_pre``):
- ``plain``: forward passes to the SAE's hook plus the SAE encode, nothing kept (the
  throughput reference);
- ``streamed``: ``top_k_examples(model, windows, sae=sae)``: only the running top-k per
  feature is kept, ``O(k x features)``;
- ``cache_all``: what a user writes without it: encode every batch, concatenate, ``topk``
  over the whole dataset (``tokens x features`` floats held at once).

Memory is each variant's peak RSS growth in a fresh subprocess (as in ``bench_topk``), the
streamed one also on an eighth of the tokens (it must not grow with the data); throughput
is timed in this process, interleaved, best of the repeats, on ``timing_windows``. The
``tiny`` size runs in-process, for the smoke test. Sizes: ``full`` is 8,192 windows of 128
tokens (1,048,576 tokens).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from benchmarks.bench_topk import _max_rss_bytes, _PeakRSS
from benchmarks.results import Row
from benchmarks.timing import best_of, clock_name
from explorer.analysis import top_k_examples
from explorer.analysis.feature_units import encode_batch
from explorer.studies.stdlib_lm import load_stdlib_lm
from explorer.studies.stdlib_sae import load_stdlib_sae

BENCHMARK = "top-k feature examples"
VARIANTS = ("plain", "streamed", "cache_all")
THROUGHPUT_TARGET = 0.7
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Setting:
    n_windows: int
    n_ctx: int
    batch_size: int
    k: int
    timing_windows: int

    @property
    def n_tokens(self) -> int:
        return self.n_windows * self.n_ctx


SETTINGS = {
    "tiny": Setting(16, 32, 8, 4, 16),
    "small": Setting(1024, 128, 64, 10, 256),  # 131,072 tokens
    "full": Setting(8192, 128, 64, 10, 512),  # 1,048,576 tokens
}


def _case(s: Setting):
    lm = load_stdlib_lm()
    sae = load_stdlib_sae(lm.model)
    tokens = lm.data().windows("held_out", s.n_windows, s.n_ctx, seed=0).tokens
    return lm.model, sae, tokens


@torch.no_grad()
def _plain(model, sae, tokens: torch.Tensor, s: Setting) -> None:
    for batch in tokens.split(s.batch_size):
        encode_batch(model, batch, sae)


@torch.no_grad()
def _cache_all(model, sae, tokens: torch.Tensor, s: Setting) -> torch.Tensor:
    acts = torch.cat([encode_batch(model, b, sae) for b in tokens.split(s.batch_size)])
    return acts.flatten(0, 1).topk(s.k, dim=0).values.T.contiguous()  # [feature, k]


def _streamed(model, sae, tokens: torch.Tensor, s: Setting):
    return top_k_examples(model, tokens, sae=sae, n=s.k, batch_size=s.batch_size)


def measure(
    variant: str, size: str, fraction: int = 1, case=None
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One variant over ``1 / fraction`` of the windows: seconds, RSS growth, top-k values."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    s = SETTINGS[size]
    model, sae, tokens = case or _case(s)
    tokens = tokens[: s.n_windows // fraction]
    _plain(model, sae, tokens[: s.batch_size], s)  # warm up the allocator and kernels
    rss_start, max_rss_start = psutil.Process().memory_info().rss, _max_rss_bytes()
    values, extra = None, {}
    with _PeakRSS() as sampler:
        start = time.perf_counter()
        if variant == "plain":
            _plain(model, sae, tokens, s)
        elif variant == "streamed":
            top = _streamed(model, sae, tokens, s)
            values = top.values.numpy()
            extra["state_bytes"] = sum(
                t.element_size() * t.nelement() for t in (top.values, top.example, top.position)
            )
        else:
            values = _cache_all(model, sae, tokens, s).numpy()
        seconds = time.perf_counter() - start
    max_rss_end = _max_rss_bytes()
    peak = max_rss_end if max_rss_end > max_rss_start else sampler.peak
    report = {
        "variant": variant,
        "seconds": seconds,
        "tokens": tokens.numel(),
        "tokens_per_s": tokens.numel() / seconds,
        "peak_growth_mb": max(0, peak - rss_start) / 2**20,
        "features": sae.d_sae,
        **extra,
    }
    return report, values


def _in_subprocess(variant: str, size: str, fraction: int = 1):
    with tempfile.TemporaryDirectory() as folder:
        values_path = Path(folder) / "values.npy"
        command = [sys.executable, "-m", "benchmarks.bench_feature_topk", "--variant", variant,
                   "--size", size, "--fraction", str(fraction), "--values-out", str(values_path)]  # fmt: skip
        root = Path(__file__).resolve().parents[1]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"feature top-k {variant} failed: {done.stderr[-2000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        values = np.load(values_path) if values_path.exists() else np.zeros(0)
    return report, values


def run(size: str = "full") -> list[Row]:
    s = SETTINGS[size]
    tiny = size == "tiny"
    case = _case(s)
    reports, values = {}, {}
    for variant in VARIANTS:
        got = measure(variant, size, case=case) if tiny else _in_subprocess(variant, size)
        reports[variant], values[variant] = got
    eighth = (
        measure("streamed", size, 8, case)[0] if tiny else _in_subprocess("streamed", size, 8)[0]
    )
    diff = float(np.abs(values["streamed"] - values["cache_all"]).max())
    if not diff <= TOLERANCE:
        raise AssertionError(f"streamed feature top-k differs from cache-all by {diff:.2e}")
    model, sae, tokens = case
    timed = tokens[: s.timing_windows]
    times, _ = best_of(
        {
            "plain": lambda: _plain(model, sae, timed, s),
            "streamed": lambda: _streamed(model, sae, timed, s),
            "cache_all": lambda: _cache_all(model, sae, timed, s),
        },
        1 if tiny else 3,
    )
    speed = {name: timed.numel() / sec for name, sec in times.items()}
    streamed, cache_all, plain = reports["streamed"], reports["cache_all"], reports["plain"]
    d_sae = sae.d_sae
    batch_mb = s.batch_size * s.n_ctx * d_sae * 4 / 2**20
    dataset_mb = s.n_tokens * d_sae * 4 / 2**20
    extra_mb = streamed["peak_growth_mb"] - plain["peak_growth_mb"]
    state = int(streamed["state_bytes"])
    case_text = (
        f"{s.n_tokens:,} tokens of stdlib-lm, shipped SAE ({d_sae} features at {sae.hook}), "
        f"k={s.k}, batch {s.batch_size}x{s.n_ctx}"
    )
    fraction = speed["streamed"] / speed["plain"]
    return [
        Row(
            BENCHMARK,
            "peak memory (RSS growth): streamed vs cache-all, " + case_text,
            "MiB",
            streamed["peak_growth_mb"],
            cache_all["peak_growth_mb"],
            cache_all["peak_growth_mb"] / max(streamed["peak_growth_mb"], 1e-9),
            target="O(k x features): <= 4 batches over plain fwd + encode",
            met=extra_mb <= 4 * batch_mb,
            details={
                "topk_state_bytes": state,
                "state_bytes_per_feature_per_k": state / (d_sae * s.k),
                "plain_peak_growth_mb": plain["peak_growth_mb"],
                "streamed_extra_over_plain_mb": extra_mb,
                "streamed_peak_growth_on_an_eighth_mb": eighth["peak_growth_mb"],
                "one_batch_of_activations_mb": batch_mb,
                "dataset_activations_mb": dataset_mb,
                "max_abs_diff": diff,
                "tokens": s.n_tokens,
                "seconds_in_subprocesses": {v: r["seconds"] for v, r in reports.items()},
            },
            note=(
                f"top-k state {state:,} bytes (values float32 + example, position int64 "
                f"per feature x k); streamed on 1/8 of the tokens: "
                f"{eighth['peak_growth_mb']:.0f} MiB; all activations: {dataset_mb:.0f} MiB"
            ),
        ),
        Row(
            BENCHMARK,
            f"throughput: streamed vs plain forward + SAE encode ({timed.numel():,} tokens)",
            "tokens/s",
            speed["streamed"],
            speed["plain"],
            fraction,
            target=f">= {THROUGHPUT_TARGET:.2f}x of plain",
            met=fraction >= THROUGHPUT_TARGET,
            details={"cache_all_tokens_per_s": speed["cache_all"], "clock": clock_name()},
            note=f"cache-all runs at {speed['cache_all'] / speed['plain']:.2f}x of plain",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Child entry point: one variant, its report as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--size", choices=tuple(SETTINGS), default="full")
    parser.add_argument("--fraction", type=int, default=1)
    parser.add_argument("--values-out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report, values = measure(args.variant, args.size, args.fraction)
    if args.values_out is not None and values is not None:
        np.save(args.values_out, values)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
