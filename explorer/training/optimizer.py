"""``OptimizerConfig``: a run's optimizer as data, recorded in the manifest to resume it.

>>> cfg = OptimizerConfig("adamw", lr=1e-3, warmup_steps=10)
>>> cfg.lr_at(0), cfg.lr_at(50)
(0.0001, 0.001)
>>> type(cfg.build(torch.nn.Linear(2, 1).parameters())).__name__
'AdamW'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["OptimizerConfig"]


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer and its hyperparameters, recorded in the run so it can be resumed.

    ``warmup_steps`` ramps the learning rate linearly from ``lr / warmup_steps`` to ``lr``.
    ``grad_clip`` clips the global gradient norm (None: no clipping).
    """

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.0
    warmup_steps: int = 0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.name not in ("adamw", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.name!r}: choose 'adamw', 'adam' or 'sgd'")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")

    def build(self, params: Any) -> torch.optim.Optimizer:
        if self.name == "adamw":
            return torch.optim.AdamW(
                params, lr=self.lr, weight_decay=self.weight_decay, betas=self.betas
            )
        if self.name == "adam":
            return torch.optim.Adam(
                params, lr=self.lr, weight_decay=self.weight_decay, betas=self.betas
            )
        return torch.optim.SGD(
            params, lr=self.lr, weight_decay=self.weight_decay, momentum=self.momentum
        )

    def lr_at(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out
