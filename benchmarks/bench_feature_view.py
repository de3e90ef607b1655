"""FeatureView next-feature click latency, measured in the kernel (issue 26).

As in ``bench_widgets``: a click changes the synced ``feature`` trait and the observer
assigns the new state synchronously, so the time of ``view.feature = i`` is the kernel's
share. The SAE's top-k table, its activation table and its logit weights fill on the first
(warm-up) feature; each click after that is a slice, one pass over the k contexts and a
histogram of one cached column. Target: median < 50 ms.
"""

from __future__ import annotations

import sys

import torch

from benchmarks.bench_widgets import TARGET_MS, _Case, measure
from benchmarks.results import Row
from explorer.features import SparseAutoencoder
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.views import FeatureView

BENCHMARK = "FeatureView latency"
SIZES = {"tiny": (16, 64, 20, 3), "small": (64, 512, 200, 20), "full": (128, 1024, 400, 50)}


def case(size: str) -> _Case:
    d_model, d_sae, n_examples, _ = SIZES[size]
    cfg = TransformerConfig(n_layers=2, d_model=d_model, n_heads=4, d_mlp=4 * d_model,
                            d_vocab=256, n_ctx=64, seed=0)  # fmt: skip
    model = zoo.transformer(cfg, name=f"toy-2L-d{d_model}")
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=d_model, d_sae=d_sae, k=16)
    tokens = torch.randint(0, 256, (n_examples, 64), generator=torch.Generator().manual_seed(0))
    view = FeatureView(model, tokens, sae=sae, n=8)

    def next_feature(i: int) -> None:
        view.feature = (i * 7) % d_sae

    name = f"next feature: {d_sae}-feature SAE on d{d_model}, {n_examples}x64 tokens"
    return _Case(name, view, next_feature)


def run(size: str = "full") -> list[Row]:
    torch.set_num_threads(1)
    the_case = case(size)
    numbers = measure(the_case, SIZES[size][3])
    return [
        Row(
            BENCHMARK,
            the_case.name,
            "ms",
            numbers["median_ms"],
            target=f"median < {TARGET_MS:g} ms",
            met=numbers["median_ms"] < TARGET_MS,
            details={k: v for k, v in numbers.items() if k != "median_ms"},
            note="kernel side: trait change to new state (one thread)",
        )
    ]


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "small"):
        print(f"{row.case}: median {row.ours:.1f} ms, p95 {row.details['p95_ms']:.1f} ms")
