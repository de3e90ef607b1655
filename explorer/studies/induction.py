"""The induction-heads study's recipe: its training loss on repeated spans.

The tutorial (tutorials/induction_heads.ipynb) trains a 2-layer attention-only transformer with
``explorer.training.train`` and this loss; the measures it logs (``induction_progress``) and the
circuit search are primitives of ``explorer.analysis.induction``.

>>> loss = next_token_training_loss(20, 32, 4, seed=3, min_span=5)
>>> from explorer.models import zoo
>>> float(loss(zoo.attention_only_transformer(n_layers=1, d_vocab=20, n_ctx=32), 0).detach()) > 0
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from explorer._checks import check_positive
from explorer.data.tokens import induction_training_batch
from explorer.models.handle import ModelHandle

__all__ = ["next_token_training_loss"]


def next_token_training_loss(
    d_vocab: int,
    seq_len: int,
    batch_size: int,
    *,
    seed: int = 0,
    min_span: int = 4,
) -> Callable[[ModelHandle, int], torch.Tensor]:
    """A loss for ``explorer.training.train``: next-token cross-entropy on a fresh batch of
    ``induction_training_batch`` sequences at every step.

    The batch of step ``s`` depends only on ``(seed, s)``, so a resumed run sees the same
    data. Longer ``min_span`` means more repeated tokens per sequence: a stronger signal
    for induction, and an earlier phase change.
    """
    check_positive("batch_size", batch_size)
    check_positive("min_span", min_span)
    if d_vocab < 3:
        raise ValueError(f"d_vocab must be at least 3 (BOS and two random tokens), got {d_vocab}")
    if seq_len < 2 * min_span + 1:
        raise ValueError(
            f"seq_len {seq_len} is too short to repeat spans of at least {min_span} tokens "
            f"after BOS: it must be at least {2 * min_span + 1}"
        )

    def loss(model: ModelHandle, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        tokens = induction_training_batch(
            batch_size, seq_len, d_vocab, generator=g, min_span=min_span
        )
        logits = model(tokens)[:, :-1]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].flatten()
        )

    return loss
