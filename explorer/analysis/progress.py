"""Progress measures over training: sparsity, weight norm, threshold crossings, and phases.

Nanda et al. (2023) split grokking into three phases read off the curves:

- **memorisation**: from the start until the training accuracy first reaches ``memorised``
  (99%): the network fits the training pairs, the test loss stays high.
- **circuit formation**: from there until the test loss starts its sharp fall; the
  generalising circuit grows inside the network (restricted loss falls, excluded loss
  rises) while test performance barely moves.
- **cleanup**: the test loss falls from near its peak to near its final value; weight
  decay removes the memorising components and the weight norm drops.

"Start of the fall" and "near its final value" are measured on the log of the test loss
after its peak: the fall has started once ``start_fraction`` of the total log-drop is done
and ended once ``end_fraction`` is (both documented defaults, adjustable).

>>> import torch
>>> round(gini(torch.tensor([0.0, 0.0, 0.0, 5.0])), 3), gini(torch.ones(4))
(0.75, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "Phase",
    "Phases",
    "detect_phases",
    "first_crossing",
    "gini",
    "weight_norm",
]


def gini(values: torch.Tensor | Sequence[float]) -> float:
    """Gini coefficient of ``|values|``: 0 when all are equal, ``(n-1)/n`` when one holds all.

    Used as the sparsity of a Fourier spectrum: it rises as the norm concentrates on a few
    key frequencies. Computed as ``(n + 1 - 2 Σ_i C_i / C_n) / n`` with ``C`` the cumulative
    sum of the sorted values.
    """
    x = torch.as_tensor(values, dtype=torch.float64).flatten().abs()
    if x.numel() == 0:
        raise ValueError("gini of an empty vector is undefined")
    if not torch.isfinite(x).all():
        raise ValueError("gini: values contain NaN or infinite entries")
    total = float(x.sum())
    if total == 0:
        return 0.0
    n = x.numel()
    cumulative = torch.sort(x).values.cumsum(0)
    return float((n + 1 - 2 * cumulative.sum() / total) / n)


def weight_norm(model: nn.Module | object) -> float:
    """Total L2 norm of every trainable parameter, ``sqrt(Σ w²)`` (accepts a ``ModelHandle``)."""
    module = getattr(model, "model", model)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"weight_norm needs an nn.Module or ModelHandle, got {type(model).__name__}"
        )
    squares = [p.detach().float().pow(2).sum() for p in module.parameters() if p.requires_grad]
    return math.sqrt(float(sum(squares))) if squares else 0.0


def first_crossing(
    steps: Sequence[int] | torch.Tensor,
    values: Sequence[float] | torch.Tensor,
    threshold: float,
    *,
    above: bool = True,
) -> int | None:
    """The first step whose value is ``>= threshold`` (``<=`` if ``above=False``), or None.

    >>> first_crossing([0, 10, 20, 30], [0.1, 0.5, 0.99, 1.0], 0.99)
    20
    """
    s, v = _as_curve(steps, values)
    hit = v >= threshold if above else v <= threshold
    where = torch.nonzero(hit)
    return int(s[where[0, 0]]) if len(where) else None


@dataclass(frozen=True)
class Phase:
    """One phase of training, ``[start, end)`` in steps."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Phases:
    """The phase boundaries of a run (None where the curves never got there).

    ``memorised``: first step with train accuracy >= the threshold; ``cleanup_start`` and
    ``cleanup_end``: where the test loss's fall begins and ends (see the module docstring);
    ``last_step``: the end of the curves.
    """

    memorised: int | None
    cleanup_start: int | None
    cleanup_end: int | None
    last_step: int

    @property
    def grokked(self) -> bool:
        return self.cleanup_end is not None

    def as_list(self) -> list[Phase]:
        """The phases reached, in order (the last one may still be open at ``last_step``)."""
        out: list[Phase] = []
        if self.memorised is None:
            return [Phase("memorisation", 0, self.last_step)]
        out.append(Phase("memorisation", 0, self.memorised))
        if self.cleanup_start is None:
            return [*out, Phase("circuit formation", self.memorised, self.last_step)]
        out.append(Phase("circuit formation", self.memorised, self.cleanup_start))
        end = self.cleanup_end if self.cleanup_end is not None else self.last_step
        out.append(Phase("cleanup", self.cleanup_start, end))
        return out

    def phase_at(self, step: int) -> str:
        """Name of the phase containing ``step`` ("after cleanup" once it has ended)."""
        for phase in self.as_list():
            if phase.start <= step < phase.end:
                return phase.name
        return "after cleanup" if self.grokked else self.as_list()[-1].name


def detect_phases(
    steps: Sequence[int] | torch.Tensor,
    train_acc: Sequence[float] | torch.Tensor,
    test_loss: Sequence[float] | torch.Tensor,
    *,
    memorised: float = 0.99,
    start_fraction: float = 0.1,
    end_fraction: float = 0.9,
) -> Phases:
    """Find memorisation / circuit formation / cleanup from the training curves.

    Args:
        steps: increasing training steps of the curves.
        train_acc: training accuracy at each step.
        test_loss: test loss at each step (positive).
        memorised: train accuracy that ends memorisation.
        start_fraction, end_fraction: share of the test loss's total fall (in log space,
            from its peak after memorisation to its final value) that marks the start and
            end of cleanup.

    >>> phases = detect_phases([0, 10, 20, 30, 40, 50], [0.1, 1, 1, 1, 1, 1],
    ...                        [4.0, 5.0, 5.0, 1.0, 0.01, 0.01])
    >>> [(p.name, p.start, p.end) for p in phases.as_list()]
    [('memorisation', 0, 10), ('circuit formation', 10, 30), ('cleanup', 30, 40)]
    """
    s, acc = _as_curve(steps, train_acc)
    _, loss = _as_curve(steps, test_loss)
    if not 0 < start_fraction < end_fraction < 1:
        raise ValueError(
            f"need 0 < start_fraction < end_fraction < 1, got {start_fraction}, {end_fraction}"
        )
    if (loss <= 0).any():
        raise ValueError("test_loss must be positive (it is compared in log space)")
    last = int(s[-1])
    t_mem = first_crossing(s, acc, memorised)
    if t_mem is None:
        return Phases(None, None, None, last)
    after = s >= t_mem
    log_loss = loss.log()
    idx = torch.nonzero(after).flatten()
    peak_i = int(idx[torch.argmax(log_loss[idx])])
    hi, lo = float(log_loss[peak_i]), float(log_loss[-1])
    if hi - lo <= 1e-9:
        return Phases(t_mem, None, None, last)
    tail_s, tail = s[peak_i:], log_loss[peak_i:]
    start = first_crossing(tail_s, tail, hi - start_fraction * (hi - lo), above=False)
    end = first_crossing(tail_s, tail, hi - end_fraction * (hi - lo), above=False)
    return Phases(t_mem, start, end, last)


def _as_curve(
    steps: Sequence[int] | torch.Tensor, values: Sequence[float] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(steps).flatten()
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if s.numel() == 0:
        raise ValueError("the curve is empty: no steps")
    if s.shape != v.shape:
        raise ValueError(f"steps has {s.numel()} entries but values has {v.numel()}")
    if (s[1:] <= s[:-1]).any():
        raise ValueError("steps must be strictly increasing")
    if torch.isnan(v).any():
        raise ValueError("the curve contains NaN values")
    return s, v
