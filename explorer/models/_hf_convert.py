"""Hugging Face configs and weights in transformer-lens's form, and the parity check.

``tl_config`` reads a ``HookedTransformerConfig`` from a local Hugging Face config (never
fetched); ``converted`` builds the transformer-lens model with transformer-lens's per-family
weight converters, unprocessed (no LayerNorm folding, no centering); ``check_parity`` runs
both models on a fixed input. ``hf`` (loading) and the nnsight backend both read from here.
"""

from __future__ import annotations

import copy
import math
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from explorer.models._hf_families import Unconvertible, _gated_biases, _gemma2, _get

# architecture -> (family shown to users, whether it is an encoder)
FAMILIES: dict[str, tuple[str, bool]] = {
    "GPT2LMHeadModel": ("GPT-2", False),
    "GPTNeoXForCausalLM": ("GPT-NeoX", False),
    "LlamaForCausalLM": ("Llama", False),
    "Qwen2ForCausalLM": ("Qwen2", False),
    "GemmaForCausalLM": ("Gemma", False),
    "Gemma2ForCausalLM": ("Gemma 2", False),
    "Gemma3ForCausalLM": ("Gemma 3", False),
    "MistralForCausalLM": ("Mistral", False),
    "BertForMaskedLM": ("BERT", True),
}
# Families whose prompts transformer-lens starts with BOS (its default_prepend_bos); Pythia and
# Qwen2 were trained without one. BERT's tokenizer adds [CLS] ... [SEP] itself.
PREPEND_BOS = {"GPT-2", "Llama", "Mistral", "Gemma", "Gemma 2", "Gemma 3"}
# Rotary tables are allocated for the whole context in every layer; Llama-3's 131k positions
# would take gigabytes. transformer-lens caps its own Llama/Mistral configs the same way.
MAX_CTX = 2048
PARITY_TOKENS = 12


# Largest |logit difference| a conversion may show, relative to max(1, largest |logit|), by the
# dtype both models run in: a few units of the dtype's rounding of the logits (bfloat16 keeps
# 8 bits: 7.8e-3), more for float32 where sums over thousands of terms reorder.
PARITY_TOLERANCE = {"float64": 1e-6, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}


@dataclass(frozen=True)
class Parity:
    """How closely the converted model reproduces the Hugging Face logits at load, both run
    in the model's own dtype (``PARITY_TOLERANCE`` says how close is the same model).

    >>> Parity(2.4e-07, 12, "float32")
    parity 2.4e-07 (float32, 12 tokens)
    """

    max_abs_diff: float
    n_tokens: int
    dtype: str
    ok: bool = True  # within the dtype's tolerance: the converted model is the same model
    tolerance: float | None = None  # the largest difference ``ok`` allowed

    def __repr__(self) -> str:
        flag = "" if self.ok else ", MISMATCH"
        return f"parity {self.max_abs_diff:.1e} ({self.dtype}, {self.n_tokens} tokens{flag})"


# What transformer-lens raises for an architecture it cannot convert (its readers assume fields).
NOT_CONVERTED = (
    NotImplementedError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    AssertionError,
    RuntimeError,  # its converters assume shapes (a rotary_dim past head_dim)
)


def tl_converted(hf_model: nn.Module, arch: str) -> nn.Module:
    """Architectures outside ``FAMILIES`` that transformer-lens knows (OPT, GPT-J, GPT-Neo,
    Bloom, Qwen3, ...): its own config reader on the model's config, written to a temporary
    folder so that nothing is looked up on the Hub, then its weight converter."""
    # lazy: only an architecture outside FAMILIES goes through transformer-lens's own reader
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import (
        convert_hf_model_config,
        get_pretrained_state_dict,
    )

    config = copy.deepcopy(hf_model.config)
    config.architectures = [arch]
    with tempfile.TemporaryDirectory(prefix="explorer-") as tmp:
        folder = str(Path(tmp) / "config")  # a path with no family name for TL to match
        config.save_pretrained(folder)
        cfg_dict = convert_hf_model_config(folder)
        if cfg_dict.get("attention_dir", "causal") != "causal":
            raise NotImplementedError(f"{arch} is an encoder; explorer converts BERT only")
        cfg_dict.update(
            n_ctx=min(int(cfg_dict["n_ctx"]), MAX_CTX),
            tokenizer_name=None,  # the tokenizer is ours to load, never fetched
            model_name=arch,
            init_weights=False,
            device="cpu",
            dtype=next(hf_model.parameters()).dtype,
            # hook_k / hook_v with one entry per query head, as explorer's own families
            ungroup_grouped_query_attention=cfg_dict.get("n_key_value_heads") is not None,
        )
        cfg = HookedTransformerConfig(**cfg_dict)
        with torch.no_grad():
            return unprocessed(cfg, get_pretrained_state_dict(folder, cfg, hf_model=hf_model))


# ---------------------------------------------------------------------- configs
def _rope(config: Any, strict: bool = True) -> dict[str, Any]:
    """Rotary settings (transformers 5 keeps them in ``rope_parameters``; 4.x at top level).
    ``strict=False`` describes a scaling transformer-lens lacks as plain rotary (the nnsight
    backend runs Hugging Face's own rotary and reads only the shapes)."""
    params = dict(_get(config, "rope_parameters", "rope_scaling", default={}) or {})
    kind = params.get("rope_type", params.get("type", "default"))
    out: dict[str, Any] = {
        "positional_embedding_type": "rotary",
        "rotary_adjacent_pairs": False,
        "rotary_base": float(params.get("rope_theta", _get(config, "rope_theta", default=1e4))),
    }
    if kind == "llama3":
        out.update(
            use_NTK_by_parts_rope=True,
            NTK_by_parts_factor=float(params["factor"]),
            NTK_by_parts_low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            NTK_by_parts_high_freq_factor=float(params.get("high_freq_factor", 4.0)),
            NTK_original_ctx_len=int(params.get("original_max_position_embeddings", 8192)),
        )
    elif kind != "default" and strict:
        raise Unconvertible(
            f"its rotary scaling {kind!r} has no transformer-lens equivalent (converted: "
            "default, llama3)"
        )
    return out


def tl_config(
    config: Any, arch: str, dtype: torch.dtype = torch.float32, strict: bool = True
) -> Any:
    """A ``HookedTransformerConfig`` from a Hugging Face config, read locally (never fetched),
    for weights of ``dtype`` (the Hugging Face model's own). What transformer-lens cannot
    compute raises ``Unconvertible``, unless ``strict=False`` (the nnsight backend, which
    runs the model as it is and reads only its shapes from here)."""
    # lazy: a config is converted once per Hugging Face model opened, never at import
    from transformer_lens import HookedTransformerConfig

    family, encoder = FAMILIES[arch]
    d_model = int(_get(config, "hidden_size", "n_embd"))
    n_heads = int(_get(config, "num_attention_heads", "n_head"))
    d_head = int(_get(config, "head_dim", default=d_model // n_heads))
    n_ctx = int(_get(config, "max_position_embeddings", "n_positions", "n_ctx"))
    base: dict[str, Any] = {
        "d_model": d_model,
        "n_heads": n_heads,
        "d_head": d_head,
        "n_layers": int(_get(config, "num_hidden_layers", "n_layer")),
        "n_ctx": min(n_ctx, MAX_CTX),
        "d_vocab": int(config.vocab_size),
        "act_fn": _get(config, "hidden_activation", "hidden_act", "activation_function"),
        "eps": float(_get(config, "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon")),
        "original_architecture": arch,
        "model_name": family,
        "default_prepend_bos": False,
        "init_weights": False,
        "device": "cpu",
        "dtype": dtype,
    }
    if family == "GPT-2":
        base.update(
            d_mlp=int(_get(config, "n_inner", default=4 * d_model)),
            normalization_type="LN",
            use_attn_scale=bool(_get(config, "scale_attn_weights", default=True)),
            scale_attn_by_inverse_layer_idx=bool(config.scale_attn_by_inverse_layer_idx),
        )
    elif family == "GPT-NeoX":
        params = dict(_get(config, "rope_parameters", default={}) or {})
        pct = params.get("partial_rotary_factor", _get(config, "rotary_pct", default=1.0))
        base.update(
            d_mlp=int(config.intermediate_size),
            normalization_type="LN",
            parallel_attn_mlp=bool(_get(config, "use_parallel_residual", default=True)),
            **_rope(config, strict),
            rotary_dim=round(float(pct) * d_head),
        )
    elif family == "BERT":
        base.update(
            d_mlp=int(config.intermediate_size),
            act_fn="gelu",
            attention_dir="bidirectional",
            normalization_type="LN",
        )
    else:  # Llama, Qwen2, Mistral, Gemma: RMSNorm, gated MLP, rotary, grouped-query attention
        n_kv = int(_get(config, "num_key_value_heads", default=n_heads))
        base.update(
            d_mlp=int(config.intermediate_size),
            normalization_type="RMS",
            final_rms=True,
            gated_mlp=True,
            **_rope(config, strict),
            rotary_dim=d_head,
            n_key_value_heads=None if (family == "Llama" and n_kv == n_heads) else n_kv,
            # hook_k / hook_v with one entry per query head, so every head can be patched
            ungroup_grouped_query_attention=True,
        )
        window = _get(config, "sliding_window")
        if family == "Mistral" and window is not None and int(window) < base["n_ctx"]:
            base.update(
                use_local_attn=True,
                window_size=int(window),
                attn_types=["local"] * base["n_layers"],
            )
        if family in ("Gemma 2", "Gemma 3"):
            base.update(_gemma2(config, family, base["n_ctx"], strict))
        if family == "Qwen2" and _get(config, "use_sliding_window", default=False) and strict:
            raise Unconvertible(
                "Qwen2 with use_sliding_window=True slides its window on some layers only "
                "(max_window_layers), which transformer-lens's local attention cannot express"
            )
    return HookedTransformerConfig(**base)


# --------------------------------------------------------------------- weights
def converter(arch: str) -> Callable[[Any, Any], dict[str, torch.Tensor]]:
    # lazy: the weight converters are needed only while a Hugging Face model's weights load
    from transformer_lens.pretrained import weight_conversions as wc

    return {
        "GPT2LMHeadModel": wc.convert_gpt2_weights,
        "GPTNeoXForCausalLM": wc.convert_neox_weights,
        "LlamaForCausalLM": wc.convert_llama_weights,
        "Qwen2ForCausalLM": wc.convert_qwen2_weights,
        "GemmaForCausalLM": wc.convert_gemma_weights,
        "Gemma2ForCausalLM": wc.convert_gemma_weights,  # transformer-lens's own choice
        "Gemma3ForCausalLM": wc.convert_gemma_weights,
        "MistralForCausalLM": wc.convert_mistral_weights,
        "BertForMaskedLM": wc.convert_bert_weights,
    }[arch]


def _bert_view(hf_model: nn.Module, d_model: int) -> Any:
    """``BertForMaskedLM`` as the converter expects ``BertForPreTraining``: it has no pooler
    and no next-sentence head, which masked-LM logits never use, so zeros stand in."""
    bert = hf_model.bert  # type: ignore[attr-defined]
    pooler = bert.pooler or SimpleNamespace(dense=_zeros_linear(d_model, d_model))
    return SimpleNamespace(
        bert=SimpleNamespace(embeddings=bert.embeddings, encoder=bert.encoder, pooler=pooler),
        cls=SimpleNamespace(
            predictions=hf_model.cls.predictions,  # type: ignore[attr-defined]
            seq_relationship=_zeros_linear(d_model, 2),
        ),
    )


def _zeros_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def converted(hf_model: nn.Module, cfg: Any, arch: str) -> nn.Module:
    source = _bert_view(hf_model, cfg.d_model) if arch == "BertForMaskedLM" else hf_model
    with torch.no_grad():
        state = converter(arch)(source, cfg)
        if cfg.gated_mlp:
            _gated_biases(hf_model, cfg, state)
        return unprocessed(cfg, state)


def unprocessed(cfg: Any, state: dict[str, torch.Tensor]) -> nn.Module:
    """A ``HookedTransformer`` (``HookedEncoder`` for a bidirectional config) holding ``state``
    as it is: no LayerNorm folding, no centering, so hooks read what Hugging Face computes."""
    # lazy: the converted weights go into a transformer-lens model only after conversion
    from transformer_lens import HookedEncoder, HookedTransformer

    state = {k: v.detach().to(cfg.dtype) for k, v in state.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # both move in 4.x; we pin 3.9
        if cfg.attention_dir == "bidirectional":
            model: nn.Module = HookedEncoder(cfg, move_to_device=False)
            model.load_state_dict(state, strict=False)  # no pooler/NSP weights: parity checks
        else:
            model = HookedTransformer(cfg, move_to_device=False)
            model.load_and_process_state_dict(  # type: ignore[operator]
                state,
                fold_ln=False,
                center_writing_weights=False,
                center_unembed=False,
                fold_value_biases=False,
            )
    return model.eval()


def check_parity(
    hf_model: nn.Module, model: nn.Module, *, encoder: bool, warn: bool = True
) -> Parity:
    """Max |logit difference| between the Hugging Face model and ours on a fixed input,
    both in the Hugging Face model's dtype, judged by ``PARITY_TOLERANCE``."""
    d_vocab = int(model.cfg.d_vocab)  # type: ignore[attr-defined]
    n = min(PARITY_TOKENS, int(model.cfg.n_ctx))  # type: ignore[attr-defined]
    tokens = torch.randint(0, d_vocab, (1, n), generator=torch.Generator().manual_seed(0))
    dtype = str(next(hf_model.parameters()).dtype).removeprefix("torch.")
    device = next(hf_model.parameters()).device
    with torch.no_grad():
        ours = model(tokens).float().cpu()
        theirs = (
            hf_model(input_ids=tokens.to(device), attention_mask=torch.ones_like(tokens).to(device))
            .logits.float()
            .cpu()
        )
    diff = float((ours - theirs).abs().max())
    tolerance = PARITY_TOLERANCE.get(dtype, 1e-2) * max(1.0, float(theirs.abs().max()))
    ok = math.isfinite(diff) and diff <= tolerance
    if warn and not ok:
        warnings.warn(
            f"the converted {type(hf_model).__name__} differs from the Hugging Face model by up "
            f"to {diff:.3g} in logits: analyses may not describe the original model",
            stacklevel=3,
        )
    return Parity(diff, n, dtype, ok, tolerance)
