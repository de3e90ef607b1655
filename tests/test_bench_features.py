"""Smoke test of the feature benchmarks (issue 26) at the tiny size: rows are there, finite,
and ours agrees with the loop it is timed against (the speed is reported, not asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_feature_ablation

torch.set_num_threads(1)


def test_the_feature_sweep_benchmark_matches_the_loop():
    (row,) = bench_feature_ablation.run("tiny")
    assert row.status == "ok" and row.benchmark == "feature ablation sweep"
    assert row.details["max_abs_diff"] <= bench_feature_ablation.TOLERANCE
    assert row.details["features"] == 32 and math.isfinite(row.ratio) and row.target


def test_the_feature_topk_benchmark_streams_the_shipped_sae_and_matches_cache_all():
    from benchmarks import bench_feature_topk

    memory, speed = bench_feature_topk.run("tiny")
    assert memory.benchmark == speed.benchmark == "top-k feature examples"
    assert memory.details["max_abs_diff"] <= bench_feature_topk.TOLERANCE
    # values float32 + example and position int64: 20 bytes per feature and k
    assert memory.details["topk_state_bytes"] == 256 * 4 * 20
    assert memory.details["tokens"] == 16 * 32 and "256 features" in memory.case
    assert math.isfinite(speed.ratio) and speed.unit == "tokens/s" and speed.target
