"""Weights of a handle: what analysis reads instead of the model itself.

Transformers: weights by backend-neutral names (``WEIGHT_NAMES``; transformer-lens's own
names are accepted too), written back with ``set_weight``; the norms (``final_norm``,
``block_norm``), the unembedding (``resid_to_logits``), the token embedding. Plain
MLP/CNN models answer per unit (``module_handle``). ``WeightsMixin`` is part of every
hook-point handle (``handle``); the nnsight backend reads converted weights instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import nn

__all__ = [
    "LAYER_WEIGHTS",
    "MODEL_WEIGHTS",
    "WEIGHT_NAMES",
    "LayerModules",
    "WeightsMixin",
    "tl_weight_name",
]

MODEL_WEIGHTS = ("W_E", "W_pos", "W_U", "b_U")
LAYER_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out", "b_out")
NORMS = ("ln1", "ln2")
# the protocol's weight names -> transformer-lens's (shapes as ``WeightsMixin.weight``)
WEIGHT_NAMES = {
    "embed": "W_E",
    "pos_embed": "W_pos",
    "unembed": "W_U",
    "unembed_bias": "b_U",
    "query": "W_Q",
    "key": "W_K",
    "value": "W_V",
    "attn_out": "W_O",
    "query_bias": "b_Q",
    "key_bias": "b_K",
    "value_bias": "b_V",
    "attn_out_bias": "b_O",
    "mlp_in": "W_in",
    "mlp_out": "W_out",
    "mlp_out_bias": "b_out",
}


def tl_weight_name(name: str) -> str:
    """transformer-lens's name for a weight named either way; a clear error otherwise.

    >>> tl_weight_name("unembed"), tl_weight_name("W_U")
    ('W_U', 'W_U')
    """
    tl = WEIGHT_NAMES.get(name, name)
    if tl not in MODEL_WEIGHTS + LAYER_WEIGHTS:
        raise ValueError(f"unknown weight {name!r}: choose one of {', '.join(WEIGHT_NAMES)}")
    return tl


@dataclass(frozen=True)
class LayerModules:
    """The weighted modules around hidden layer ``layer`` of a plain (MLP/CNN) model.

    ``incoming`` computes the layer (its output is ``blocks.{layer}.mlp.hook_pre``);
    ``outgoing`` is the next weighted module, the one that reads the layer: the next
    layer's ``incoming``, or after the last hidden layer the output layer (``last``); None
    where no such module was found. ``width`` units; ``conv``: the units are channels.
    """

    layer: int
    incoming: nn.Module
    outgoing: nn.Module | None
    width: int
    conv: bool
    last: bool


class WeightsMixin:
    """Weight and module methods of ``ModelHandle``."""

    model: Any
    cfg: Any
    name: str
    kind: str
    is_transformer: bool
    has_mlp: bool
    n_layers: int
    check_layer: Any  # ModelHandle's

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.model.parameters()

    def named_parameters(self) -> Iterable[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs, named as in the wrapped module's ``state_dict``."""
        return self.model.named_parameters()

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (of the first parameter)."""
        return next(iter(self.parameters())).dtype

    def zero_grad(self) -> None:
        """Drop the gradients of every weight (``set_to_none``)."""
        self.model.zero_grad(set_to_none=True)

    def weight(self, name: str, layer: int | None = None) -> torch.Tensor:
        """A transformer weight by name (``WEIGHT_NAMES``, or transformer-lens's), detached.

        Model-wide: ``embed [vocab, d_model]``, ``pos_embed [n_ctx, d_model]`` (learned
        positions only), ``unembed [d_model, vocab_out]``, ``unembed_bias``. Per layer:
        ``query``, ``key``, ``value`` ``[head, d_model, d_head]`` (grouped-query keys/values
        repeated to every head) and their ``*_bias [head, d_head]``, ``attn_out [head,
        d_head, d_model]``, ``attn_out_bias``, ``mlp_in [d_model, d_mlp]``, ``mlp_out
        [d_mlp, d_model]``, ``mlp_out_bias``.
        """
        return self._weight_param(name, layer).detach()

    def set_weight(
        self, name: str, value: torch.Tensor, layer: int | None = None, *, head: int | None = None
    ) -> None:
        """Write a weight in place (all of it, or head ``head``'s slice), as ``weight`` names
        it: how planted models are built by hand.

        >>> from explorer.models import zoo
        >>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, n_heads=2, d_vocab=5, n_ctx=4)
        >>> m.set_weight("query", torch.ones(8, 4), 0, head=1)
        >>> float(m.weight("query", 0)[1].sum())
        32.0
        """
        param = self._weight_param(name, layer)
        target = param if head is None else param[self.check_head(layer or 0, head)[1]]
        value = torch.as_tensor(value, dtype=param.dtype)
        if value.shape != target.shape:
            raise ValueError(
                f"{name} {'' if head is None else f'head {head} '}has shape "
                f"{list(target.shape)}, got {list(value.shape)}"
            )
        with torch.no_grad():
            target.copy_(value)

    def _weight_param(self, name: str, layer: int | None) -> torch.Tensor:
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no transformer weights")
        name = tl_weight_name(name)
        if name in MODEL_WEIGHTS:
            if layer is not None:
                raise ValueError(f"{name} belongs to the whole model: pass no layer")
            if name == "W_pos" and not hasattr(self.model, "pos_embed"):
                raise ValueError(f"{self.name} has no learned position embedding (W_pos)")
            return getattr(self.model, name)
        if layer is None:
            raise ValueError(f"{name} is a per-layer weight: pass layer=0..{self.n_layers - 1}")
        block = self.model.blocks[self.check_layer(layer)]  # type: ignore[index]
        if name in ("W_in", "W_out", "b_out"):
            if not self.has_mlp:
                raise ValueError(f"{self.name} is attention-only: it has no {name}")
            return getattr(block.mlp, name)
        return getattr(block.attn, name)

    @property
    def kv_hook_heads(self) -> int | None:
        """The heads ``attn.hook_k`` / ``attn.hook_v`` hold: ``n_heads``, or fewer where
        grouped-query keys and values stay grouped (one per key/value head, each shared by
        a group of query heads). None for models without attention heads."""
        if not self.is_transformer:
            return None
        cfg = self.cfg
        n_kv = getattr(cfg, "n_key_value_heads", None)
        if n_kv is None or getattr(cfg, "ungroup_grouped_query_attention", False):
            return int(cfg.n_heads)
        return int(n_kv)

    @property
    def normalization(self) -> str | None:
        """The norm before each sublayer and the unembedding: ``"LN"``, ``"LNPre"``, ``"RMS"``,
        ``"RMSPre"`` or None (transformer-lens's ``normalization_type``)."""
        return self.cfg.normalization_type if self.is_transformer else None

    def final_norm(self) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        """``(normalization, weight, bias)`` of the norm before the unembedding.

        Weight and bias are None where the norm has none (``LNPre``, ``RMSPre``, no norm);
        the per-position scale is the activation ``ln_final.hook_scale``.
        """
        kind = self.normalization
        ln = getattr(self.model, "ln_final", None)
        if kind is None or ln is None:
            return None, None, None
        w, b = getattr(ln, "w", None), getattr(ln, "b", None)
        return (
            kind,
            None if w is None else w.detach(),
            None if b is None else b.detach(),
        )

    def resid_to_logits(
        self, resid: Float[torch.Tensor, "*batch d_model"]
    ) -> Float[torch.Tensor, "*batch vocab"]:
        """The logits the model would give if ``resid`` were its final residual stream: the
        final norm (its statistics recomputed from ``resid``), then the unembedding."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no residual stream to unembed")
        ln = getattr(self.model, "ln_final", None)
        shape = resid.shape
        x = resid.reshape(1, -1, shape[-1])  # the norm expects [batch, pos, d]
        if ln is not None and self.normalization is not None:
            x = ln(x)
        # x @ W_U + b_U as the unembedding computes it, without its per-call copy of W_U.T
        w_u, b_u = self.weight("unembed"), self.weight("unembed_bias")
        return torch.addmm(b_u, x.reshape(-1, shape[-1]), w_u).reshape(*shape[:-1], -1)

    def token_embedding(self) -> nn.Module:
        """The module that maps token ids to their embeddings (``[batch, pos, d_model]``):
        the layer gradient methods such as captum's ``LayerIntegratedGradients`` attribute to."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no token embedding")
        return self.model.embed  # type: ignore[return-value]

    def block_norm(
        self, layer: int, which: str = "ln1"
    ) -> tuple[str | None, torch.Tensor | None, torch.Tensor | None]:
        """``(normalization, weight, bias)`` of block ``layer``'s norm before attention
        (``"ln1"``) or before the MLP (``"ln2"``), as ``final_norm``."""
        if which not in NORMS:
            raise ValueError(f"unknown norm {which!r}: choose one of {', '.join(NORMS)}")
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no transformer norms")
        block = self.model.blocks[self.check_layer(layer)]
        kind = self.normalization
        ln = getattr(block, which, None)
        if kind is None or ln is None:
            return None, None, None
        w, b = getattr(ln, "w", None), getattr(ln, "b", None)
        return kind, None if w is None else w.detach(), None if b is None else b.detach()

    def reset_parameters(self, seed: int = 0) -> None:
        """Re-initialise, in place and seeded, every layer that holds parameters of its own
        (its ``reset_parameters``, as torch initialises a new layer).

        >>> from explorer.models import zoo
        >>> m = zoo.mnist_mlp(hidden=(4,))
        >>> before = m.fingerprint()
        >>> m.reset_parameters(seed=1)
        >>> m.fingerprint() != before
        True
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in self.model.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset) and any(True for _ in module.parameters(recurse=False)):
                    reset()
