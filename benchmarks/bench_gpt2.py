"""GPT-2-small scale on one CPU: a 124M-parameter model with random weights.

The model is a ``HookedTransformer`` built from a config (no download): 12 layers x 12
heads, d_model 768, d_mlp 3,072, vocabulary 50,257, context 1,024, GELU, LayerNorm
(transformer-lens keeps W_E and W_U apart, so it holds 163M numbers). Timing does not
depend on the weights. Rows:

- ``AttentionView`` on 1,024 tokens: the whole first message (thumbnails of all 144 heads,
  one head's 256-row window, scores) against every pattern sent as float16, and a click:
  the CPU time to slice and encode a head's window against encoding its whole pattern.
- ``ablation_sweep`` over all 144 heads of a 16-token prompt against transformer-lens's
  own loop (a clean ``run_with_hooks`` pass, then one per head zeroing its ``hook_z``),
  equal to 1e-4 (float32 through 12 layers), and against the exact floor
  (``bench_ablation.floor_seconds``).
- Streamed top-k over layer 0's 3,072 neurons against cache-everything
  (``bench_topk.compare("gpt2")``, each variant in a fresh subprocess): on 65,536 tokens,
  because 1M tokens through even layer 0 takes about an hour of one CPU thread; the
  arithmetic for 1M tokens is in the row's note and ``docs/benchmarks.md``.

Peak memory is the process's resident set (CPU tensors are invisible to ``tracemalloc``):
the growth above the RSS before the step, sampled every 2 ms (``bench_topk._PeakRSS``).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch

from benchmarks import bench_ablation, bench_topk
from benchmarks.bench_payload import _view_state_bytes
from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import ablation_sweep, metrics
from explorer.analysis.units import all_heads
from explorer.models import ModelHandle, TransformerConfig, zoo

BENCHMARK = "GPT-2-small scale"
TOLERANCE = 1e-4
TARGET_MB = 30.0
CLICK_TARGET_MS = 50.0
MB = 2**20

GPT2_SMALL = TransformerConfig(
    n_layers=12,
    d_model=768,
    n_heads=12,
    d_mlp=3072,
    d_vocab=50257,
    n_ctx=1024,
    act_fn="gelu",
    normalization="LN",
    seed=0,
)
TINY = TransformerConfig(
    n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=100, n_ctx=128, act_fn="gelu",
    normalization="LN", seed=0,
)  # fmt: skip
# the tiny view shows 128 tokens: at 64, every pattern (64 KB as float16) is about the size
# of the widget's own module code, which the first message carries too


@dataclasses.dataclass(frozen=True)
class _Size:
    label: str
    config: TransformerConfig
    view_tokens: int
    prompt: tuple[int, int]  # batch, positions of the sweep's prompt
    sweep_layers: tuple[int, ...] | None  # None: every layer
    topk: str  # key of bench_topk.SETTINGS
    repeats: int


SIZES = {
    "tiny": _Size("2L d32 GPT-2-shaped", TINY, 128, (1, 8), None, "gpt2-tiny", 1),
    "small": _Size("GPT-2-small", GPT2_SMALL, 1024, (1, 16), (0, 11), "gpt2", 1),
    "full": _Size("GPT-2-small", GPT2_SMALL, 1024, (1, 16), None, "gpt2", 1),
}


def model(size: str) -> ModelHandle:
    return zoo.transformer(SIZES[size].config, name="gpt2-small-random")


def _peak_growth_mb(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), MiB of resident-set growth at its peak)``."""
    rss = psutil.Process().memory_info().rss
    with bench_topk._PeakRSS() as sampler:
        result = fn()
    return result, max(0, sampler.peak - rss) / MB


def _cpu_ms(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1e3


def attention_view_rows(handle: ModelHandle, s: _Size) -> list[Row]:
    from explorer.views import AttentionView
    from explorer.views.serialize import encode, payload_bytes

    n = s.view_tokens
    tokens = torch.randint(
        0, handle.d_vocab or 2, (1, n), generator=torch.Generator().manual_seed(0)
    )
    start = time.process_time()
    view, build_mb = _peak_growth_mb(
        lambda: AttentionView(handle, tokens, scores=("previous_token",))
    )
    build_s = time.process_time() - start
    first_mb = _view_state_bytes(view) / MB
    n_layers, n_heads = handle.n_layers, handle.n_heads or 0
    everything_mb = n_layers * n_heads * n * n * 2 / MB  # every pattern as float16
    picks = [(layer, (3 * layer + 1) % n_heads) for layer in range(n_layers)]
    clicks, whole = [], []
    for layer, head in picks:

        def click(layer: int = layer, head: int = head) -> None:
            with view.hold_trait_notifications():
                view.layer, view.head = layer, head

        clicks.append(_cpu_ms(click))
        whole.append(_cpu_ms(lambda: encode(view.head_pattern())))
    scroll = []
    for query_start in (n // 2, n - view.window, 0):
        scroll.append(_cpu_ms(lambda q=query_start: setattr(view, "query_start", q)))
    median, reference = statistics.median(clicks), statistics.median(whole)
    window_kib = payload_bytes(view.pattern) / 1024
    case = f"{s.label} AttentionView, {n_layers * n_heads} heads on {n:,} tokens"
    memory = (
        f"building it grows RSS by {build_mb:.0f} MiB (it keeps every pattern of the prompt "
        f"as float32: {n_layers * n_heads * n * n * 4 / MB:.0f} MiB, for instant clicks)"
    )
    return [
        Row(
            BENCHMARK,
            f"{case}: whole first message vs every pattern as float16",
            "MiB",
            first_mb,
            everything_mb,
            everything_mb / first_mb,
            target=f"< {TARGET_MB:g} MiB",
            met=first_mb < TARGET_MB,
            details={"build_cpu_s": build_s, "build_peak_rss_growth_mb": build_mb},
            note=f"windowed: {view.window} query rows of one head; built in {build_s:.1f} "
            f"CPU s; {memory}",
        ),
        Row(
            BENCHMARK,
            f"{case}: a click (slice + encode a {view.window}-row window) vs encoding the "
            "whole pattern",
            "ms",
            median,
            reference,
            reference / median,
            target=f"median < {CLICK_TARGET_MS:g} ms",
            met=median < CLICK_TARGET_MS,
            details={
                "click_cpu_ms": clicks,
                "scroll_cpu_ms": scroll,
                "window_payload_kib": window_kib,
                "peak_rss_growth_mb": build_mb,
            },
            note=f"median of {len(clicks)} clicks (one head per layer), CPU ms; scrolling "
            f"the window: {statistics.median(scroll):.1f} ms; {memory}",
        ),
    ]


def sweep_rows(handle: ModelHandle, s: _Size) -> list[Row]:
    batch, pos = s.prompt
    g = torch.Generator().manual_seed(1)
    d_vocab = handle.d_vocab or 2
    tokens = torch.randint(0, d_vocab, (batch, pos), generator=g)
    metric = metrics.logit_diff(
        torch.randint(0, d_vocab, (batch,), generator=g),
        torch.randint(0, d_vocab, (batch,), generator=g),
    )
    layers = s.sweep_layers or range(handle.n_layers)
    units = [h for layer in layers for h in all_heads(handle, layer=layer)]
    peaks: dict[str, float] = {}

    def measured(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            result, peak = _peak_growth_mb(fn)
            peaks[name] = max(peaks.get(name, 0.0), peak)
            return result

        return run

    times, results = best_of(
        {
            "ours": measured(
                "ours", lambda: ablation_sweep(handle, tokens, metric=metric, units=units)
            ),
            "naive": measured(
                "naive", lambda: bench_ablation.naive_sweep(handle, tokens, metric, units)
            ),
        },
        s.repeats,
    )
    ours, (before, after) = results["ours"], results["naive"]
    diff = max(
        float((ours.after_per_example - after).abs().max()),
        abs(ours.before - float(before.mean())),
    )
    if not diff <= TOLERANCE:
        raise AssertionError(f"GPT-2 head sweep differs from the loop by {diff:.2e}")
    case = bench_ablation._Case(
        f"{len(units)} heads, {batch}x{pos} tokens", handle, tokens, metric, units
    )
    floor = bench_ablation.floor_seconds(case, s.repeats)
    assert floor is not None
    name = f"{s.label}, {case.name}"
    memory = {"ours_peak_rss_growth_mb": peaks["ours"], "naive_peak_rss_growth_mb": peaks["naive"]}
    sweep = faster(
        BENCHMARK,
        f"{name}: ablation_sweep vs transformer-lens run_with_hooks loop",
        times["ours"],
        times["naive"],
        details={
            "max_abs_diff": diff,
            "units": len(units),
            "naive_forward_passes": len(units) + 1,
            "floor_s": floor,
            "naive_over_floor_x": times["naive"] / floor,
            **memory,
        },
        note=f"peak RSS growth: ours {peaks['ours']:.0f} MiB, the loop {peaks['naive']:.0f} "
        f"MiB; {bench_ablation.floor_note(floor, times['naive'])}",
    )
    floor_row = bench_ablation.floor_row(name, times["ours"], floor, details=memory)
    floor_row = dataclasses.replace(
        floor_row,
        benchmark=BENCHMARK,
        note=f"{floor_row.note}; peak RSS growth of ours {peaks['ours']:.0f} MiB",
    )
    return [sweep, floor_row]


def topk_rows(s: _Size) -> list[Row]:
    setting = bench_topk.SETTINGS[s.topk]
    rows = bench_topk.compare(s.topk)
    full = 2**20  # the 1M tokens asked for
    cache_gib = full * setting.d_mlp * 4 / 2**30
    minutes = full / rows[1].ours / 60  # streamed, layer 0 only, at the measured rate
    per_token = 2 * (setting.n_layers * 12 * setting.d_model**2 + setting.d_model * setting.d_vocab)
    note = (
        f"at 1,048,576 tokens cache-everything would hold {cache_gib:.1f} GiB of layer-0 "
        f"activations (not run); streamed keeps the same "
        f"{rows[0].details['topk_state_bytes'] / 1024:.0f} KiB of state and would take about "
        f"{minutes:.0f} CPU minutes for layer 0 at the measured rate; every layer and the "
        f"unembedding are about {per_token * full:.1e} FLOPs (docs/benchmarks.md)"
    )
    return [
        dataclasses.replace(
            row,
            benchmark=BENCHMARK,
            case=f"top-k, {row.case}",
            details={
                **row.details,
                "one_million_tokens_cache_all_gib": cache_gib,
                "one_million_tokens_layer0_streamed_cpu_minutes": minutes,
                "one_million_tokens_all_layers_flops": per_token * full,
            },
            note=f"{row.note}; {note}",
        )
        for row in rows
    ]


def run(size: str = "full") -> list[Row]:
    s = SIZES[size]
    handle = model(size)
    return [*attention_view_rows(handle, s), *sweep_rows(handle, s), *topk_rows(s)]
