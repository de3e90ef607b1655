"""``sae_quality``: how well an SAE or transcoder does on held-out inputs.

The figures SAELens reports (``sae_lens.evals``), computed through the handle's hooks so any
backend works:

- ``explained_variance`` (and ``fvu = 1 - explained_variance``): of the activation the SAE
  reconstructs, by SAELens's own ``ExplainedVarianceCalculator`` (pooled over samples:
  ``1 - E|x - x_hat|^2 / Var(x)``); ``mse`` the mean squared error per sample;
- ``l0``: active features per sample (positions are samples; padding is left out), on average;
- ``dead_fraction``: features that never fire on these inputs; ``dense_fraction``: features
  firing on more than ``dense_above`` of the samples; ``frequency`` (a tensor, not printed)
  each feature's firing rate;
- for a token model, next-token cross-entropy: ``ce_loss`` (the model), ``ce_loss_spliced``
  (the reconstruction replacing the activation, no error term), ``ce_loss_ablated`` (the
  activation zeroed) and ``ce_loss_recovered = (ablated - spliced) / (ablated - clean)``,
  SAELens's ``ce_loss_score``: 1 when the SAE loses nothing, 0 when it is as bad as zeroing.

Measure on inputs the SAE was not trained on.

>>> from explorer.models import zoo
>>> from explorer.features import SparseAutoencoder
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> q = sae_quality(model, torch.randint(0, 10, (4, 6)), sae)
>>> q.l0, q.n_samples, list(q.to_dataframe().columns)[:4]
(4.0, 24, ['sae', 'hook', 'n_samples', 'explained_variance'])
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F

from explorer._display import RecordShown
from explorer.features.sae import SparseAutoencoder
from explorer.features.splice import check_hooks_fit, splice_hooks

__all__ = ["SAEQuality", "sae_quality"]


@dataclasses.dataclass(frozen=True, repr=False)
class SAEQuality(RecordShown):
    """An SAE's quality on held-out inputs (see the module docstring for each figure).
    Cross-entropy figures are NaN for a model that does not predict tokens."""

    sae: str
    hook: str
    n_samples: int
    explained_variance: float
    fvu: float
    mse: float
    l0: float
    dead_fraction: float
    dense_fraction: float
    ce_loss: float
    ce_loss_spliced: float
    ce_loss_ablated: float
    ce_loss_recovered: float
    frequency: torch.Tensor = dataclasses.field(repr=False)


def sae_quality(
    model: Any,
    inputs: Any,
    sae: SparseAutoencoder,
    *,
    batch_size: int = 16,
    dense_above: float = 0.1,
) -> SAEQuality:
    """``sae``'s quality on ``inputs`` (held out from its training), in passes of
    ``batch_size`` inputs. ``dense_above``: the firing rate above which a feature is dense."""
    # lazy: sae_lens.evals (seconds to import) holds the explained-variance calculator
    from sae_lens.evals import ExplainedVarianceCalculator

    check_hooks_fit(model, sae)
    inputs = model.check_inputs(inputs)
    if not 0 < dense_above < 1:
        raise ValueError(f"dense_above must be a firing rate between 0 and 1, got {dense_above}")
    if len(inputs) == 0:
        raise ValueError("sae_quality needs at least one input")
    tokens = model.kind == "tokens"
    variance = ExplainedVarianceCalculator()
    fired = torch.zeros(sae.d_sae, dtype=torch.float64)
    active = 0.0
    n = 0
    sq_error = 0.0
    ce = {"clean": 0.0, "spliced": 0.0, "ablated": 0.0}
    n_predicted = 0
    zero = [(sae.hook_out, lambda act, hook: torch.zeros_like(act))]
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            logits, cache = model.cache_pass(chunk, sae.hooks)
            acts = sae.encode(cache[sae.hook]).float()
            recon = sae.decode(acts).float()
            flat_acts = acts.reshape(-1, sae.d_sae)
            target = cache[sae.hook_out].float().reshape(len(flat_acts), -1)
            recon = recon.reshape(len(flat_acts), -1)
            mask = model.attention_mask(chunk) if tokens else None
            if mask is not None:  # padding is no sample
                real = mask.bool().flatten().to(flat_acts.device)
                flat_acts, target, recon = flat_acts[real], target[real], recon[real]
            variance.add_batch(recon, target)
            sq_error += float((recon - target).pow(2).sum())
            on = flat_acts != 0
            fired += on.sum(0).double().cpu()
            active += float(on.sum())
            n += len(flat_acts)
            if tokens:
                valid = _predicted(model, chunk)
                n_predicted += int(valid.sum())
                ce["clean"] += _ce_sum(logits, chunk, valid)
                spliced = model.run_with_hooks(chunk, splice_hooks(sae, keep_error=False))
                ce["spliced"] += _ce_sum(spliced, chunk, valid)
                ce["ablated"] += _ce_sum(model.run_with_hooks(chunk, zero), chunk, valid)
    frequency = (fired / n).float()
    explained = float(variance.compute())
    nan = float("nan")
    losses = {k: v / n_predicted for k, v in ce.items()} if n_predicted else dict.fromkeys(ce, nan)
    gap = losses["ablated"] - losses["clean"]
    recovered = (
        (losses["ablated"] - losses["spliced"]) / gap if gap and not math.isnan(gap) else nan
    )
    return SAEQuality(
        sae=sae.name,
        hook=sae.hook,
        n_samples=n,
        explained_variance=explained,
        fvu=1.0 - explained,
        mse=sq_error / n,
        l0=active / n,
        dead_fraction=float((frequency == 0).float().mean()),
        dense_fraction=float((frequency > dense_above).float().mean()),
        ce_loss=losses["clean"],
        ce_loss_spliced=losses["spliced"],
        ce_loss_ablated=losses["ablated"],
        ce_loss_recovered=recovered,
        frequency=frequency,
    )


def _predicted(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, pos - 1]``: which next-token predictions count (both tokens real)."""
    mask = model.attention_mask(tokens)
    if mask is None:
        return torch.ones(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool)
    mask = mask.bool()
    return mask[:, 1:] & mask[:, :-1]


def _ce_sum(logits: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> float:
    losses = F.cross_entropy(
        logits[:, :-1].float().flatten(0, 1), tokens[:, 1:].flatten(), reduction="none"
    )
    return float(losses[valid.flatten().to(losses.device)].sum())
