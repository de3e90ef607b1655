"""Shortcuts through a forward pass, each taken only where the architecture proves it.

The sweeps (``sweeps``, behind ``Handle.run_sweep``) and training ask these questions; only this layer
looks inside the model to answer them:

- ``linear_readout``: where a hook's effect lands linearly (a transformer head's ``W_O``
  or neuron's ``W_out`` into the next residual hook; a plain module's hidden layer read by
  one ``nn.Linear``, ``hooked_module.linear_reader``), so one change per unit is added
  there instead of a pass per unit.
- ``fans_out``: whether copies written at a plain module's hook run through the rest of
  the model as a stack.
- ``starts_mid_model`` / ``run_from_layer`` / ``finishes_blocks`` / ``finish_block``: a
  transformer pass started at a block from a cached residual stream.
- ``last_position_logits``: a transformer's logits at the last position only, computing
  the last block's attention for that position alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from explorer.models import hooked_module

if TYPE_CHECKING:  # the handle runs its sweeps through this module (``sweeps``)
    from explorer.models.handle import ModelHandle

__all__ = [
    "Readout",
    "fans_out",
    "finish_block",
    "finishes_blocks",
    "last_position_logits",
    "linear_readout",
    "run_from_layer",
    "starts_mid_model",
]


@dataclass(frozen=True)
class Readout:
    """``hook`` is a linear map of the swept activation and nothing else changes it:
    replacing a unit's activation by ``new`` changes ``hook`` by ``(new - old) @ weight[u]``.
    ``weight`` is ``[units, d_out]`` (neurons) or ``[units, d_head, d_out]`` (heads).
    ``tail(x)`` (plain modules) runs the model on from ``hook``'s value, when it can."""

    hook: str
    weight: torch.Tensor = field(repr=False)
    tail: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)


def linear_readout(model: ModelHandle, hook: str) -> Readout | None:
    """Where the linear effect of ``hook`` lands: for a transformer's ``attn.hook_z`` /
    ``mlp.hook_post``, the next residual hook (``W_O``, ``W_out``); for a plain module's
    ``mlp.hook_post`` read only by an ``nn.Linear``, that Linear's hooked output
    (``hooked_module.linear_reader`` checks the structure). None when it does not apply.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32)
    >>> linear_readout(m, "blocks.0.attn.hook_z").hook
    'blocks.0.hook_resid_post'
    """
    if not model.is_transformer:
        reader = hooked_module.linear_reader(model.model, hook)
        if reader is None:
            return None
        tail = reader.tail
        if tail is not None:
            tail = _counted(model, tail)
        return Readout(reader.hook, reader.linear.weight.detach().T, tail)
    if getattr(model.model.cfg, "parallel_attn_mlp", False):
        return None
    parts = hook.split(".")
    if len(parts) != 4 or parts[0] != "blocks":
        return None
    block = model.model.blocks[int(parts[1])]  # type: ignore[index]
    if parts[2:] == ["attn", "hook_z"]:
        after = "hook_resid_post" if not model.has_mlp else "hook_resid_mid"
        return Readout(f"blocks.{parts[1]}.{after}", block.attn.W_O.detach())
    if parts[2:] == ["mlp", "hook_post"] and not getattr(model.model.cfg, "gated_mlp", False):
        return Readout(f"blocks.{parts[1]}.hook_resid_post", block.mlp.W_out.detach())
    return None


def fans_out(model: ModelHandle, hook: str) -> bool:
    """For a plain module: whether copies stacked at ``hook`` (``[copies * batch, ...]``)
    run through the rest of the model as a stack (``hooked_module.fans_out``). False for
    transformers (their residual hooks fan out by construction; ask ``linear_readout``)."""
    return not model.is_transformer and hooked_module.fans_out(model.model, hook)


def starts_mid_model(model: ModelHandle) -> bool:
    """Whether a forward pass can start at a block from a cached residual stream
    (``start_at_layer``) and give what the full pass gives."""
    if not model.is_transformer or not model.runs_from_layer:
        return False
    cfg = model.model.cfg
    if getattr(cfg, "positional_embedding_type", "standard") == "shortformer":
        return False  # each block re-adds the positional embedding
    tokenizer = getattr(model.model, "tokenizer", None)
    return getattr(tokenizer, "padding_side", "right") != "left"  # left padding: masks


def run_from_layer(model: ModelHandle, resid: torch.Tensor, layer: int) -> torch.Tensor:
    """Logits from block ``layer`` on, given the residual stream entering it (``[batch,
    pos, d_model]``; only where ``starts_mid_model``). Hooks added with ``model.hooks``
    fire for the blocks run."""
    return model.model(resid, start_at_layer=layer)  # type: ignore[operator]


def finishes_blocks(model: ModelHandle) -> bool:
    """Whether ``finish_block`` computes what a transformer-lens block does after its
    ``hook_resid_mid`` (a pre-norm block with attention then MLP in sequence)."""
    cfg = model.model.cfg  # type: ignore[union-attr]
    if cfg.attn_only or cfg.parallel_attn_mlp or getattr(cfg, "n_devices", 1) != 1:
        return False
    if cfg.original_architecture is None:  # a toy model (no transformer-lens import needed)
        return True
    # lazy: transformer-lens takes seconds to import, and toy models never need it here
    from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES

    return cfg.original_architecture not in POST_NORM_ARCHITECTURES


def finish_block(model: ModelHandle, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
    """Logits from block ``layer``'s ``hook_resid_mid`` on: the block's MLP half (as
    ``TransformerBlock.forward`` writes it), then ``start_at_layer=layer + 1``. Running
    from here, not from ``hook_resid_pre``, skips recomputing the block's attention."""
    tl = model.model
    block = tl.blocks[layer]  # type: ignore[index, union-attr]
    mlp_in = block.hook_mlp_in(resid_mid.clone()) if tl.cfg.use_hook_mlp_in else resid_mid  # type: ignore[union-attr]
    resid_post = block.hook_resid_post(resid_mid + block.apply_mlp(block.ln2(mlp_in)))
    return tl(resid_post, start_at_layer=layer + 1)  # type: ignore[operator]


def _last_position_ok(model: ModelHandle) -> bool:
    cfg = getattr(model.model, "cfg", None)
    return (
        model.is_transformer
        and cfg is not None
        and cfg.positional_embedding_type == "standard"
        and not cfg.parallel_attn_mlp
        and not cfg.use_attn_in
        and not cfg.use_split_qkv_input
        and not cfg.use_normalization_before_and_after
        and not getattr(cfg, "use_hook_tokens", False)
        and not any(hp.fwd_hooks for hp in model.model.hook_dict.values())  # type: ignore[attr-defined]
    )


def last_position_logits(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """Logits at the last position ``[batch, d_vocab_out]`` (or a classifier's ``[batch,
    classes]``). A plain transformer computes its last block's attention and MLP for the
    last position only (hooks set on the model take the full pass instead).

    >>> from explorer.models import zoo
    >>> m = zoo.modular_addition_transformer(p=7)
    >>> tokens = torch.tensor([[1, 2, 7]])
    >>> torch.allclose(last_position_logits(m, tokens), m(tokens)[:, -1], atol=1e-5)
    True
    """
    if not _last_position_ok(model):
        out = model(inputs)
        return out[:, -1] if out.ndim == 3 else out
    tokens = model.check_inputs(inputs)
    if model.attention_mask(tokens) is not None:  # a padded batch: the full pass masks it
        return model(tokens)[:, -1]
    tl = model.model
    resid = tl.embed(tokens) + tl.pos_embed(tokens)  # type: ignore[operator]
    blocks = tl.blocks  # type: ignore[attr-defined]
    for block in blocks[:-1]:
        resid = block(resid)
    last = blocks[-1]
    attn_in = last.ln1(resid)
    attn_out = last.attn(attn_in, attn_in, attn_in)[:, -1:]
    mid = resid[:, -1:] + attn_out
    out = mid if last.cfg.attn_only else mid + last.mlp(last.ln2(mid))
    final_norm = getattr(tl, "ln_final", None)  # absent without normalization
    if final_norm is not None:
        out = final_norm(out)
    return tl.unembed(out)[:, 0]  # type: ignore[operator]


def _counted(
    model: ModelHandle, tail: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``tail`` that counts its runs in ``model.spent`` as the passes they stand for."""

    def run(x: torch.Tensor) -> torch.Tensor:
        model.spent.forward += 1
        model.spent.examples += len(x)
        return tail(x)

    return run
