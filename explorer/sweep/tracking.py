"""Progress of a running sweep: ``SweepProgress`` (what a callback or a widget is given) and
the tracker ``sweep`` updates as points start and finish (a tqdm bar, time left).

>>> p = SweepProgress(total=4, done=1, running=2, failed=0, pending=1, reused=0,
...                   elapsed_s=10.0, eta_s=30.0)
>>> str(p)
'1/4 runs done, 2 running, 0 failed (0 finished earlier); 10 s elapsed, about 30 s left'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SweepProgress"]


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep stands: points ``done`` (this call), ``running``, ``failed``, ``pending``
    (not started), of ``total`` to run; ``reused`` were finished before this call."""

    total: int
    done: int
    running: int
    failed: int
    pending: int
    reused: int
    elapsed_s: float
    eta_s: float | None

    def __str__(self) -> str:
        left = "?" if self.eta_s is None else f"{self.eta_s:.0f} s"
        return (
            f"{self.done}/{self.total} runs done, {self.running} running, {self.failed} failed "
            f"({self.reused} finished earlier); {self.elapsed_s:.0f} s elapsed, about {left} left"
        )


class _Tracker:
    """Counts a sweep's points as they start and finish; reports ``SweepProgress``."""

    def __init__(
        self,
        total: int,
        reused: int,
        show: bool,
        callback: Callable[[SweepProgress], None] | None,
        name: str,
    ) -> None:
        self.total, self.reused, self.callback = total, reused, callback
        self.done = self.failed = self.running = 0
        self.start = time.perf_counter()
        self.seconds: list[float] = []
        self.bar = None
        if show and total:
            # lazy: tqdm.auto brings in ipywidgets in a notebook; only the bar needs it
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"sweep {name}", unit="run")

    def state(self) -> SweepProgress:
        elapsed = time.perf_counter() - self.start
        left = self.total - self.done - self.failed
        eta = None
        if self.done:
            per_run = elapsed / (self.done + self.failed)
            eta = per_run * left
        return SweepProgress(
            total=self.total, done=self.done, running=self.running, failed=self.failed,
            pending=max(0, left - self.running), reused=self.reused, elapsed_s=elapsed,
            eta_s=eta,
        )  # fmt: skip

    def started(self, running: int) -> None:
        self.running = running
        self._report()

    def finished(self, *, failed: bool = False, seconds: float = 0.0) -> None:
        if failed:
            self.failed += 1
        else:
            self.done += 1
            self.seconds.append(seconds)
        if self.bar is not None:
            self.bar.update(1)
        self.running = min(self.running, self.total - self.done - self.failed)
        self._report()

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix(running=self.running, failed=self.failed, refresh=False)

    def _report(self) -> None:
        self.tick()
        if self.callback is not None:
            self.callback(self.state())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
