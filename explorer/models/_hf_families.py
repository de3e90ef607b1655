"""What transformer-lens's converters leave out, for the families explorer converts.

Gemma 2 and 3 configs read by architecture (transformer-lens looks its own up by Hub name),
the biases a Llama-style config can switch on (its converters leave them at zero), and
``Unconvertible``: what explorer knows transformer-lens cannot compute. ``_hf_convert``
uses them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Unconvertible"]


def _get(config: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        value = getattr(config, n, None)
        if value is not None:
            return value
    return default


class Unconvertible(NotImplementedError):
    """A model explorer knows it cannot convert to transformer-lens exactly; the message
    says what (a rotary scaling, a sliding window, a gate bias, ...)."""


def _gemma2(config: Any, family: str, n_ctx: int, strict: bool) -> dict[str, Any]:
    """Gemma 2 and 3 in transformer-lens's terms (its own configs for them are looked up by
    Hub name; these are read from the config, by architecture): norms before and after each
    sublayer, the query scale, soft caps, sliding layers; Gemma 3 adds query/key norms
    and a rotary base for its sliding layers."""
    types = list(_get(config, "layer_types", default=[]) or [])
    attn_types = ["local" if t == "sliding_attention" else "global" for t in types]
    window = _get(config, "sliding_window")
    out: dict[str, Any] = {
        "use_normalization_before_and_after": True,
        "attn_scale": float(_get(config, "query_pre_attn_scalar", default=256)) ** 0.5,
        "attn_scores_soft_cap": float(_get(config, "attn_logit_softcapping", default=-1.0)),
        "output_logits_soft_cap": float(_get(config, "final_logit_softcapping", default=-1.0)),
    }
    if "local" in attn_types and window is not None:
        # set even for a window past n_ctx: Gemma 3's sliding layers have their own rotary base
        out.update(use_local_attn=True, window_size=min(int(window), n_ctx), attn_types=attn_types)
    if family == "Gemma 3":
        params = dict(_get(config, "rope_parameters", default={}) or {})
        full = params.get("full_attention", {}) or {}
        local = params.get("sliding_attention", {}) or {}
        for kind, p in (("full", full), ("sliding", local)):
            scaling = p.get("rope_type", "default")
            if scaling != "default" and strict:
                raise Unconvertible(
                    f"its {kind}-attention rotary scaling {scaling!r} has no transformer-lens "
                    "equivalent (converted: default)"
                )
        out.update(
            use_qk_norm=True,
            rotary_base=float(full.get("rope_theta", 1e6)),
            rotary_base_local=float(local.get("rope_theta", 1e4)),
        )
    return out


def _gated_biases(hf_model: nn.Module, cfg: Any, state: dict[str, torch.Tensor]) -> None:
    """The biases a Llama-style config can switch on (``attention_bias``, ``mlp_bias``),
    which transformer-lens's converters leave at zero: copied into ``state``. A gate bias
    has no place in transformer-lens's gated MLP (``W_gate`` has no bias): refused."""
    layers = hf_model.model.layers  # type: ignore[attr-defined, union-attr]
    for i, layer in enumerate(layers):
        attn, mlp = layer.self_attn, layer.mlp
        for proj, name in (("q_proj", "b_Q"), ("k_proj", "b_K"), ("v_proj", "b_V")):
            bias = getattr(getattr(attn, proj, None), "bias", None)
            if bias is None:
                continue
            key = f"blocks.{i}.attn.{name}"
            key = key if key in state else f"blocks.{i}.attn._{name}"
            state[key] = bias.detach().reshape(state[key].shape).to(state[key].dtype)
        for module, key in (
            (getattr(attn, "o_proj", None), f"blocks.{i}.attn.b_O"),
            (getattr(mlp, "up_proj", None), f"blocks.{i}.mlp.b_in"),
            (getattr(mlp, "down_proj", None), f"blocks.{i}.mlp.b_out"),
        ):
            bias = getattr(module, "bias", None)
            if bias is not None:
                state[key] = bias.detach().to(state[key].dtype)
        gate = getattr(getattr(mlp, "gate_proj", None), "bias", None)
        if gate is not None and bool(gate.detach().abs().max() > 0):
            raise Unconvertible(
                "its MLP gate has a bias (mlp_bias=True), which transformer-lens's gated MLP "
                "has no place for"
            )
