"""Click-to-update latency of the views, measured in the kernel: trait change to new state.

A click in the page changes a synced trait; the view's observer runs analysis and assigns
the new payloads. That observer runs synchronously inside the trait assignment, so the
time of ``setattr(view, trait, value)`` (plus a custom message for actions) is the
kernel's share of the latency; the comm round trip and drawing add a few ms in the page.
Each case cycles through different values so no call hits the "already shown" shortcut.
Payload bytes are the binary buffers of the view's state after the change.

Target (docs/DESIGN.md): median < 50 ms on the tutorial models. Run with
``python -m benchmarks.bench_widgets [tiny|small|full]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from ipywidgets.widgets.widget import _remove_buffers

from benchmarks.results import Row
from benchmarks.timing import percentile
from explorer.analysis import metrics
from explorer.data import load_mnist, modular_arithmetic, repeated_tokens
from explorer.models import zoo
from explorer.views import AttentionView, InterventionPanel, NeuronView, PatchingView

BENCHMARK = "widget latency"
TARGET_MS = 50.0


@dataclass(frozen=True)
class _Case:
    name: str
    view: Any
    change: Callable[[int], None]  # the i-th click


def _payload_bytes(view: Any) -> int:
    _, _, buffers = _remove_buffers(view.get_state())
    return sum(len(b) for b in buffers)


def _induction_cases(n_prompts: int) -> list[_Case]:
    model = zoo.attention_only_transformer(n_layers=2, d_model=64, n_heads=4, d_vocab=64, n_ctx=64)
    prompts = repeated_tokens(n_prompts, 20, 64, seed=1)
    heads = [(layer, head) for layer in range(2) for head in range(4)]
    attention = AttentionView(model, prompts)
    panel = InterventionPanel(model, prompts, metric=metrics.repeated_half_loss(prompts))
    kinds = ("zero", "mean", "resample")
    clean = prompts[:8]
    corrupted = clean.clone()
    corrupted[:, 1:21] = repeated_tokens(8, 20, 64, seed=2)[:, 1:21]
    patching = PatchingView(
        model, clean, corrupted=corrupted, metric=metrics.repeated_half_loss(clean), grid="head"
    )

    def click_head(i: int) -> None:
        layer, head = heads[(i + 1) % len(heads)]
        attention.layer, attention.head = layer, head

    def ablate_head(i: int) -> None:  # one click: a new head, or a new ablation kind
        if i % 2:
            layer, head = heads[(i // 2) % len(heads)]
            panel.units = [f"head {layer}.{head}"]
        else:
            panel.kind = kinds[(i // 2) % 3]

    def patch_cell(i: int) -> None:
        patching.select(i % 2, (i // 2) % 4)

    return [
        _Case("induction 2L4H: AttentionView click a head", attention, click_head),
        _Case(
            f"induction 2L4H: InterventionPanel ablate a head ({n_prompts} prompts)",
            panel,
            ablate_head,
        ),
        _Case("induction 2L4H: PatchingView click a cell", patching, patch_cell),
    ]


def _long_attention_case() -> _Case:
    model = zoo.attention_only_transformer(
        n_layers=1, d_model=96, n_heads=12, d_vocab=100, n_ctx=1024, seed=0
    )
    tokens = torch.randint(1, 100, (1, 1024), generator=torch.Generator().manual_seed(0))
    view = AttentionView(model, tokens, scores=("previous_token",))

    def click(i: int) -> None:
        view.head = (i + 1) % 12
        view.query_start = 256 * (i % 4)

    return _Case("1024 tokens, 12 heads: AttentionView click a head (windowed)", view, click)


def _mnist_cases() -> list[_Case]:
    digits = load_mnist()
    mlp = zoo.mnist_mlp(hidden=(128, 64), seed=0)
    neurons = NeuronView(mlp, digits)
    panel = InterventionPanel(mlp, digits)

    def next_neuron(i: int) -> None:
        neurons.neuron = (i + 1) % 128

    def ablate_neuron(i: int) -> None:
        panel.units = [f"neuron 0.{i % 128}"]

    return [
        _Case("MNIST MLP 128-64: NeuronView next neuron (1,000 images)", neurons, next_neuron),
        _Case(
            "MNIST MLP 128-64: InterventionPanel ablate a neuron (64 images)", panel, ablate_neuron
        ),
    ]


def _grokking_case(p: int) -> _Case:
    model = zoo.modular_addition_transformer(p=p)
    data = modular_arithmetic(p=p, train_frac=0.3)
    view = NeuronView(model, data.test_tokens)

    def next_neuron(i: int) -> None:
        view.neuron = (i + 1) % 512

    return _Case(
        f"grokking p={p}: NeuronView next neuron ({len(data.test_idx):,} equations)",
        view,
        next_neuron,
    )


def cases(size: str) -> list[_Case]:
    if size == "tiny":
        return _induction_cases(8)[:1]
    out = _induction_cases(32) + _mnist_cases() + [_grokking_case(113 if size == "full" else 59)]
    if size == "full":
        out.append(_long_attention_case())
    return out


def measure(case: _Case, clicks: int) -> dict[str, float]:
    """Latencies (ms) of ``clicks`` changes after one warm-up, and the payload bytes."""
    case.change(0)  # warm-up: lazy caches (top-k tables, patching grids) fill here
    times = []
    for i in range(1, clicks + 1):
        start = time.perf_counter()
        case.change(i)
        times.append((time.perf_counter() - start) * 1e3)
        if case.view.error:
            raise AssertionError(f"{case.name}: the view reported {case.view.error!r}")
    return {
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 95),
        "clicks": clicks,
        "payload_bytes": _payload_bytes(case.view),
    }


def run(size: str = "full") -> list[Row]:
    """One row per view and model: median latency (ms) with p95 and payload in details."""
    clicks = {"tiny": 3, "small": 20, "full": 50}[size]
    torch.set_num_threads(1)
    rows = []
    for case in cases(size):
        numbers = measure(case, clicks)
        rows.append(
            Row(
                BENCHMARK,
                case.name,
                "ms",
                numbers["median_ms"],
                target=f"median < {TARGET_MS:g} ms",
                met=numbers["median_ms"] < TARGET_MS,
                details={k: v for k, v in numbers.items() if k != "median_ms"},
                note="kernel side: trait change to new state (one thread)",
            )
        )
    return rows


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "small"):
        d = row.details
        print(
            f"{row.case:75s} median {row.ours:6.1f} ms  p95 {d['p95_ms']:6.1f} ms  "
            f"payload {d['payload_bytes'] / 1024:8.1f} KiB  {'ok' if row.met else 'SLOW'}"
        )
