"""When to save checkpoints: denser early and wherever a watched metric moves.

Training changes fastest at the start (so log-spaced steps), then steadily (regular
steps), and sometimes abruptly later (grokking, induction-head formation): ``on_change``
adds a checkpoint at any evaluation where a watched metric has moved by more than a
given amount since the last checkpoint.

>>> CheckpointSchedule(n_log=5, every=50).planned(100)
(0, 1, 3, 10, 32, 50, 100)
>>> CheckpointSchedule(n_log=0, every=1).is_planned(123_456_789, 10**9)  # no list is built
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CheckpointSchedule", "log_spaced"]

#: ``planned`` lists at most this many steps; ``is_planned`` answers for any budget.
MAX_LISTED = 1_000_000


def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def log_spaced(budget: int, n: int) -> tuple[int, ...]:
    """About ``n`` distinct steps spaced evenly in log from 1 to ``budget``.

    >>> log_spaced(1000, 4)
    (1, 10, 100, 1000)
    """
    _whole("budget", budget, 0)
    _whole("n", n, 0)
    if budget < 1 or n < 1:
        return ()
    if n == 1:
        return (budget,)
    ratio = math.log(budget) / (n - 1)
    return tuple(sorted({round(math.exp(ratio * i)) for i in range(n)}))


@dataclass(frozen=True)
class CheckpointSchedule:
    """Which steps get a checkpoint (step 0 and the last step always do).

    Args:
        n_log: log-spaced steps between 1 and the budget.
        every: a checkpoint every ``every`` steps (None: none).
        steps: extra explicit steps.
        on_change: ``{metric name: amount}``: at an evaluation step, save a checkpoint when
            that metric has changed by more than ``amount`` since the last checkpoint (e.g.
            ``{"test_acc": 0.05}`` puts checkpoints where test accuracy climbs).
    """

    n_log: int = 20
    every: int | None = None
    steps: tuple[int, ...] = ()
    on_change: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _whole("n_log", self.n_log, 0)
        if self.n_log > MAX_LISTED:
            raise ValueError(f"n_log must be at most {MAX_LISTED:,}, got {self.n_log:,}")
        if self.every is not None:
            _whole("every (a positive number of steps)", self.every, 1)
        object.__setattr__(self, "steps", tuple(sorted({int(s) for s in self.steps})))
        if any(s < 0 for s in self.steps):
            raise ValueError(f"checkpoint steps must be >= 0, got {self.steps}")
        for name, amount in self.on_change.items():
            if not amount > 0:
                raise ValueError(f"on_change[{name!r}] must be a positive amount, got {amount}")

    def planned(self, budget: int) -> tuple[int, ...]:
        """The fixed checkpoint steps for a run of ``budget`` steps (at most ``MAX_LISTED``:
        beyond that, ask ``is_planned`` step by step)."""
        _whole("budget", budget, 0)
        if self.every and budget // self.every > MAX_LISTED:
            raise ValueError(
                f"CheckpointSchedule(every={self.every}) plans {budget // self.every + 1:,} "
                f"checkpoints for {budget:,} steps, more than the {MAX_LISTED:,} it lists: "
                "ask is_planned(step, budget) step by step, or choose a larger every"
            )
        planned = {0, budget, *log_spaced(budget, self.n_log)}
        if self.every:
            planned.update(range(0, budget + 1, self.every))
        planned.update(s for s in self.steps if s <= budget)
        return tuple(sorted(planned))

    def is_planned(self, step: int, budget: int) -> bool:
        """Whether ``step`` gets a fixed checkpoint in a run of ``budget`` steps (computed
        without listing them, so any budget works)."""
        _whole("budget", budget, 0)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= budget:
            return False
        if step in (0, budget) or step in self.steps:
            return True
        if self.every and step % self.every == 0:
            return True
        return self.n_log > 0 and step in self._log_steps(budget)

    def _log_steps(self, budget: int) -> frozenset[int]:
        key = (budget, self.n_log)
        cache = self.__dict__.setdefault("_log_cache", {})
        if key not in cache:
            cache.clear()
            cache[key] = frozenset(log_spaced(budget, self.n_log))
        return cache[key]

    def changed(self, latest: Mapping[str, float], at_last_checkpoint: Mapping[str, float]) -> bool:
        """Whether a watched metric moved enough since the last checkpoint."""
        for name, amount in self.on_change.items():
            now, before = latest.get(name), at_last_checkpoint.get(name)
            if now is None or before is None:
                continue
            if math.isfinite(now) and math.isfinite(before) and abs(now - before) > amount:
                return True
        return False

    def to_dict(self) -> dict[str, object]:
        return {
            "n_log": self.n_log,
            "every": self.every,
            "steps": list(self.steps),
            "on_change": dict(self.on_change),
        }
