"""Two handles read side by side (``compare``, cross-model ``activation_patching``): they
must share one architecture, and a padded batch must carry its mask into both."""

from __future__ import annotations

from typing import Any

import torch

from explorer.models.handle import ModelHandle


def check_same_architecture(model: ModelHandle, other: ModelHandle) -> None:
    """A sentence naming the first difference when the two handles do not match."""
    checks = (
        ("input kind", model.kind, other.kind),
        ("layers", model.n_layers, other.n_layers),
        ("layer widths", tuple(model.layer_widths), tuple(other.layer_widths)),
        ("heads per layer", model.n_heads, other.n_heads),
        ("d_model", model.d_model, other.d_model),
        ("d_head", model.d_head, other.d_head),
        ("vocabulary size", model.d_vocab, other.d_vocab),
    )
    for what, mine, theirs in checks:
        if mine != theirs:
            raise ValueError(
                f"comparing needs two models of one architecture: {model.name} has {what} "
                f"{mine}, {other.name} has {theirs} (compare a base with its fine-tune, two "
                "checkpoints of a run or two seeds)"
            )


def checked_pair(model: ModelHandle, other: ModelHandle, batch: Any) -> tuple[Any, Any]:
    """The batch checked by each handle, both knowing its padding mask (whichever padded it)."""
    if not model.is_transformer or not isinstance(batch, torch.Tensor):
        return model.check_inputs(batch), other.check_inputs(batch)  # a mapping has its mask
    mask = model.attention_mask(batch)
    mask = other.attention_mask(batch) if mask is None else mask
    if mask is None:
        return model.check_inputs(batch), other.check_inputs(batch)
    both = {"input_ids": batch, "attention_mask": mask}
    return model.check_inputs(both), other.check_inputs(both)
