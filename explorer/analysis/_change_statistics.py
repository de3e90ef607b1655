"""Per-unit statistics folded batch by batch for ``comparison``: moments of an activation
change over tokens (padding left out) and the Jensen-Shannon divergence of two patterns."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float


class Moments:
    """Count, sum and sum of squares per unit, folded batch by batch (float64)."""

    def __init__(self, shape: tuple[int, ...]):
        self.count = torch.zeros(shape, dtype=torch.float64)
        self.total = torch.zeros(shape, dtype=torch.float64)
        self.squares = torch.zeros(shape, dtype=torch.float64)

    def add(self, values: torch.Tensor, weight: torch.Tensor, at: tuple) -> None:
        """``values [sample, unit]`` with ``weight [sample]`` (1 = counted) into ``[at]``."""
        values, weight = values.double(), weight.double()[:, None]
        self.count[at] += weight.sum()
        self.total[at] += (values * weight).sum(0)
        self.squares[at] += (values.square() * weight).sum(0)

    def mean(self) -> torch.Tensor:
        return (self.total / self.count).float()

    def std(self) -> torch.Tensor:
        mean = self.total / self.count
        return (self.squares / self.count - mean.square()).clamp_min(0).sqrt().float()


def samples(act: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``[sample, unit]`` and ``[sample]`` weights from ``[b, unit]``, ``[b, pos, unit]``
    (masked by ``mask [b, pos]``) or a conv's ``[b, channel, h, w]``."""
    if act.ndim == 2:
        return act, torch.ones(act.shape[0])
    if act.ndim == 3:
        weight = torch.ones(act.shape[:2]) if mask is None else mask.float()
        return act.flatten(0, 1), weight.flatten()
    flat = act.flatten(2).transpose(1, 2).flatten(0, 1)  # [b * h * w, channel]
    return flat, torch.ones(flat.shape[0])


def js_divergence(
    p: Float[torch.Tensor, "batch head query key"], q: Float[torch.Tensor, "batch head query key"]
) -> Float[torch.Tensor, "batch head query"]:
    """Jensen-Shannon divergence in bits of each query's attention distribution."""
    p, q = p.double(), q.double()
    m = (p + q) / 2
    kl = lambda x: (torch.xlogy(x, x) - torch.xlogy(x, m)).sum(-1)
    return ((kl(p) + kl(q)) / (2 * math.log(2))).clamp_min(0)
