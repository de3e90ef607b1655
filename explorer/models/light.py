"""A transformer-lens-compatible toy transformer that loads without importing transformer-lens.

Importing transformer-lens pulls in ``transformers``, ``datasets``, ``pandas`` and ``scipy``:
about 3.4 CPU seconds, two thirds of what the quickstart spends before its first widget,
and over 10 s on a busy 2-core machine. An explorer checkpoint of a small transformer
(``explorer.load("shipped:quickstart-induction")``) is therefore rebuilt as a
``LightTransformer``: the same modules, parameter and buffer names, hook names, ``cfg``
fields and forward computation as transformer-lens 3.9's ``HookedTransformer`` for the
configurations it covers (learned positions, LayerNorm or none, ReLU/GELU/SiLU MLPs or
attention only, causal attention). ``tests/models/test_light.py`` checks every hook's
activation and the logits against a ``HookedTransformer`` holding the same weights.

Whatever it does not cover (rotary positions, pretrained models, ...) is built by
transformer-lens as before; ``supports(cfg)`` says which. ``to_transformer_lens`` converts
a light model into a ``HookedTransformer`` with the same weights when one is wanted.

>>> model = build(TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8))
>>> "blocks.0.attn.hook_pattern" in model.hook_dict, model.cfg.attn_only
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explorer.models import _tl
from explorer.models.config import TransformerConfig
from explorer.models.light_hooks import HookedRoot, HookPoint

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
}


def supports(cfg: TransformerConfig) -> bool:
    """Whether ``LightTransformer`` computes exactly what transformer-lens would for ``cfg``."""
    return (
        cfg.positional_embedding == "standard"
        and cfg.normalization in ("LN", None)
        and (cfg.attn_only or cfg.act_fn in _ACTIVATIONS)
    )


# ----------------------------------------------------------------------------- config
@dataclass
class LightConfig:
    """The fields of transformer-lens's ``HookedTransformerConfig`` that explorer reads,
    with its defaults (the ones a light model cannot change are fixed)."""

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_vocab: int
    d_vocab_out: int
    n_ctx: int
    d_mlp: int | None
    act_fn: str
    attn_only: bool
    normalization_type: str | None
    seed: int | None = None
    eps: float = 1e-5
    attn_scale: float = field(init=False)
    positional_embedding_type: str = "standard"
    attention_dir: str = "causal"
    original_architecture: str | None = None
    parallel_attn_mlp: bool = False
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    use_attn_in: bool = False
    use_hook_mlp_in: bool = False
    use_hook_tokens: bool = False
    use_normalization_before_and_after: bool = False
    post_embedding_ln: bool = False
    n_key_value_heads: int | None = None
    default_prepend_bos: bool = False
    n_devices: int = 1
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    model_name: str = "custom"
    tokenizer_name: str | None = None

    def __post_init__(self) -> None:
        self.attn_scale = math.sqrt(self.d_head)


def light_config(cfg: TransformerConfig) -> LightConfig:
    return LightConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head,
        d_vocab=cfg.d_vocab, d_vocab_out=cfg.d_vocab_out or cfg.d_vocab, n_ctx=cfg.n_ctx,
        d_mlp=None if cfg.attn_only else cfg.d_mlp, act_fn=cfg.act_fn, attn_only=cfg.attn_only,
        normalization_type=cfg.normalization, seed=cfg.seed,
    )  # fmt: skip


# ------------------------------------------------------------------------------ modules
class Embed(nn.Module):
    def __init__(self, cfg: LightConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.W_E[tokens, :]


class PosEmbed(nn.Module):
    def __init__(self, cfg: LightConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None):
        if attention_mask is not None:
            raise ValueError("a light transformer takes no attention mask (no padding)")
        pos = self.W_pos[past_kv_pos_offset : tokens.size(-1) + past_kv_pos_offset, :]
        return pos.unsqueeze(0).expand(tokens.size(0), -1, -1).clone()


class LayerNorm(nn.Module):
    def __init__(self, cfg: LightConfig, length: int | None = None) -> None:
        super().__init__()
        self.cfg, self.eps = cfg, cfg.eps
        self.length = length or cfg.d_model
        self.w = nn.Parameter(torch.ones(self.length))
        self.b = nn.Parameter(torch.zeros(self.length))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(x / scale) * self.w + self.b


class Attention(nn.Module):
    def __init__(self, cfg: LightConfig, layer_id: int) -> None:
        super().__init__()
        self.cfg, self.layer_id, self.attn_type = cfg, layer_id, "global"
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(d))
        self.register_buffer("mask", torch.empty((0, 0), dtype=torch.bool))
        self.register_buffer("IGNORE", torch.tensor(-torch.inf))
        self.attn_scale = cfg.attn_scale
        self.hook_k = HookPoint()
        self.hook_q = HookPoint()
        self.hook_v = HookPoint()
        self.hook_z = HookPoint()
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_result = HookPoint()
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))

    @staticmethod
    def _project(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, d, dh = w.shape
        out = F.linear(x, w.permute(0, 2, 1).reshape(h * dh, d), b.reshape(h * dh))
        return out.reshape(x.shape[0], x.shape[1], h, dh)

    def forward(
        self,
        query_input: torch.Tensor,
        key_input: torch.Tensor,
        value_input: torch.Tensor,
        past_kv_cache_entry: Any = None,
        additive_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if past_kv_cache_entry is not None or attention_mask is not None:
            raise ValueError("a light transformer has no key-value cache or padding mask")
        q = self.hook_q(self._project(query_input, self.W_Q, self.b_Q))
        k = self.hook_k(self._project(key_input, self.W_K, self.b_K))
        v = self.hook_v(self._project(value_input, self.W_V, self.b_V))
        scores = q.permute(0, 2, 1, 3) @ k.permute(0, 2, 3, 1) / self.attn_scale
        n_q, n_k = scores.size(-2), scores.size(-1)
        causal = torch.arange(n_k)[None, :] <= torch.arange(n_q)[:, None]
        scores = torch.where(causal[None, None], scores, self.IGNORE)
        if additive_attention_mask is not None:
            scores = scores + additive_attention_mask
        scores = self.hook_attn_scores(scores)
        pattern = F.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        pattern = self.hook_pattern(pattern)
        z = self.hook_z((pattern @ v.permute(0, 2, 1, 3)).permute(0, 2, 1, 3))
        w = self.W_O.permute(2, 0, 1).reshape(self.cfg.d_model, -1).contiguous()
        return F.linear(z.reshape(z.shape[0], z.shape[1], -1), w, self.b_O)


class MLP(nn.Module):
    def __init__(self, cfg: LightConfig) -> None:
        super().__init__()
        self.cfg, self.d_mlp = cfg, cfg.d_mlp
        self.act_fn = _ACTIVATIONS[cfg.act_fn]
        self.hook_mid, self.ln = None, None
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    @staticmethod
    def _addmm(bias: torch.Tensor, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(bias, x.view(-1, x.size(-1)), weight)
        return out.view(*x.shape[:-1], weight.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(self._addmm(self.b_in, self.W_in, x))
        post = self.hook_post(self.act_fn(pre))
        return self._addmm(self.b_out, self.W_out, post)


def _norm(cfg: LightConfig) -> nn.Module:
    return LayerNorm(cfg) if cfg.normalization_type == "LN" else nn.Identity()


class TransformerBlock(nn.Module):
    def __init__(self, cfg: LightConfig, block_index: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalization_type = cfg.normalization_type
        self.ln1 = _norm(cfg)
        if not cfg.attn_only:
            self.ln2 = _norm(cfg)
        self.attn = Attention(cfg, block_index)
        if not cfg.attn_only:
            self.mlp = MLP(cfg)
        for name in ("attn_in", "q_input", "k_input", "v_input", "mlp_in", "attn_out",
                     "mlp_out", "resid_pre"):  # fmt: skip
            setattr(self, f"hook_{name}", HookPoint())
        if not cfg.attn_only:
            self.hook_resid_mid = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid_pre: torch.Tensor, shortformer_pos_embed=None, **kwargs: Any):
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_in = self.ln1(resid_pre)
        attn_out = self.hook_attn_out(self.attn(attn_in, attn_in, attn_in, **kwargs))
        if self.cfg.attn_only:
            return self.hook_resid_post(resid_pre + attn_out)
        resid_mid = self.hook_resid_mid(resid_pre + attn_out)
        return self.hook_resid_post(resid_mid + self.apply_mlp(self.ln2(resid_mid)))

    def apply_mlp(self, normalized_resid: torch.Tensor) -> torch.Tensor:
        return self.hook_mlp_out(self.mlp(normalized_resid))


class Unembed(nn.Module):
    def __init__(self, cfg: LightConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        self.hook_in = HookPoint()
        self.hook_out = HookPoint()

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        residual = self.hook_in(residual)
        return self.hook_out(F.linear(residual, self.W_U.T.contiguous(), self.b_U))


class LightTransformer(HookedRoot):
    """A ``HookedTransformer`` look-alike (see the module docstring); weights start empty,
    to be loaded from a checkpoint."""

    tokenizer = None

    def __init__(self, cfg: LightConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()
        self.pos_embed = PosEmbed(cfg)
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(TransformerBlock(cfg, i) for i in range(cfg.n_layers))
        if cfg.normalization_type == "LN":
            self.ln_final = LayerNorm(cfg)
        self.unembed = Unembed(cfg)
        self.setup()

    def forward(
        self,
        input: torch.Tensor,
        return_type: str | None = "logits",
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        **kwargs: Any,
    ) -> torch.Tensor | None:
        unsupported = {k for k, v in kwargs.items() if v is not None and k != "tokens"}
        if unsupported:
            raise ValueError(f"a light transformer does not take {sorted(unsupported)}")
        if return_type not in ("logits", None):
            raise ValueError(f"return_type must be 'logits' or None, got {return_type!r}")
        if start_at_layer is None:
            tokens = input if input.ndim == 2 else input.unsqueeze(0)
            embed = self.hook_embed(self.embed(tokens))
            residual = embed + self.hook_pos_embed(self.pos_embed(tokens))
            start_at_layer = 0
        else:
            residual = input
        for block in list(self.blocks)[start_at_layer:stop_at_layer]:
            residual = block(residual)
        if stop_at_layer is not None:
            return residual
        if self.cfg.normalization_type is not None:
            residual = self.ln_final(residual)
        if return_type is None:
            return None
        return self.unembed(residual)

    # --- weights, stacked over layers as HookedTransformer gives them -----------------
    W_E = property(lambda self: self.embed.W_E)
    W_pos = property(lambda self: self.pos_embed.W_pos)
    W_U = property(lambda self: self.unembed.W_U)
    b_U = property(lambda self: self.unembed.b_U)

    def _stack(self, part: str, name: str) -> torch.Tensor:
        return torch.stack([getattr(getattr(b, part), name) for b in self.blocks])

    W_Q = property(lambda self: self._stack("attn", "W_Q"))
    W_K = property(lambda self: self._stack("attn", "W_K"))
    W_V = property(lambda self: self._stack("attn", "W_V"))
    W_O = property(lambda self: self._stack("attn", "W_O"))
    b_Q = property(lambda self: self._stack("attn", "b_Q"))
    b_K = property(lambda self: self._stack("attn", "b_K"))
    b_V = property(lambda self: self._stack("attn", "b_V"))
    b_O = property(lambda self: self._stack("attn", "b_O"))
    W_in = property(lambda self: self._stack("mlp", "W_in"))
    W_out = property(lambda self: self._stack("mlp", "W_out"))
    b_in = property(lambda self: self._stack("mlp", "b_in"))
    b_out = property(lambda self: self._stack("mlp", "b_out"))


def build(cfg: TransformerConfig) -> LightTransformer:
    """An empty light transformer for ``cfg`` (load weights into it); eval mode."""
    if not supports(cfg):
        raise ValueError(
            "a light transformer needs learned positions, LayerNorm or no norm and a "
            f"relu/gelu/silu MLP; got {cfg.positional_embedding} positions, "
            f"normalization {cfg.normalization!r}, act_fn {cfg.act_fn!r}"
        )
    return LightTransformer(light_config(cfg)).eval()


def is_light(model: object) -> bool:
    return isinstance(model, LightTransformer)


def to_transformer_lens(model: LightTransformer) -> nn.Module:
    """A transformer-lens ``HookedTransformer`` holding the same weights (imports it)."""
    c = model.cfg
    cfg = TransformerConfig(
        n_layers=c.n_layers, d_model=c.d_model, n_heads=c.n_heads, d_head=c.d_head,
        d_mlp=c.d_mlp, d_vocab=c.d_vocab, d_vocab_out=c.d_vocab_out, n_ctx=c.n_ctx,
        act_fn=c.act_fn, normalization=c.normalization_type, seed=c.seed or 0,
    )  # fmt: skip
    tl = _tl.build_transformer(cfg)
    tl.load_state_dict(model.state_dict(), strict=True)
    return tl.train(model.training)
