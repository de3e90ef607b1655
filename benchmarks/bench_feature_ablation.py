"""Feature ablation sweeps: ``ablation_sweep`` over every feature of an SAE vs a loop of
single-feature ``ablate`` calls (issue 26).

Both splice the SAE in with its error term kept and zero one feature at a time; they must
agree to 1e-5 per feature and example (the benchmark raises if not). The sweep stacks one
copy of the batch per feature (as many per pass as the token budget allows) and scores a
feature that is silent on the batch without a pass (zeroing it changes nothing); the loop
pays a clean pass, a pass to the SAE's hook and a spliced pass per feature. Target: 10x.
"""

from __future__ import annotations

import torch

from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import Feature, ablate, ablation_sweep, metrics
from explorer.features import SparseAutoencoder
from explorer.models import zoo
from explorer.models.config import TransformerConfig

BENCHMARK = "feature ablation sweep"
TOLERANCE = 1e-5
TARGET_X = 10.0
SIZES = {  # d_model, d_sae, k, batch, positions
    "tiny": (16, 32, 4, 4, 8),
    "small": (32, 128, 8, 8, 16),
    "full": (64, 512, 16, 16, 32),
}


def case(size: str):
    d_model, d_sae, k, batch, n_pos = SIZES[size]
    cfg = TransformerConfig(n_layers=2, d_model=d_model, n_heads=4, d_mlp=4 * d_model,
                            d_vocab=64, n_ctx=n_pos, seed=0)  # fmt: skip
    model = zoo.transformer(cfg, name=f"toy-2L-d{d_model}")
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=d_model, d_sae=d_sae, k=k)
    tokens = torch.randint(0, 64, (batch, n_pos), generator=torch.Generator().manual_seed(0))
    metric = metrics.logit_diff(1, 2)
    return model, sae, tokens, metric


def loop(model, sae, tokens, metric) -> torch.Tensor:
    """``[feature, batch]``: one ``ablate`` call per feature."""
    return torch.stack(
        [
            ablate(model, tokens, units=Feature(sae, i), metric=metric).after
            for i in range(sae.d_sae)
        ]
    )


def run(size: str = "full") -> list[Row]:
    repeats = {"tiny": 1, "small": 1, "full": 3}[size]
    model, sae, tokens, metric = case(size)
    units = [Feature(sae, i) for i in range(sae.d_sae)]
    times, results = best_of(
        {
            "ours": lambda: ablation_sweep(model, tokens, metric=metric, units=units),
            "naive": lambda: loop(model, sae, tokens, metric),
        },
        repeats,
    )
    diff = float((results["ours"].after_per_example - results["naive"]).abs().max())
    if not diff <= TOLERANCE:
        raise AssertionError(f"the feature sweep differs from the loop by {diff:.2e}")
    d_model, d_sae, k, batch, n_pos = SIZES[size]
    name = f"{sae.architecture} SAE k={k}, {d_sae} features at {sae.hook}, batch {batch}x{n_pos}"
    details = {"max_abs_diff": diff, "features": d_sae, "repeats": repeats}
    return [
        faster(BENCHMARK, name, times["ours"], times["naive"], target_x=TARGET_X, details=details)
    ]
