"""Neuron-to-logit weights: what a transformer neuron writes to each output token, directly.

A neuron ``n`` of layer ``l`` adds ``post_n * W_out[l, n]`` to the residual stream. Read
through the final norm and the unembedding, one unit of its activation moves the logits by

    w_out' = W_out[l, n] - mean(W_out[l, n])      (LayerNorm only: the norm centres)
    logit_weights[n] = (w_out' * w_ln) @ W_U / s

where ``w_ln`` is the final norm's weight (absent for ``LNPre``/``RMSPre`` and models
without a norm) and ``s`` is the norm's scale. The scale depends on the input: with
``inputs`` given, ``s`` is the mean of ``ln_final.hook_scale`` over their positions (the
typical size of the final residual stream); without, ``s = 1`` and the values are the
weights transformer-lens gives after ``fold_ln=True, center_writing_weights=True``
(``W_out @ W_U`` of the processed model). Neither includes ``b_U``, which does not depend
on the neuron. An SAE feature writes ``sae.decoder[i]`` the same way
(``neuron_logit_weights(units=[Feature(sae, i), ...])``: ``W_dec @ W_U`` through the final
norm), for an SAE that writes the residual stream (``WRITES_RESIDUAL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.feature_units import Feature, all_features
from explorer.analysis.units import Neuron, parse_unit, units_of_type
from explorer.features import SparseAutoencoder, check_hooks_fit
from explorer.models.handle import ModelHandle

__all__ = [
    "NeuronLogitWeights",
    "neuron_logit_weights",
]


@dataclass(frozen=True, repr=False)
class NeuronLogitWeights(Shown):
    """``values[neuron, vocab]``: the direct logit effect of one unit of each neuron."""

    values: Float[torch.Tensor, "neuron vocab"]
    neurons: tuple[Any, ...]  # Neuron units, or SAE features (feature_logit_weights)
    scale: float
    token_text: tuple[str, ...]

    @renamed_arguments(index="unit", k="n")
    def top(
        self, unit: int | Neuron | str = 0, n: int = 5, *, bottom: bool = False
    ) -> list[tuple[str, float]]:
        """The ``n`` tokens (their text) that neuron ``unit`` promotes most (or suppresses
        most: ``bottom``); ``unit`` is a ``Neuron`` of the result, its text, or its row."""
        index = unit if isinstance(unit, int) else self._row(unit)
        row = -self.values[index] if bottom else self.values[index]
        idx = row.topk(min(n, row.numel())).indices.tolist()
        return [(self.token_text[i], float(self.values[index, i])) for i in idx]

    def _row(self, unit: Any) -> int:
        neuron = unit if unit in self.neurons else parse_unit(unit)
        if neuron not in self.neurons:
            have = ", ".join(map(str, self.neurons[:8])) + (" ..." if len(self.neurons) > 8 else "")
            raise ValueError(f"{neuron} is not in this result: it has {have}")
        return self.neurons.index(neuron)  # type: ignore[arg-type]

    @renamed_arguments(k="n")
    def to_dataframe(self, n: int = 10) -> Any:
        """One row per neuron, side (``top`` / ``bottom``) and rank: the ``token`` and its
        ``weight`` (the ``n`` strongest tokens each side)."""
        k = n
        pd = pandas()
        rows = []
        for i, neuron in enumerate(self.neurons):
            for side in ("top", "bottom"):
                for rank, (token, value) in enumerate(self.top(i, k, bottom=side == "bottom")):
                    rows.append(
                        {
                            "neuron": str(neuron),
                            "side": side,
                            "rank": rank,
                            "token": token,
                            "weight": value,
                        }
                    )
        return pd.DataFrame.from_records(rows)

    def _summary(self) -> str:
        first = ", ".join(f"{t!r} {v:+.3g}" for t, v in self.top(0, 3))
        return (
            f"{len(self.neurons)} neurons x {self.values.shape[1]} tokens, "
            f"scale {self.scale:.4g}; {self.neurons[0]} promotes {first}"
        )

    def _table(self) -> tuple:
        rows = [
            (
                str(n),
                ", ".join(t for t, _ in self.top(i, 5)),
                ", ".join(t for t, _ in self.top(i, 5, bottom=True)),
            )
            for i, n in enumerate(self.neurons[:MAX_ROWS])
        ]
        return (
            "Neuron-to-logit weights (through the final norm)",
            ("neuron", "promotes", "suppresses"),
            rows,
            f"final-norm scale {self.scale:.4g}",
        )


@torch.no_grad()
def mean_final_scale(model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"]) -> float:
    """The mean final-norm scale ``ln_final.hook_scale`` over every position of ``inputs``."""
    if model.final_norm()[0] is None:
        return 1.0
    _, cache = model.cache_pass(inputs, names=["ln_final.hook_scale"])
    return float(cache["ln_final.hook_scale"].mean())


@torch.no_grad()
def neuron_logit_weights(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"] | None = None,
    *,
    units: Neuron | Feature | str | Sequence[Neuron | Feature | str] | SparseAutoencoder,
) -> NeuronLogitWeights:
    """The direct effect of each neuron in ``units`` on every logit (see the module docstring).
    ``units`` may be SAE features instead (or an SAE: all its features): ``.top(feature)``
    lists the tokens one unit of the feature promotes, ``bottom=True`` those it suppresses.

    >>> from explorer.models import zoo
    >>> from explorer.models.config import TransformerConfig
    >>> m = zoo.transformer(TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, d_vocab=10, n_ctx=8))
    >>> w = neuron_logit_weights(m, units=["neuron 0.3", "L0N5"])
    >>> tuple(w.values.shape), w.scale
    ((2, 10), 1.0)
    """
    scale = 1.0 if inputs is None else mean_final_scale(model, model.check_inputs(inputs))
    if isinstance(units, SparseAutoencoder):
        units = all_features(units)
    features = [units] if isinstance(units, Feature) else None
    if isinstance(units, (list, tuple)) and units and all(isinstance(u, Feature) for u in units):
        features = list(units)
    if features is not None:
        rows = torch.cat([feature_decoder(model, f.sae)[f.feature][None] for f in features])
        values = through_final_norm(model, rows) / scale
        return NeuronLogitWeights(values.float(), tuple(features), scale, model.token_strings())
    if not model.is_transformer or not model.has_mlp:
        raise ValueError(f"{model.name} has no transformer MLP neurons")
    neurons = units_of_type(model, units=units, cls=Neuron, what="units")
    rows = torch.stack([model.weight("mlp_out", n.layer)[n.neuron] for n in neurons])
    values = through_final_norm(model, rows) / scale
    return NeuronLogitWeights(values.float(), tuple(neurons), scale, model.token_strings())


def through_final_norm(
    model: ModelHandle, rows: Float[torch.Tensor, "unit d_model"]
) -> Float[torch.Tensor, "unit vocab"]:
    """What writing ``rows`` into the final residual stream does to the logits, per unit of
    each (before the norm's scale): centred for LayerNorm, times the norm's weight, @ W_U."""
    kind, weight, _ = model.final_norm()
    if kind in ("LN", "LNPre"):
        rows = rows - rows.mean(-1, keepdim=True)
    if weight is not None:
        rows = rows * weight
    return rows @ model.weight("unembed")


WRITES_RESIDUAL = (
    "hook_embed",
    "hook_pos_embed",
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_mlp_out",
    "hook_attn_out",
)


def feature_decoder(
    model: ModelHandle, sae: SparseAutoencoder
) -> Float[torch.Tensor, "feature d_model"]:
    """``sae.decoder``: what each feature writes into the residual stream; a ValueError
    when the SAE writes a hook that is not added to the stream as it is."""
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: a feature's logit effect needs a transformer")
    check_hooks_fit(model, sae)
    if not sae.hook_out.endswith(WRITES_RESIDUAL):
        raise ValueError(
            f"{sae.name} writes {sae.hook_out!r}, which is not added to the residual stream "
            f"as it is: direct logit effects need an SAE writing one of {WRITES_RESIDUAL}"
        )
    return sae.decoder.float()
