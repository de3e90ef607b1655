"""Progress measures over training: sparsity, weight norm, threshold crossings, and phases.

Nanda et al. (2023) split grokking into three phases, read off the progress measures
(``explorer.analysis.fourier``) next to the test loss:

- **memorisation**: from the start until the training accuracy first reaches ``memorized``
  (99%): the network fits the training pairs; the test loss stays high.
- **circuit formation**: the restricted loss (the loss of the key-frequency part of the
  logits) falls while the test loss stays flat: the generalising circuit grows inside the
  network before test performance moves.
- **cleanup**: the excluded loss (the training loss with the key frequencies removed) rises
  while the test loss falls: weight decay removes the memorising components.

``detect_phases`` turns "falls", "rises" and "flat" into thresholds measured from each
curve's value when memorisation ends (``fraction`` = 0.1 by default):

- the restricted loss *is falling* once it is ``fraction`` below that value (10% lower);
- the excluded loss *is rising* once it is ``fraction`` above that value;
- the test loss *stays flat* until it has made ``fraction`` of its whole fall (in log
  space, from its highest point after memorisation to its final value; it falls by orders
  of magnitude, and a brief dip during circuit formation is not its fall), and *has
  finished falling* once it has made ``1 - fraction`` of it.

Circuit formation starts when the restricted loss is falling and ends when the test loss
starts to fall; cleanup starts there, provided the excluded loss is rising, and ends when
the excluded loss stops rising (its peak) or the test loss has finished falling.

>>> import torch
>>> round(gini(torch.tensor([0.0, 0.0, 0.0, 5.0])), 3), gini(torch.ones(4))
(0.75, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explorer.analysis._display import Shown, pandas
from explorer.models.handle import ModelHandle

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


def weight_norm(model: nn.Module | ModelHandle) -> float:
    """Total L2 norm of every trainable parameter, ``sqrt(Σ w²)`` (accepts a ``ModelHandle``)."""
    if not isinstance(model, (nn.Module, ModelHandle)):
        raise TypeError(
            f"weight_norm needs an nn.Module or ModelHandle, got {type(model).__name__}"
        )
    squares = [p.detach().float().pow(2).sum() for p in model.parameters() if p.requires_grad]
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


@dataclass(frozen=True, repr=False)
class Phases(Shown):
    """The phase boundaries of a run (None where the curves never got there).

    ``memorized``: first step with train accuracy >= the threshold; ``circuit_start``: the
    restricted loss has started to fall; ``cleanup_start``: the test loss has started to
    fall (and the excluded loss is rising); ``cleanup_end``: the test loss has finished
    falling or the excluded loss rising; ``last_step``: the end of the curves.
    """

    memorized: int | None
    circuit_start: int | None
    cleanup_start: int | None
    cleanup_end: int | None
    last_step: int

    @property
    def grokked(self) -> bool:
        return self.cleanup_end is not None

    def as_list(self) -> list[Phase]:
        """The phases reached, in order (the last one may still be open at ``last_step``).

        Between the end of memorisation and ``circuit_start`` (if later) no phase is named.
        """
        if self.memorized is None:
            return [Phase("memorisation", 0, self.last_step)]
        out = [Phase("memorisation", 0, self.memorized)]
        if self.circuit_start is not None:
            end = self.cleanup_start if self.cleanup_start is not None else self.last_step
            if end > self.circuit_start:
                out.append(Phase("circuit formation", self.circuit_start, end))
        if self.cleanup_start is not None:
            end = self.cleanup_end if self.cleanup_end is not None else self.last_step
            out.append(Phase("cleanup", self.cleanup_start, end))
        return out

    def phase_at(self, step: int) -> str:
        """Name of the phase containing ``step`` ("after cleanup" once it has ended)."""
        for phase in self.as_list():
            if phase.start <= step < phase.end:
                return phase.name
        if self.grokked and step >= int(self.cleanup_end):  # type: ignore[arg-type]
            return "after cleanup"
        return "between phases" if step < self.last_step else self.as_list()[-1].name

    def to_dataframe(self) -> Any:
        """One row per phase reached (``as_list``), indexed by name: ``start`` and ``end``."""
        phases = self.as_list()
        return pandas().DataFrame(
            {"start": [p.start for p in phases], "end": [p.end for p in phases]},
            index=pandas().Index([p.name for p in phases], name="phase"),
        )

    def _summary(self) -> str:
        return f"{'grokked' if self.grokked else 'not grokked'} by step {self.last_step}"

    def _top(self) -> list[str]:
        return [f"{p.name} {p.start}..{p.end}" for p in self.as_list()]

    def _table(self) -> tuple:
        rows = [(p.name, p.start, p.end) for p in self.as_list()]
        return "Training phases", ("phase", "start", "end"), rows, self._summary()


def detect_phases(
    steps: Sequence[int] | torch.Tensor,
    train_acc: Sequence[float] | torch.Tensor,
    test_loss: Sequence[float] | torch.Tensor,
    restricted_loss: Sequence[float] | torch.Tensor,
    excluded_loss: Sequence[float] | torch.Tensor,
    *,
    memorized: float = 0.99,
    fraction: float = 0.1,
) -> Phases:
    """Find memorisation / circuit formation / cleanup from the progress measures.

    Args:
        steps: increasing training steps (e.g. the checkpoints of a run).
        train_acc: training accuracy at each step.
        test_loss, restricted_loss, excluded_loss: the losses at each step (positive; see
            ``explorer.analysis.fourier``).
        memorized: train accuracy that ends memorisation.
        fraction: the thresholds of the module docstring, in ``(0, 0.5)``.

    >>> steps = [0, 10, 20, 30, 40, 50, 60]
    >>> acc = [0.1, 1, 1, 1, 1, 1, 1]
    >>> test = [4.0, 9.0, 9.0, 9.0, 1.0, 0.01, 0.01]
    >>> restricted = [4.0, 4.0, 1.0, 0.1, 0.01, 0.001, 0.001]
    >>> excluded = [4.0, 0.01, 0.1, 1.0, 5.0, 20.0, 19.0]
    >>> phases = detect_phases(steps, acc, test, restricted, excluded)
    >>> [(p.name, p.start, p.end) for p in phases.as_list()]
    [('memorisation', 0, 10), ('circuit formation', 20, 40), ('cleanup', 40, 50)]
    """
    s, acc = _as_curve(steps, train_acc)
    curves = {}
    for name, values in (("test", test_loss), ("restricted", restricted_loss),
                         ("excluded", excluded_loss)):  # fmt: skip
        _, v = _as_curve(steps, values)
        if (v <= 0).any():
            raise ValueError(f"{name}_loss must be positive (it is compared in log space)")
        curves[name] = v
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction must be in (0, 0.5), got {fraction!r}")
    last = int(s[-1])
    t_mem = first_crossing(s, acc, memorized)
    if t_mem is None:
        return Phases(None, None, None, None, last)
    i0 = int(torch.nonzero(s == t_mem)[0, 0])
    after = s[i0:]
    restricted, excluded = curves["restricted"][i0:], curves["excluded"][i0:]
    test = curves["test"][i0:].log()

    circuit = _first(after, restricted <= (1 - fraction) * restricted[0])
    peak = int(torch.argmax(test))
    t_fall = float(test[peak] - test[-1])
    if t_fall <= 0:
        return Phases(t_mem, circuit, None, None, last)
    from_peak = torch.arange(len(test)) >= peak
    falling = from_peak & (test <= test[peak] - fraction * t_fall)
    rising = excluded >= (1 + fraction) * excluded[0]
    start = _first(after, falling & rising)
    if start is None:
        return Phases(t_mem, circuit, None, None, last)
    later = after > start
    e_peak = int(torch.argmax(torch.where(after >= start, excluded, -torch.inf)))
    fell = from_peak & (test <= test[peak] - (1 - fraction) * t_fall)
    end = _first(after, later & (fell | (torch.arange(len(test)) >= e_peak)))
    return Phases(t_mem, circuit, start, end, last)


def _first(steps: torch.Tensor, mask: torch.Tensor) -> int | None:
    where = torch.nonzero(mask)
    return int(steps[where[0, 0]]) if len(where) else None


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
