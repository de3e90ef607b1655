"""Modular arithmetic: every pair ``a op b mod p`` as tokens ``[a, b, "="]``, split by seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Int

from explorer._checks import check_choice, check_fraction, check_positive
from explorer._display import compact_repr

OPS = ("+", "-", "*")


@dataclass(frozen=True)
class ModularData:
    """All ``p*p`` equations with a seeded train/test split.

    ``tokens[i] = [a, b, p]`` (token ``p`` is "="), ``labels[i] = (a op b) % p``.
    """

    __repr__ = compact_repr

    p: int
    op: str
    tokens: Int[torch.Tensor, "n 3"]
    labels: Int[torch.Tensor, " n"]
    train_idx: Int[torch.Tensor, " n_train"]
    test_idx: Int[torch.Tensor, " n_test"]
    seed: int

    @property
    def train_tokens(self) -> torch.Tensor:
        return self.tokens[self.train_idx]

    @property
    def train_labels(self) -> torch.Tensor:
        return self.labels[self.train_idx]

    @property
    def test_tokens(self) -> torch.Tensor:
        return self.tokens[self.test_idx]

    @property
    def test_labels(self) -> torch.Tensor:
        return self.labels[self.test_idx]

    @property
    def vocab(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(self.p)) + ("=",)


def modular_arithmetic(
    p: int = 113, *, op: str = "+", train_frac: float = 0.3, seed: int = 0
) -> ModularData:
    """Build the dataset of Power et al. 2022 / Nanda et al. 2023.

    >>> d = modular_arithmetic(p=5, train_frac=0.4, seed=0)
    >>> d.tokens.shape, len(d.train_idx) + len(d.test_idx)
    (torch.Size([25, 3]), 25)
    >>> bool(((d.tokens[:, 0] + d.tokens[:, 1]) % 5 == d.labels).all())
    True
    """
    check_positive("p", p)
    if p < 2:
        raise ValueError(f"p must be at least 2, got {p}")
    check_choice("op", op, OPS)
    check_fraction("train_frac", train_frac)
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if op == "+":
        labels = (a + b) % p
    elif op == "-":
        labels = (a - b) % p
    else:
        labels = (a * b) % p
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n_train = max(1, min(p * p - 1, round(train_frac * p * p)))
    return ModularData(p, op, tokens, labels, perm[:n_train], perm[n_train:], seed)
