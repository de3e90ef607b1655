"""A spliced SAE (``explorer.features.run_spliced``, error term kept) beside SAELens's own
``HookedSAETransformer`` with ``use_error_term=True`` on the same SAE and weights.

The target is equality: logits equal to 1e-5, unedited and with one feature zeroed; a
difference above it makes the benchmark an error row. The timing row compares one spliced
pass through explorer's handle hooks with SAELens's attached-SAE pass (attach, run, reset).
"""

from __future__ import annotations

import torch

from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.features import SparseAutoencoder, run_spliced
from explorer.models import zoo
from explorer.models.config import TransformerConfig

BENCHMARK = "spliced SAE"
TOLERANCE = 1e-5


def task(size: str):
    """``(model, reference HookedSAETransformer, sae, tokens)``."""
    # lazy: sae_lens (seconds to import) only when this benchmark runs
    from sae_lens import HookedSAETransformer

    d_model, layers, batch, pos, d_sae = {
        "tiny": (16, 2, 2, 8, 64),
        "small": (64, 2, 8, 32, 512),
        "full": (128, 4, 16, 64, 2048),
    }[size]
    cfg = TransformerConfig(
        n_layers=layers, d_model=d_model, n_heads=4, d_mlp=4 * d_model, d_vocab=256, n_ctx=pos,
        seed=0, normalization="LN",
    )  # fmt: skip
    model = zoo.transformer(cfg)
    ref = HookedSAETransformer(model.model.cfg)
    ref.load_state_dict(model.model.state_dict())
    hook = f"blocks.{layers // 2}.hook_resid_pre"
    sae = SparseAutoencoder.create(hook, d_in=d_model, d_sae=d_sae, k=16, seed=0)
    tokens = torch.randint(0, 256, (batch, pos), generator=torch.Generator().manual_seed(0))
    return model, ref.eval(), sae, tokens


@torch.no_grad()
def reference(ref, sae: SparseAutoencoder, tokens: torch.Tensor, zero: int | None = None):
    """SAELens: attach with the error term, optionally zero one feature, run, detach."""
    ref.add_sae(sae.sae, use_error_term=True)
    try:
        hooks = []
        if zero is not None:
            name = next(n for n in ref.hook_dict if n.endswith("hook_sae_acts_post"))

            def ablate(act, hook):
                act = act.clone()
                act[..., zero] = 0
                return act

            hooks = [(name, ablate)]
        return ref.run_with_hooks(tokens, fwd_hooks=hooks)
    finally:
        ref.reset_saes()


def run(size: str = "full") -> list[Row]:
    repeats = {"tiny": 1, "small": 3, "full": 5}[size]
    model, ref, sae, tokens = task(size)
    with torch.no_grad():
        times, results = best_of(
            {
                "ours": lambda: run_spliced(model, tokens, sae),
                "saelens": lambda: reference(ref, sae, tokens),
            },
            repeats,
        )
        diff = float((results["ours"] - results["saelens"]).abs().max())
        edited = run_spliced(model, tokens, sae, {3: "zero"})
        diff_edit = float((edited - reference(ref, sae, tokens, zero=3)).abs().max())
        to_model = float((results["ours"] - model(tokens)).abs().max())
    worst = max(diff, diff_edit)
    if not worst <= TOLERANCE:
        raise AssertionError(f"the spliced SAE differs from HookedSAETransformer by {worst:.2e}")
    case = f"{sae.d_sae} features at {sae.hook}, batch {tokens.shape[0]} x {tokens.shape[1]} tokens"
    return [
        Row(
            BENCHMARK,
            f"max |logits - HookedSAETransformer's|, {case}",
            "abs diff",
            worst,
            target=f"<= {TOLERANCE:g}",
            met=worst <= TOLERANCE,
            details={"unedited": diff, "feature 3 zeroed": diff_edit, "vs the model": to_model},
            note="error term kept on both sides",
        ),
        faster(
            BENCHMARK,
            f"one spliced pass vs HookedSAETransformer.add_sae + run, {case}",
            times["ours"],
            times["saelens"],
            details={"repeats": repeats},
        ),
    ]
