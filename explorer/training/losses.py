"""Loss and evaluation functions for ``train``: full-batch classification on token sequences.

``last_position_logits`` (the handle's, ``Handle.last_position_logits``) computes a transformer's logits at the last position only: every
layer but the last runs on all positions (later positions attend to them), while the last
layer's attention is read at the final query and its MLP and the unembedding run on one
position instead of all. For the grokking model (3 positions, MLP-heavy) this halves the
cost of a training step; a test checks it equals ``model(tokens)[:, -1]``. Models it does
not cover (images, parallel attention, rotary positions) and models with hooks attached
fall back to a full forward, so hooks always see every activation.

>>> from explorer.models import zoo
>>> model = zoo.modular_addition_transformer(p=7)
>>> tokens = torch.tensor([[1, 2, 7], [3, 5, 7]])  # "1 + 2 =", "3 + 5 ="
>>> torch.allclose(last_position_logits(model, tokens), model(tokens)[:, -1], atol=1e-5)
True
>>> loss, logged = classification_loss(tokens, torch.tensor([3, 1]))(model, 0)
>>> loss.shape, sorted(logged)
(torch.Size([]), ['acc'])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from explorer.models.handle import ModelHandle

LossFn = Callable[[ModelHandle, int], "torch.Tensor | tuple[torch.Tensor, dict[str, float]]"]
EvalFn = Callable[[ModelHandle], "float | dict[str, float]"]

__all__ = ["classification_eval", "classification_loss", "last_position_logits"]


def last_position_logits(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """Logits at the last position ``[batch, d_vocab_out]`` (or a classifier's ``[batch,
    classes]``), computed as cheaply as the model allows (see the module docstring)."""
    return model.last_position_logits(inputs)


def classification_loss(
    inputs: torch.Tensor,
    labels: torch.Tensor,
    logits_fn: Callable[[ModelHandle, torch.Tensor], torch.Tensor] = last_position_logits,
) -> LossFn:
    """A full-batch loss for ``train``: cross-entropy of ``labels``, plus accuracy as ``acc``.

    The accuracy comes from the same forward pass, so logging it is free.
    """
    labels = torch.as_tensor(labels)

    def loss(model: ModelHandle, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        logits = logits_fn(model, inputs).float()
        value = F.cross_entropy(logits, labels)
        acc = (logits.detach().argmax(-1) == labels).float().mean()
        return value, {"acc": float(acc)}

    return loss


def classification_eval(
    inputs: torch.Tensor,
    labels: torch.Tensor,
    logits_fn: Callable[[ModelHandle, torch.Tensor], torch.Tensor] = last_position_logits,
    batch_size: int = 4096,
) -> EvalFn:
    """An evaluation for ``train``: ``{"loss": cross-entropy, "acc": accuracy}`` on held-out data."""
    labels = torch.as_tensor(labels)

    def evaluate(model: ModelHandle) -> dict[str, float]:
        total_loss, correct = 0.0, 0
        for start in range(0, len(labels), batch_size):
            logits = logits_fn(model, inputs[start : start + batch_size]).float()
            target = labels[start : start + batch_size]
            total_loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
        n = max(1, len(labels))
        return {"loss": total_loss / n, "acc": correct / n}

    return evaluate
