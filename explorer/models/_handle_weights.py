"""Weights and modules of a ``ModelHandle``: what analysis reads instead of the model itself.

Transformers: weights by their transformer-lens names (``weight``), the norms
(``final_norm``, ``block_norm``), the unembedding (``resid_to_logits``), the token
embedding. Plain MLP/CNN models: the weighted modules around a hidden layer
(``layer_modules``). ``WeightsMixin`` is part of ``ModelHandle`` (``handle``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import nn

__all__ = ["LAYER_WEIGHTS", "MODEL_WEIGHTS", "LayerModules", "WeightsMixin"]

MODEL_WEIGHTS = ("W_E", "W_pos", "W_U", "b_U")
LAYER_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O", "b_O", "W_in", "W_out", "b_out")
NORMS = ("ln1", "ln2")


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
        """A transformer weight by its transformer-lens name, detached.

        Model-wide: ``W_E [vocab, d_model]``, ``W_pos [n_ctx, d_model]`` (learned positions
        only), ``W_U [d_model, vocab_out]``, ``b_U``. Per layer: ``W_Q``, ``W_K``, ``W_V``
        ``[head, d_model, d_head]`` (grouped-query keys/values repeated to every head),
        ``W_O [head, d_head, d_model]``, ``b_O``, ``W_in``, ``W_out [d_mlp, d_model]``,
        ``b_out``.
        """
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images: it has no transformer weights")
        if name in MODEL_WEIGHTS:
            if layer is not None:
                raise ValueError(f"{name} belongs to the whole model: pass no layer")
            if name == "W_pos" and not hasattr(self.model, "pos_embed"):
                raise ValueError(f"{self.name} has no learned position embedding (W_pos)")
            return getattr(self.model, name).detach()
        if name not in LAYER_WEIGHTS:
            raise ValueError(
                f"unknown weight {name!r}: choose one of {', '.join(MODEL_WEIGHTS + LAYER_WEIGHTS)}"
            )
        if layer is None:
            raise ValueError(f"{name} is a per-layer weight: pass layer=0..{self.n_layers - 1}")
        block = self.model.blocks[self.check_layer(layer)]  # type: ignore[index]
        if name in ("W_in", "W_out", "b_out"):
            if not self.has_mlp:
                raise ValueError(f"{self.name} is attention-only: it has no {name}")
            return getattr(block.mlp, name).detach()
        return getattr(block.attn, name).detach()

    @property
    def kv_hook_heads(self) -> int | None:
        """The heads ``attn.hook_k`` / ``attn.hook_v`` hold: ``n_heads``, or fewer where
        grouped-query keys and values stay grouped (one per key/value head, each shared by
        a group of query heads). None for models without attention heads."""
        if not self.is_transformer:
            return None
        cfg = self.model.cfg  # type: ignore[attr-defined]
        n_kv = getattr(cfg, "n_key_value_heads", None)
        if n_kv is None or getattr(cfg, "ungroup_grouped_query_attention", False):
            return int(cfg.n_heads)
        return int(n_kv)

    @property
    def normalization(self) -> str | None:
        """The norm before each sublayer and the unembedding: ``"LN"``, ``"LNPre"``, ``"RMS"``,
        ``"RMSPre"`` or None (transformer-lens's ``normalization_type``)."""
        return self.model.cfg.normalization_type if self.is_transformer else None  # type: ignore[attr-defined]

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
        w_u, b_u = self.weight("W_U"), self.weight("b_U")
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

    def layer_modules(self, layer: int) -> LayerModules:
        """The weighted modules that compute hidden layer ``layer`` of a plain model and
        that read it (see ``LayerModules``). Transformers: read ``weight("W_in", layer)``,
        ``weight("W_out", layer)`` and the attention weights instead.

        >>> from explorer.models import zoo
        >>> io = zoo.mnist_mlp(hidden=(16, 8)).layer_modules(1)
        >>> io.incoming, io.outgoing, io.width, io.last
        (Linear(in_features=16, out_features=8, bias=True), Linear(in_features=8, out_features=10, bias=True), 8, True)
        """
        if self.is_transformer:
            raise ValueError(
                f"{self.name} is a transformer: read its layers with weight(name, layer) "
                "(W_in, W_out, W_Q, ...); layer_modules is for plain MLP/CNN models"
            )
        layer = self.check_layer(layer)
        named = dict(self.model.module.named_modules())
        blocks = self.model.found_blocks
        last = layer == len(blocks) - 1
        after = self.model.output_layer if last else blocks[layer + 1].pre
        return LayerModules(
            layer=layer,
            incoming=named[blocks[layer].pre],
            outgoing=named[after] if after is not None else None,
            width=int(blocks[layer].width),
            conv=bool(blocks[layer].conv),
            last=last,
        )

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
