"""Timing on a noisy machine: interleave the contenders and keep each one's best run.

Running ours and the naive way alternately (not all of one, then all of the other) means
a burst of load from someone else's job hits both; the minimum over repeats is the run
least disturbed, which is the usual estimator when others share the CPU. On one torch
thread the clock is the process's CPU time, which waiting for a busy CPU does not add to
(it still counts cache and memory contention, so loaded numbers stay somewhat slower).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def best_of(
    contenders: dict[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: bool = False,
    clock: Callable[[], float] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``(best seconds, last result)`` per contender, run ``repeats`` times interleaved.

    ``clock`` defaults to ``cpu_clock()``: this process's CPU seconds when torch runs on
    one thread (others' load on a shared machine cannot inflate them), wall time otherwise.
    """
    clock = clock or cpu_clock() or time.perf_counter
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup:  # first calls pay lazy imports and allocator growth
        for fn in contenders.values():
            fn()
    best = {name: float("inf") for name in contenders}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in contenders.items():
            gc.collect()
            start = clock()
            results[name] = fn()
            best[name] = min(best[name], clock() - start)
    return best, results


def clock_name() -> str:
    """``"cpu"`` or ``"wall"``: what ``best_of`` measures by default right now."""
    return "cpu" if cpu_clock() else "wall"


def cpu_clock() -> Callable[[], float] | None:
    """This process's CPU time when torch computes on one thread, else None (several
    threads would add up their seconds)."""
    import torch

    return time.process_time if torch.get_num_threads() == 1 else None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
