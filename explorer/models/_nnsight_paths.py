"""Where each transformer-lens hook lives in a Hugging Face model, family by family.

``PATHS[architecture]`` names the modules of one family (GPT-2, GPT-NeoX, Llama and the
families that share Llama's layout); ``_BLOCK_SITES`` says, for each per-block hook, which
module's input or output it is and whether an edit there reaches the rest of the pass. The
nnsight backend (``explorer.models._nnsight``) builds its hook table from both.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class _Paths:
    """Module paths of one family, relative to the model (``layers``) or to a block."""

    layers: str
    final_norm: str
    attn: str
    o_proj: str
    ln2: str | None  # the norm before the MLP (None: parallel attention and MLP)
    mlp_in: str
    down: str
    embed: str = "model.embed_tokens"
    gate_up: str | None = None  # gated MLPs: the linear half (``hook_pre_linear``)
    pos_embed: str | None = None  # learned positions (GPT-2)
    # queries, keys, values: three Linear outputs, or one fused output and its layout
    qkv: tuple[str, str, str] = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
    fused_qkv: str | None = None  # "gpt2": [q | k | v]; "neox": per head [q_h | k_h | v_h]


_LLAMA = _Paths(
    "model.layers",
    "model.norm",
    "self_attn",
    "self_attn.o_proj",
    "post_attention_layernorm",
    "mlp.gate_proj",
    "mlp.down_proj",
    gate_up="mlp.up_proj",
)
PATHS: dict[str, _Paths] = {
    "GPT2LMHeadModel": _Paths(
        "transformer.h",
        "transformer.ln_f",
        "attn",
        "attn.c_proj",
        "ln_2",
        "mlp.c_fc",
        "mlp.c_proj",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        qkv=("attn.c_attn",) * 3,
        fused_qkv="gpt2",
    ),
    "GPTNeoXForCausalLM": _Paths(
        "gpt_neox.layers",
        "gpt_neox.final_layer_norm",
        "attention",
        "attention.dense",
        None,
        "mlp.dense_h_to_4h",
        "mlp.dense_4h_to_h",
        embed="gpt_neox.embed_in",
        qkv=("attention.query_key_value",) * 3,
        fused_qkv="neox",
    ),
    "LlamaForCausalLM": _LLAMA,
    "Qwen2ForCausalLM": _LLAMA,
    "GemmaForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
}

# per-block hook -> (order within the block's forward, module key, "input"/"output", writable)
_BLOCK_SITES: dict[str, tuple[int, str, str, bool]] = {
    "hook_resid_pre": (0, "", "input", True),
    "attn.hook_q": (1, "q", "output", True),
    "attn.hook_k": (2, "k", "output", True),
    "attn.hook_v": (3, "v", "output", True),
    "attn.hook_z": (4, "o_proj", "input", True),
    "hook_attn_out": (5, "o_proj", "output", True),
    "attn.hook_pattern": (6, "attn", "weights", False),
    "hook_resid_mid": (7, "ln2", "input", False),
    "mlp.hook_pre": (8, "mlp_in", "output", True),
    "mlp.hook_pre_linear": (9, "gate_up", "output", True),
    "mlp.hook_post": (10, "down", "input", True),
    "hook_mlp_out": (11, "down", "output", True),
    "hook_resid_post": (12, "", "output", True),
}

# the modules that make a model "laid out as Llama" (any architecture, found by its modules)
_LLAMA_MODULES = (
    "model.embed_tokens",
    "model.norm",
    "model.layers.0.input_layernorm",
    "model.layers.0.post_attention_layernorm",
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.0.self_attn.o_proj",
    "model.layers.0.mlp.gate_proj",
    "model.layers.0.mlp.up_proj",
    "model.layers.0.mlp.down_proj",
)


# laid out as Phi-1/2: attention and MLP in parallel on one norm, a dense output projection
_PHI = _Paths(
    "model.layers",
    "model.final_layernorm",
    "self_attn",
    "self_attn.dense",
    None,
    "mlp.fc1",
    "mlp.fc2",
)
_PHI_MODULES = (
    "model.embed_tokens",
    "model.final_layernorm",
    "model.layers.0.input_layernorm",
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.0.self_attn.dense",
    "model.layers.0.mlp.fc1",
    "model.layers.0.mlp.fc2",
)


def paths_of(hf_model: nn.Module) -> tuple[_Paths, str] | None:
    """The module paths of ``hf_model`` and the architecture whose layout it has: its own
    when mapped, Llama's for any model whose modules are named as Llama's (StableLM, ...),
    Phi's for Phi-1/2's parallel blocks (read with GPT-NeoX's config reader;
    whether the residual stream then adds up at those sites is ``site_parity``'s to say),
    else None."""
    arch = type(hf_model).__name__
    if arch in PATHS:
        return PATHS[arch], arch
    names = {name for name, _ in hf_model.named_modules()}
    if all(m in names for m in _LLAMA_MODULES):
        return _LLAMA, "LlamaForCausalLM"
    if all(m in names for m in _PHI_MODULES):  # its shapes read as GPT-NeoX's (parallel)
        return _PHI, "GPTNeoXForCausalLM"
    return None
