"""Synthetic token sequences for induction: repeated random spans."""

from __future__ import annotations

import torch
from jaxtyping import Int

from explorer._checks import check_positive


def repeated_tokens(
    n_batch: int, half_len: int, d_vocab: int, *, seed: int = 0, bos_token: int | None = 0
) -> Int[torch.Tensor, "batch pos"]:
    """``[BOS][random half_len][same half_len]``; random tokens avoid the BOS id.

    >>> t = repeated_tokens(2, 5, 20, seed=0)
    >>> t.shape, bool((t[:, 1:6] == t[:, 6:]).all()), bool((t[:, 0] == 0).all())
    (torch.Size([2, 11]), True, True)
    """
    check_positive("n_batch", n_batch)
    check_positive("half_len", half_len)
    n_choices = d_vocab - (bos_token is not None)
    if n_choices < 2:
        raise ValueError(f"d_vocab {d_vocab} too small for random tokens")
    if bos_token is not None and not 0 <= bos_token < d_vocab:
        raise ValueError(f"bos_token {bos_token} out of range 0..{d_vocab - 1}")
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(0, n_choices, (n_batch, half_len), generator=g)
    if bos_token is not None:  # skip over the BOS id
        half = torch.where(half >= bos_token, half + 1, half)
    parts = [half, half]
    if bos_token is not None:
        parts.insert(0, torch.full((n_batch, 1), bos_token, dtype=torch.long))
    return torch.cat(parts, dim=1)


def induction_training_batch(
    n_batch: int,
    seq_len: int,
    d_vocab: int,
    *,
    generator: torch.Generator,
    bos_token: int = 0,
    min_span: int = 4,
) -> Int[torch.Tensor, "batch seq_len"]:
    """Random sequences, each containing one span repeated later, of random length and offset.

    A fixed ``[L][L]`` layout teaches a positional look-back head instead of an induction
    head; varying the span's length and where it starts forces matching on content.
    """
    check_positive("n_batch", n_batch)
    if seq_len < 2 * min_span + 1:
        raise ValueError(f"seq_len {seq_len} too short for spans of at least {min_span}")
    tokens = torch.randint(1, d_vocab, (n_batch, seq_len), generator=generator)
    tokens[:, 0] = bos_token
    body = seq_len - 1
    for i in range(n_batch):
        span = int(torch.randint(min_span, body // 2 + 1, (1,), generator=generator))
        start = int(torch.randint(1, seq_len - 2 * span + 1, (1,), generator=generator))
        gap = int(torch.randint(0, seq_len - start - 2 * span + 1, (1,), generator=generator))
        second = start + span + gap
        tokens[i, second : second + span] = tokens[i, start : start + span]
    return tokens
