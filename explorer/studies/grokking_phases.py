"""The three phases of grokking, read off a run's curves and progress measures (a recipe).

Nanda et al. (2023) split grokking into three phases, read off the progress measures
(``explorer.analysis.fourier``: restricted and excluded loss) next to the test loss. The
rules below were tuned on grokking runs of modular addition (tests/studies/
test_grokking_phases.py holds them to runs they were not tuned on); they fit no other
curve, so they live with the grokking study. ``explorer.analysis.curves`` holds the
general curve readers (``first_crossing``, ``detect_phase_change``).

- **memorisation**: from the start until the training accuracy first reaches ``memorized``
  (99%): the network fits the training pairs; the test loss stays high.
- **circuit formation**: the restricted loss (the loss of the key-frequency part of the
  logits) falls while the test loss stays flat: the generalising circuit grows inside the
  network before test performance moves.
- **cleanup**: the excluded loss (the training loss with the key frequencies removed) rises
  while the test loss falls: weight decay removes the memorising components.

``detect_phases`` reads the logged curves (train accuracy, test accuracy and test loss at
every logged epoch) and the progress measures (often taken at fewer steps, the checkpoints,
and interpolated onto the logged epochs on a log scale), so every boundary is a logged
epoch. Each loss is read through a running median over ``window`` rows (5 by default; 3 for
measures taken at checkpoints): an optimizer spike of a row or two (Adam's, at high learning
rates: train accuracy dips, the test loss jumps) moves no boundary. "Falls" and "rises" are
thresholds measured from each curve's value when memorisation ends (``fraction`` = 0.1):

- memorisation ends at the first logged epoch where train accuracy reaches ``memorized``;
- circuit formation starts when the restricted loss is ``fraction`` (10%) below its value at
  the end of memorisation, and stays there for ``window`` rows;
- cleanup is the test loss's last, lasting fall. The fall is measured in log space from the
  test loss's usual level between memorisation and the rise of test accuracy (the median
  of those rows, which a spike or a bump does not move) to its lowest. Cleanup starts at
  the first epoch after which the test loss stays more than ``fraction`` of that fall below
  the level, and ends once it has made ``1 - fraction`` of it. It always holds the rise of
  test accuracy, from the last epoch under 50% to the first over 95% (it starts by the
  first, ends after the second, and stays open until test accuracy has passed 95%); and it
  needs the excluded loss to rise (``fraction`` above its value when memorisation ended)
  within it, else the test loss fell without the key frequencies and no cleanup is named.

Circuit formation ends where cleanup starts. Between the end of memorisation and the start
of circuit formation no phase is named. A grokking run's stop rule (``_StopAfterCleanup``:
generalised, then sparse enough or no longer sparsifying) lives here too.

>>> phases = Phases(memorized=10, circuit_start=20, cleanup_start=30, cleanup_end=60,
...                 last_step=80)
>>> phases.phase_at(25), phases.phase_at(70)
('circuit formation', 'after cleanup')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from explorer._checks import check_curve
from explorer._display import Shown, pandas
from explorer.analysis.curves import first_crossing

__all__ = ["Phase", "Phases", "detect_phases"]


@dataclass(frozen=True)
class Phase:
    """One phase of training, ``[start, end)`` in steps."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, repr=False)
class Phases(Shown):
    """The phase boundaries of a run (None where the curves never got there).

    Each is a logged epoch. ``memorized``: first epoch with train accuracy >= the
    threshold; ``circuit_start``: the restricted loss has started to fall;
    ``cleanup_start``: the test loss's last fall has started (by the last epoch with test
    accuracy under 50%); ``cleanup_end``: the test loss has finished falling, after test
    accuracy passed 95% (None while it has not); ``last_step``: the end of the curves.
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
        """One row per phase reached (``as_list``): ``phase`` (its name), ``start``, ``end``."""
        phases = self.as_list()
        return pandas().DataFrame(
            {
                "phase": [p.name for p in phases],
                "start": [p.start for p in phases],
                "end": [p.end for p in phases],
            }
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
    test_acc: Sequence[float] | torch.Tensor,
    measured_at: Sequence[int] | torch.Tensor | None = None,
    memorized: float = 0.99,
    fraction: float = 0.1,
    window: int = 5,
) -> Phases:
    """Find memorisation / circuit formation / cleanup from the logged curves and the
    progress measures (the rules are in the module docstring).

    Every boundary is one of ``steps`` (the logged epochs), also where the restricted and
    excluded losses were measured at fewer steps (``measured_at``, e.g. the checkpoints):
    they are interpolated onto ``steps`` on a log scale.

    Args:
        steps: increasing logged training steps (e.g. every metrics row of a run).
        train_acc, test_acc, test_loss: training accuracy, test accuracy and test loss at
            each of ``steps``.
        restricted_loss, excluded_loss: the progress measures (positive; see
            ``explorer.analysis.fourier``) at each of ``measured_at`` (default ``steps``).
        measured_at: increasing steps where the progress measures were taken.
        memorized: train accuracy that ends memorisation.
        fraction: the thresholds of the module docstring, in ``(0, 0.5)``.
        window: rows of the running median that the losses are read through (odd, >= 1;
            3 for progress measures taken at fewer steps): a spike shorter than half of it
            moves no boundary.

    >>> steps = [0, 10, 20, 30, 40, 50, 60]
    >>> acc = [0.1, 1, 1, 1, 1, 1, 1]
    >>> test_acc = [0.0, 0.0, 0.0, 0.1, 0.6, 0.99, 1.0]
    >>> test = [4.0, 9.0, 9.0, 9.0, 1.0, 0.01, 0.01]
    >>> restricted = [4.0, 4.0, 1.0, 0.1, 0.01, 0.001, 0.001]
    >>> excluded = [4.0, 0.01, 0.1, 1.0, 5.0, 20.0, 19.0]
    >>> phases = detect_phases(steps, acc, test, restricted, excluded, test_acc=test_acc,
    ...                        window=1)
    >>> [(p.name, p.start, p.end) for p in phases.as_list()]
    [('memorisation', 0, 10), ('circuit formation', 20, 30), ('cleanup', 30, 60)]
    """
    s, acc = check_curve(steps, train_acc)
    _, t_acc = check_curve(steps, test_acc, name="test_acc")
    at = s if measured_at is None else torch.as_tensor(measured_at).flatten()
    logs = {}
    for name, grid, values in (("test", s, test_loss), ("restricted", at, restricted_loss),
                               ("excluded", at, excluded_loss)):  # fmt: skip
        _, v = check_curve(grid, values, name=f"{name}_loss")
        if (v <= 0).any():
            raise ValueError(f"{name}_loss must be positive (it is compared in log space)")
        logs[name] = v.log()
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction must be in (0, 0.5), got {fraction!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of rows >= 1, got {window!r}")
    last = int(s[-1])
    t_mem = first_crossing(s, acc, memorized)
    if t_mem is None:
        return Phases(None, None, None, None, last)
    i0 = int(torch.nonzero(s == t_mem)[0, 0])
    coarse = window if measured_at is None else min(window, 3)
    test = _running_median(logs["test"], window)
    restricted = _on_steps(s, at, _running_median(logs["restricted"], coarse))
    excluded = _on_steps(s, at, _running_median(logs["excluded"], coarse))
    rows = torch.arange(len(s))

    below = restricted <= restricted[i0] + math.log(1 - fraction)
    circuit = _first(s, (rows >= i0) & _persists(below, window))

    # the rise of test accuracy that cleanup holds: its last row under 50%, its first over 95%
    over = torch.nonzero((rows >= i0) & (t_acc > 0.95))
    hi = int(over[0, 0]) if len(over) else None
    under = torch.nonzero((rows < (len(s) if hi is None else hi)) & (t_acc < 0.5))
    lo = int(under[-1, 0]) if len(under) else None
    # the test loss falls from its usual level between memorisation and that rise (a median:
    # a spike or an early bump does not set it) to its lowest
    level = test[i0 : max(i0, lo if lo is not None else i0) + 1].median()
    drop = float(level - test[i0:].min())
    if drop <= 0:
        return Phases(t_mem, circuit, None, None, last)
    stop = hi if hi is not None else len(s) - 1
    above = torch.nonzero((rows >= i0) & (rows <= stop) & (test >= level - fraction * drop))
    begin = int(above[-1, 0]) + 1  # the first row of the last, lasting fall
    if lo is not None:
        begin = max(i0, min(begin, lo))
    if begin >= len(s):
        return Phases(t_mem, circuit, None, None, last)
    finish = len(s)  # cleanup is open until test accuracy has passed 95%
    if hi is not None:
        done = torch.nonzero((rows > begin) & (test <= level - (1 - fraction) * drop))
        finish = max(int(done[0, 0]) if len(done) else len(s), hi + 1)
    span = (rows >= begin) & (rows < finish)
    if not (excluded[span] >= excluded[i0] + math.log(1 + fraction)).any():
        return Phases(t_mem, circuit, None, None, last)  # the test loss fell on its own
    end = int(s[finish]) if finish < len(s) else None
    return Phases(t_mem, circuit, int(s[begin]), end, last)


def _running_median(values: torch.Tensor, window: int) -> torch.Tensor:
    """The median of each row and its ``window // 2`` neighbours on each side (the end rows
    repeated at the edges)."""
    half = window // 2
    if half == 0 or len(values) == 1:
        return values
    padded = torch.cat([values[:1].expand(half), values, values[-1:].expand(half)])
    return padded.unfold(0, window, 1).median(dim=1).values


def _on_steps(steps: torch.Tensor, at: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` measured at ``at``, linearly interpolated onto ``steps`` (held flat past
    either end)."""
    if torch.equal(steps, at):
        return values
    x, xp = steps.double(), at.double()
    right = torch.searchsorted(xp, x).clamp(1, len(xp) - 1) if len(xp) > 1 else None
    if right is None:
        return values.expand(len(steps)).clone()
    left = right - 1
    w = ((x - xp[left]) / (xp[right] - xp[left])).clamp(0, 1)
    return values[left] + w * (values[right] - values[left])


def _persists(mask: torch.Tensor, rows: int) -> torch.Tensor:
    """True where ``mask`` holds on this row and the next ``rows - 1`` (or to the end)."""
    out = mask.clone()
    for k in range(1, rows):
        out[:-k] &= mask[k:]
    return out


def _first(steps: torch.Tensor, mask: torch.Tensor) -> int | None:
    where = torch.nonzero(mask)
    return int(steps[where[0, 0]]) if len(where) else None


class _StopAfterCleanup:
    """``stop_when`` of a grokking run: generalised, then sparse enough or no longer sparsifying.

    Reads the logged ``test_acc`` and ``embedding_key_frequencies`` (see ``embedding_sparsity``).
    The plateau is counted from the later of generalisation and the last new minimum.
    """

    def __init__(self, max_key: int, plateau: int, threshold: float = 0.99) -> None:
        self.max_key, self.plateau, self.threshold = max_key, plateau, threshold
        self.generalised = False
        self.best: tuple[float, int] | None = None  # (fewest key frequencies, first step seen)

    def __call__(self, latest: Mapping[str, float]) -> bool:
        step, n_key = int(latest["step"]), latest.get("embedding_key_frequencies")
        if n_key is None:
            return False
        if self.best is None or n_key < self.best[0]:
            self.best = (n_key, step)
        if not self.generalised:
            if latest.get("test_acc", 0.0) < self.threshold:
                return False
            self.generalised = True
            self.best = (self.best[0], step)  # the plateau is counted from generalisation on
        return n_key <= self.max_key or step - self.best[1] >= self.plateau
