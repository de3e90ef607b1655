"""Timing on a noisy machine: interleave the contenders and keep each one's best run.

Running ours and the naive way alternately (not all of one, then all of the other) means
a burst of load from someone else's job hits both; the minimum over repeats is the run
least disturbed, which is the usual estimator when others share the CPU.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def best_of(
    contenders: dict[str, Callable[[], Any]], repeats: int, *, warmup: bool = False
) -> tuple[dict[str, float], dict[str, Any]]:
    """``(best seconds, last result)`` per contender, run ``repeats`` times interleaved."""
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
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
