"""Counting what a handle runs: ``Spent`` (forward and backward passes, examples) and the
module hooks that fill it, so every pass counts however it was called (budgets read it).

>>> from explorer.models import zoo
>>> m = zoo.mnist_mlp(hidden=(8,))
>>> _ = m(torch.zeros(3, 1, 28, 28))
>>> m.spent
Spent(forward=1, backward=0, examples=3)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["PassCounter", "Spent"]


class Spent:
    """What a handle has run: forward and backward passes (model calls) and examples.

    >>> s = Spent(); s.forward, s.backward, s.examples
    (0, 0, 0)
    """

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.examples = 0

    def snapshot(self) -> tuple[int, int, int]:
        return (self.forward, self.backward, self.examples)

    def __repr__(self) -> str:
        return f"Spent(forward={self.forward}, backward={self.backward}, examples={self.examples})"


class PassCounter:
    """Hooks on the model's module that count every pass into ``spent``: analysis also runs
    ``handle.model(...)`` directly (captum, editing, interventions), and those passes are
    spent too. A backward pass is counted once per forward pass whose output it reaches.
    A deep copy of the module gets an inert counter (the copy's own handle counts it)."""

    def __init__(self, spent: Spent | None) -> None:
        self.spent = spent

    def __deepcopy__(self, memo: dict[int, Any]) -> PassCounter:
        return PassCounter(None)

    def forward(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.spent is None:
            return
        self.spent.forward += 1
        first = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(first, torch.Tensor) and first.ndim > 0:
            self.spent.examples += len(first)

    def watch_backward(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        tensor = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
        if self.spent is not None and isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            tensor.register_hook(self.backward)

    def backward(self, grad: torch.Tensor) -> None:
        if self.spent is not None:
            self.spent.backward += 1
