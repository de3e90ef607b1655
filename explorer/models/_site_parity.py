"""The parity of a handle that runs the Hugging Face model itself (the nnsight backend).

Its logits are Hugging Face's own, so what can be wrong is where each hook is read: the
analyses assume the residual stream adds up (``resid_pre + attn_out = resid_mid``,
``resid_mid + mlp_out = resid_post``; ``resid_pre + attn_out + mlp_out = resid_post`` for
parallel blocks) and that the final norm and unembedding of the last ``resid_post`` give
the logits (``resid_to_logits``). ``site_parity`` runs one pass on the fixed parity input
and reports the largest violation of these, as a ``Parity`` judged by the same tolerance
per dtype as a conversion; a block with norms after its sublayers (Gemma 2, OLMo 2) or a
logit soft cap shows here.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from explorer.models._hf_convert import PARITY_TOKENS, PARITY_TOLERANCE, Parity

__all__ = ["site_parity"]


@torch.no_grad()
def site_parity(handle: Any) -> Parity:
    """Largest violation of the residual-stream identities on ``handle`` (one pass)."""
    n = min(PARITY_TOKENS, int(handle.n_ctx))
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, int(handle.d_vocab), (1, n), generator=gen)
    pad = handle._pad_id()
    if pad is not None:  # the parity input is not a padded batch
        tokens[tokens == pad] = (pad + 1) % int(handle.d_vocab)
    kinds = ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post")
    names = [
        f"blocks.{layer}.hook_{kind}"
        for layer in range(handle.n_layers)
        for kind in kinds
        if f"blocks.{layer}.hook_{kind}" in handle.hook_names
    ]
    # the load's own check: outside the handle's byte budget, pass count and trace log
    budget, spent = handle.max_saved_bytes, handle.spent.snapshot()
    handle.max_saved_bytes = None
    try:
        logits, cache = handle.cache_pass(tokens, names=names)
    finally:
        handle.max_saved_bytes = budget
        handle.spent.forward, handle.spent.backward, handle.spent.examples = spent
        handle.saved_log.clear()
    gaps = []
    for layer in range(handle.n_layers):
        act = {k: cache.get(f"blocks.{layer}.hook_{k}") for k in kinds}
        act = {k: None if v is None else v.float() for k, v in act.items()}
        if act["resid_mid"] is not None:
            gaps.append(act["resid_pre"] + act["attn_out"] - act["resid_mid"])
            gaps.append(act["resid_mid"] + act["mlp_out"] - act["resid_post"])
        else:
            gaps.append(act["resid_pre"] + act["attn_out"] + act["mlp_out"] - act["resid_post"])
    last = cache[f"blocks.{handle.n_layers - 1}.hook_resid_post"]
    logits = logits.float()
    gaps.append(handle.resid_to_logits(last).float() - logits)
    diff = max(float(g.abs().max()) for g in gaps)
    scale = max(1.0, float(logits.abs().max()), float(last.float().abs().max()))
    dtype = str(handle.dtype).removeprefix("torch.")
    tolerance = PARITY_TOLERANCE.get(dtype, 1e-2) * scale
    return Parity(diff, n, dtype, math.isfinite(diff) and diff <= tolerance, tolerance)
