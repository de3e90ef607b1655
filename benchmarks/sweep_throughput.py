"""Throughput of ``explorer.sweep`` against a plain loop of the same runs, and its overhead.

Three comparisons, on N short grokking runs (``CI_SETTING`` shrunk: p, steps and width
below), each point trained once per arm in its own folder:

1. a sweep on the local Ray started in-process (2 CPUs) vs a sequential loop calling
   ``train_grokking`` on each setting (target: >= 1.7x on 2 cores). Ray's start-up is
   timed apart (``ray_start_s``) and not counted: it is paid once per session;
2. a sweep on a local two-process Ray cluster (``ray start --head`` + a worker, through
   ``ray://``) vs the in-process sweep (target: >= 0.9x);
3. the sweep's overhead per run: the serial sweep (``executor="serial"``: the same work
   as the loop plus weight change, gradient noise, the replayed study measures, the
   completion record) vs the loop (target: <= 5% of the training time).

Run: ``PYTHONPATH=. python -m benchmarks.sweep_throughput [--n 8] [--steps 300]``
(``--overhead-only``: comparison 3 alone, without Ray). Every
figure is wall time on whatever else the machine is doing: on a shared machine they are
pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from explorer.studies.grokking import train_grokking
from explorer.sweep import STUDIES, shutdown_ray, sweep
from explorer.sweep.studies import _grokking_setting

BENCHMARK = "sweep throughput"


class _Shown(dict):
    """A dict that prints each figure as it is measured (a long run shows its progress)."""

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        print(f"{key}: {value:.4g}", file=sys.stderr, flush=True)


def _points(n: int) -> list[dict]:
    wds = [0.3, 1.0]
    return [{"weight_decay": wds[i % 2], "seed": i // 2} for i in range(n)]


def _loop(base: dict, points: list[dict], folder: Path) -> float:
    start = time.perf_counter()
    for i, p in enumerate(points):
        settings = STUDIES["grokking"].settings(p, base)
        train_grokking(folder / f"r{i}", _grokking_setting(settings), progress=False)
    return time.perf_counter() - start


def _timed_sweep(base: dict, points: list[dict], folder: Path, **kwargs) -> float:
    start = time.perf_counter()
    s = sweep("grokking", points=points, folder=folder, base=base, progress=False, **kwargs)
    assert not s.failed and len(s.ran) == len(points), (s.failed, s.ran)
    return time.perf_counter() - start


def run(
    n: int = 8, steps: int = 300, p: int = 23, cluster: bool = True, ray: bool = True
) -> dict[str, float]:
    torch.set_num_threads(1)
    base = {"p": p, "steps": steps, "d_model": 32, "eval_every": 10, "stop_key_frequencies": None}
    points = _points(n)
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    out: dict[str, float] = _Shown(n=n, steps=steps, p=p, cores=os.cpu_count() or 1)
    out["loop_s"] = _loop(base, points, tmp / "loop")
    out["serial_sweep_s"] = _timed_sweep(base, points, tmp / "serial", executor="serial")
    out["overhead_per_run"] = out["serial_sweep_s"] / out["loop_s"] - 1
    if not ray:
        return dict(out)
    start = time.perf_counter()
    _timed_sweep(base, points[:1], tmp / "warm", workers=2)  # starts Ray, warms 1 worker
    out["ray_start_s"] = time.perf_counter() - start
    out["ray_sweep_s"] = _timed_sweep(base, points, tmp / "ray", workers=2)
    shutdown_ray()
    out["speedup_vs_loop"] = out["loop_s"] / out["ray_sweep_s"]
    if cluster:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sweep"))
        from ray_cluster import local_cluster  # the tests' cluster, torn down on exit

        os.environ["RAY_AUTH_MODE"] = "disabled"
        with local_cluster(tmp) as address:
            _timed_sweep(base, points[:1], tmp / "cwarm", address=address)
            out["cluster_sweep_s"] = _timed_sweep(base, points, tmp / "cluster", address=address)
            shutdown_ray()
        out["cluster_vs_in_process"] = out["ray_sweep_s"] / out["cluster_sweep_s"]
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--p", type=int, default=23)
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--overhead-only", action="store_true", help="comparison 3 alone (no Ray)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    result = run(
        args.n, args.steps, args.p, cluster=not args.no_cluster, ray=not args.overhead_only
    )
    result["load_average_before"] = load
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
