"""What an SAE feature does to the logits directly: its logit weights and its DLA.

A feature ``i`` writes ``activation * W_dec[i]`` into the residual stream (an SAE on a
residual-stream hook, on ``hook_mlp_out`` / ``hook_attn_out``, or a transcoder writing the
MLP's output). Read through the final norm and the unembedding (``neuron_logits``'s
convention) that is ``feature_logit_weights``: ``W_dec @ W_U``, the tokens one unit of the
feature promotes and suppresses. ``feature_logit_attribution`` is each feature's direct
effect on the logit of a ``target`` on real inputs: its activation at the position times
that weight, divided by the run's own final-norm scale (``direct_logit_attribution``'s
rules; the result is its ``LogitAttribution``, columns ``F0, F1, ...``).

>>> from explorer.features import SparseAutoencoder
>>> from explorer.models import zoo
>>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> tuple(feature_logit_weights(m, sae=sae).values.shape)
(16, 10)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Int

from explorer.analysis.feature_units import Feature, all_features, encode_batch
from explorer.analysis.logit_attribution import (
    LogitAttribution,
    TokenSpec,
    describe_direction,
    norm_direction,
    resolve_positions,
    resolve_tokens,
)
from explorer.analysis.neuron_logits import (
    NeuronLogitWeights,
    mean_final_scale,
    through_final_norm,
)
from explorer.features import SparseAutoencoder, check_hooks_fit
from explorer.models.handle import ModelHandle

__all__ = ["feature_logit_attribution", "feature_logit_weights"]

WRITES_RESIDUAL = (
    "hook_embed",
    "hook_pos_embed",
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_mlp_out",
    "hook_attn_out",
)


def _decoder(model: ModelHandle, sae: SparseAutoencoder) -> torch.Tensor:
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: a feature's logit effect needs a transformer")
    check_hooks_fit(model, sae)
    if not sae.hook_out.endswith(WRITES_RESIDUAL):
        raise ValueError(
            f"{sae.name} writes {sae.hook_out!r}, which is not added to the residual stream "
            f"as it is: direct logit effects need an SAE writing one of {WRITES_RESIDUAL}"
        )
    return sae.decoder.float()


@torch.no_grad()
def feature_logit_weights(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"] | None = None,
    *,
    sae: SparseAutoencoder,
    units: Sequence[Feature] | None = None,
) -> NeuronLogitWeights:
    """The direct effect of one unit of each feature (all of ``sae``'s, or ``units``) on
    every logit: ``W_dec @ W_U`` through the final norm (scale 1, or the mean final-norm
    scale on ``inputs``). ``.top(Feature(sae, i))`` lists the tokens it promotes,
    ``.top(..., bottom=True)`` those it suppresses."""
    decoder = _decoder(model, sae)
    units = list(units) if units is not None else all_features(sae)
    for unit in units:
        if unit.sae is not sae:
            raise ValueError(f"{unit} is not a feature of {sae.name}")
    scale = 1.0 if inputs is None else mean_final_scale(model, model.check_inputs(inputs))
    rows = decoder[[u.feature for u in units]]
    values = through_final_norm(model, rows) / scale
    return NeuronLogitWeights(values.float(), tuple(units), scale, model.token_strings())


@torch.no_grad()
def feature_logit_attribution(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    sae: SparseAutoencoder,
    target: TokenSpec,
    against: TokenSpec | None = None,
    position: int | Sequence[int] | torch.Tensor = -1,
) -> LogitAttribution:
    """Each feature's direct effect on the logit of ``target`` (minus ``against``) at
    ``position``: ``values[b, i] = f_i * (W_dec[i] . read_b)`` with ``read_b`` the unembedding
    direction through the final norm of example ``b``'s own run."""
    decoder = _decoder(model, sae)
    tokens = model.check_inputs(inputs)
    batch, n_pos = tokens.shape
    positions = resolve_positions(position, batch, n_pos)
    target_ids = resolve_tokens(model, spec=target, batch=batch, what="target")
    against_ids = (
        None
        if against is None
        else resolve_tokens(model, spec=against, batch=batch, what="against")
    )
    rows = torch.arange(batch)
    names = ["ln_final.hook_scale"] if model.final_norm()[0] is not None else []
    logits, cache = model.cache_pass(tokens, names=names)
    acts = encode_batch(model, tokens, sae)[rows, positions]  # [b, d_sae]
    w_u = model.weight("unembed")
    direction = w_u[:, target_ids].T
    last = logits[rows, positions]
    logit = last.gather(-1, target_ids[:, None])[:, 0]
    if against_ids is not None:
        direction = direction - w_u[:, against_ids].T
        logit = logit - last.gather(-1, against_ids[:, None])[:, 0]
    read = norm_direction(model, direction=direction)
    if names:
        read = read / cache[names[0]][rows, positions]
    values = acts * (read.float() @ decoder.T)
    return LogitAttribution(
        values.float(),
        tuple(f"F{i}" for i in range(sae.d_sae)),
        "feature",
        describe_direction(model, target=target_ids, against=against_ids),
        logit.float(),
        positions,
        model.n_layers,
    )
