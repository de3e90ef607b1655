"""Dataset-wide top-k neuron examples: streamed (``top_k_examples``) vs cache-everything.

Three variants run over the same synthetic tokens through a small transformer with an MLP:
- ``plain``: forward passes only (the throughput reference);
- ``streamed``: ``top_k_examples``, which keeps only the running top-k per neuron;
- ``cache_all``: what a user writes without it: cache ``hook_post`` for every batch,
  concatenate, then ``topk`` over the whole dataset.

Throughput is timed in this process, the variants interleaved and the best of the repeats
kept (``timing.best_of``), over the first ``timing_sequences`` of the data (a throughput
is per token; interleaving matters more than length on a shared machine). On one torch
thread the clock is this process's CPU time: on a machine shared with other jobs, wall
time mostly measures their load (the subprocesses' wall-clock rates are in the JSON).

CPU tensors are invisible to ``tracemalloc``, so memory is the process's resident set:
each variant runs over the whole data set in a fresh subprocess
(``python -m benchmarks.bench_topk --variant ...``) and reports its peak RSS above the RSS
after set-up (``getrusage`` max RSS, or an RSS sampling thread when the set-up itself left
a higher peak). ``streamed`` also runs on an eighth of the data: its memory must not grow
with the data set. The ``tiny`` size runs everything in-process, for the smoke test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from benchmarks.results import Row
from benchmarks.timing import best_of, clock_name

BENCHMARK = "top-k neuron examples"
VARIANTS = ("plain", "streamed", "cache_all")
THROUGHPUT_TARGET = 0.7


@dataclass(frozen=True)
class Setting:
    n_layers: int
    d_model: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    n_sequences: int
    batch_size: int
    k: int
    timing_sequences: int
    n_heads: int = 4
    act_fn: str = "relu"
    normalization: str | None = None
    layer: int | None = None  # the layer read (default: the last); passes stop after it
    model_ctx: int | None = None  # the model's context when longer than the sequences

    @property
    def n_tokens(self) -> int:
        return self.n_sequences * self.n_ctx

    @property
    def read_layer(self) -> int:
        return self.n_layers - 1 if self.layer is None else self.layer

    def describe(self) -> str:
        if self.layer is None:
            return f"{self.n_layers}L d{self.d_model} transformer"
        return (
            f"layer {self.layer} of a {self.n_layers}L d{self.d_model} transformer, "
            f"stop_at_layer={self.layer + 1}"
        )


SETTINGS = {
    "tiny": Setting(1, 16, 32, 50, 16, 64, 16, 4, 64),
    "small": Setting(1, 128, 512, 256, 64, 2048, 256, 10, 1024),  # 131k tokens
    "full": Setting(1, 128, 512, 256, 64, 16384, 256, 10, 2048),  # 1,048,576 tokens
    # GPT-2-small-sized (bench_gpt2): layer 0's 3,072 neurons; 65,536 of the 1M tokens
    "gpt2-tiny": Setting(2, 32, 64, 100, 16, 32, 8, 3, 32, 4, "gelu", "LN", 0),
    "gpt2": Setting(12, 768, 3072, 50257, 128, 512, 32, 10, 64, 12, "gelu", "LN", 0, 1024),
}


def _model(s: Setting):
    from explorer.models import TransformerConfig, zoo

    cfg = TransformerConfig(
        n_layers=s.n_layers,
        d_model=s.d_model,
        n_heads=s.n_heads,
        d_mlp=s.d_mlp,
        d_vocab=s.d_vocab,
        n_ctx=s.model_ctx or s.n_ctx,
        act_fn=s.act_fn,
        normalization=s.normalization,
        seed=0,
    )
    return zoo.transformer(cfg, name="topk-bench")


def _tokens(s: Setting) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, s.d_vocab, (s.n_sequences, s.n_ctx), generator=g)


class _PeakRSS:
    """Samples this process's RSS in a thread; ``peak`` is the highest seen."""

    def __init__(self, interval: float = 0.002) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux


@torch.no_grad()
def _plain(model, tokens: torch.Tensor, s: Setting) -> None:
    for batch in tokens.split(s.batch_size):
        model.model(batch, stop_at_layer=s.read_layer + 1)


@torch.no_grad()
def _cache_all(model, tokens: torch.Tensor, s: Setting, hook: str) -> torch.Tensor:
    chunks = []
    for batch in tokens.split(s.batch_size):
        _, cache = model.model.run_with_cache(
            batch, names_filter=hook, stop_at_layer=s.read_layer + 1
        )
        chunks.append(cache[hook])
    acts = torch.cat(chunks)  # [n_sequences, pos, d_mlp]: the whole dataset
    del chunks
    return acts.flatten(0, 1).topk(s.k, dim=0).values.T.contiguous()  # [unit, k]


def _streamed(model, tokens: torch.Tensor, s: Setting):
    from explorer.analysis import top_k_examples

    return top_k_examples(model, tokens, layer=s.read_layer, n=s.k, batch_size=s.batch_size)


def measure(variant: str, size: str, fraction: int = 1) -> tuple[dict[str, Any], np.ndarray | None]:
    """Run one variant in this process over ``1 / fraction`` of the data: timing, RSS
    growth and the top-k values."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    s = SETTINGS[size]
    model, tokens = _model(s), _tokens(s)[: SETTINGS[size].n_sequences // fraction]
    n_tokens = tokens.numel()
    hook = model.hook_name("post", s.read_layer)
    _plain(model, tokens[: s.batch_size], s)  # warm up the allocator and kernels
    rss_start, max_rss_start = psutil.Process().memory_info().rss, _max_rss_bytes()
    values: np.ndarray | None = None
    extra: dict[str, Any] = {}
    with _PeakRSS() as sampler:
        start = time.perf_counter()
        if variant == "plain":
            _plain(model, tokens, s)
        elif variant == "streamed":
            top = _streamed(model, tokens, s)
            values = top.values.numpy()
            extra["state_bytes"] = sum(
                t.element_size() * t.nelement() for t in (top.values, top.example, top.position)
            )
        else:
            values = _cache_all(model, tokens, s, hook).numpy()
        seconds = time.perf_counter() - start
    max_rss_end = _max_rss_bytes()
    # getrusage is exact when the run set a new peak; otherwise fall back on sampling.
    peak = max_rss_end if max_rss_end > max_rss_start else sampler.peak
    report = {
        "variant": variant,
        "seconds": seconds,
        "tokens": n_tokens,
        "tokens_per_s": n_tokens / seconds,
        "peak_growth_mb": max(0, peak - rss_start) / 2**20,
        "threads": torch.get_num_threads(),
        **extra,
    }
    return report, values


def _in_subprocess(
    variant: str, size: str, threads: int, fraction: int = 1
) -> tuple[dict[str, Any], np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        values_path = Path(folder) / "values.npy"
        command = [
            sys.executable,
            "-m",
            "benchmarks.bench_topk",
            "--variant",
            variant,
            "--size",
            size,
            "--threads",
            str(threads),
            "--values-out",
            str(values_path),
            "--fraction",
            str(fraction),
        ]
        root = Path(__file__).resolve().parents[1]  # where `benchmarks` is importable
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(
                f"top-k {variant} subprocess failed ({done.returncode}): {done.stderr[-2000:]}"
            )
        report = json.loads(done.stdout.strip().splitlines()[-1])
        values = np.load(values_path) if values_path.exists() else np.zeros(0)
    return report, values


def _throughput(size: str) -> dict[str, float]:
    """Tokens per second of each variant, interleaved, best of the repeats."""
    s = SETTINGS[size]
    model, tokens = _model(s), _tokens(s)[: s.timing_sequences]
    hook = model.hook_name("post", s.read_layer)
    _plain(model, tokens[: s.batch_size], s)  # warm up the allocator and kernels
    repeats = 1 if size.endswith("tiny") else 3
    contenders = {
        "plain": lambda: _plain(model, tokens, s),
        "streamed": lambda: _streamed(model, tokens, s),
        "cache_all": lambda: _cache_all(model, tokens, s, hook),
    }
    times, _ = best_of(contenders, repeats)
    return {name: tokens.numel() / seconds for name, seconds in times.items()}


def run(size: str = "full") -> list[Row]:
    return compare(size)


def compare(size: str) -> list[Row]:
    """The memory and throughput rows for setting ``size`` (a key of ``SETTINGS``)."""
    s = SETTINGS[size]
    threads = torch.get_num_threads()
    reports, values = {}, {}
    tiny = size.endswith("tiny")
    for variant in VARIANTS:
        if tiny:
            reports[variant], values[variant] = measure(variant, size)
        else:
            reports[variant], values[variant] = _in_subprocess(variant, size, threads)
    if tiny:
        eighth, _ = measure("streamed", size, fraction=8)
    else:
        eighth, _ = _in_subprocess("streamed", size, threads, fraction=8)
    streamed, cache_all, plain = reports["streamed"], reports["cache_all"], reports["plain"]
    diff = float(np.abs(values["streamed"] - values["cache_all"]).max())
    if not diff <= 1e-5:
        raise AssertionError(f"streamed top-k values differ from cache-all by {diff:.2e}")
    speed = _throughput(size)
    batch_mb = s.batch_size * s.n_ctx * s.d_mlp * 4 / 2**20
    dataset_mb = s.n_tokens * s.d_mlp * 4 / 2**20
    extra_mb = streamed["peak_growth_mb"] - plain["peak_growth_mb"]
    case = (
        f"{s.n_tokens:,} tokens, {s.d_mlp} neurons, k={s.k} "
        f"({s.describe()}, batch {s.batch_size}x{s.n_ctx})"
    )
    details = {
        "plain_peak_growth_mb": plain["peak_growth_mb"],
        "streamed_extra_over_plain_mb": extra_mb,
        "streamed_peak_growth_on_an_eighth_mb": eighth["peak_growth_mb"],
        "one_batch_of_activations_mb": batch_mb,
        "dataset_activations_mb": dataset_mb,
        "topk_state_bytes": streamed.get("state_bytes"),
        "max_abs_diff": diff,
        "isolated_subprocesses": not tiny,
        "seconds_in_subprocesses": {v: r["seconds"] for v, r in reports.items()},
    }
    memory_ok = extra_mb <= 4 * batch_mb
    ratio_memory = cache_all["peak_growth_mb"] / max(streamed["peak_growth_mb"], 1e-9)
    fraction = speed["streamed"] / speed["plain"]
    timed = s.timing_sequences * s.n_ctx
    return [
        Row(
            BENCHMARK,
            "peak memory (RSS growth): streamed vs cache-all, " + case,
            "MiB",
            streamed["peak_growth_mb"],
            cache_all["peak_growth_mb"],
            ratio_memory,
            target="O(k x units): <= 4 batches over plain fwd",
            met=memory_ok,
            details=details,
            note=(
                f"plain forward passes alone grow RSS by {plain['peak_growth_mb']:.0f} MiB; "
                f"streamed on 1/8 of the tokens: {eighth['peak_growth_mb']:.0f} MiB; "
                f"the top-k state is {streamed.get('state_bytes', 0) / 1024:.0f} KiB; "
                f"the dataset's activations are {dataset_mb:.0f} MiB"
            ),
        ),
        Row(
            BENCHMARK,
            f"throughput: streamed vs plain forward passes ({timed:,} tokens, interleaved)",
            "tokens/s",
            speed["streamed"],
            speed["plain"],
            fraction,
            target=f">= {THROUGHPUT_TARGET:.2f}x of plain",
            met=fraction >= THROUGHPUT_TARGET,
            details={
                "cache_all_tokens_per_s": speed["cache_all"],
                "timed_tokens": timed,
                "clock": clock_name(),
                "wall_tokens_per_s_in_subprocesses": {
                    v: r["tokens_per_s"] for v, r in reports.items()
                },
            },
            note=(
                f"cache-all runs at {speed['cache_all'] / speed['plain']:.2f}x of plain; "
                + (
                    "CPU seconds of this process (one thread): others' load does not count"
                    if clock_name() == "cpu"
                    else "wall-clock seconds"
                )
            ),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Child entry point: run one variant and print its report as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--size", choices=tuple(SETTINGS), default="full")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--values-out", type=Path, default=None)
    parser.add_argument("--fraction", type=int, default=1, help="run on 1/N of the data")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report, values = measure(args.variant, args.size, args.fraction)
    if args.values_out is not None and values is not None:
        np.save(args.values_out, values)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
