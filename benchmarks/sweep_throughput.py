"""Throughput of ``explorer.sweep`` against a plain loop of the same runs, and its overhead.

N short grokking runs (``CI_SETTING`` shrunk: p, steps and width below), each point
trained once per arm in its own folder, every arm side by side in each of ``--rounds``
rounds (3 by default: the machine is shared, so each figure is reported per round and as
the median, with the load average before and after each round). Every process is made
ready first, as a sweep's Ray workers are (``warm_worker``: the imports, transformer-lens
included, about 5 s on a quiet 2-core machine): that is paid once per session, timed apart
(``ray_start_s``), and counted for no arm.

Arms, per round:

1. ``loop``: ``train_grokking`` on each setting, one after another, in this process;
2. ``serial``: ``sweep(executor="serial")``, the loop's work plus weight change, gradient
   noise, the study measures and the completion record: the overhead per run against the
   loop (target <= 5%); and ``serial_naive``, the same with the study measures replayed
   after training from each checkpoint on disk (``finish``, the way before
   ``LiveGrokkingProgress``). The records split each run into ``train_seconds`` and
   ``measure_seconds``, measured within one process (steadier than the two totals);
3. ``two_processes``: the loop split over two plain Python processes (``multiprocessing``,
   no Ray): what two cores of this machine give at best;
4. ``ray``: the sweep on the local Ray started in-process with 2 CPUs, its workers ready
   (target: >= 1.7x the loop).

Once, before the rounds (``--no-cold`` skips it): ``ray_cold``, the same sweep on a Ray
whose workers were not made ready (the way before: a 1-point sweep started Ray, and a
worker that had run no point imported torch, explorer and transformer-lens inside the
timed sweep). ``--cluster``: also the sweep on a local two-process Ray cluster through
``ray://`` against the in-process one (target >= 0.9x), each round; its workers made ready
first as the in-process ones are (connecting and readying, ``cluster_connect_s``, untimed).

Run: ``PYTHONPATH=. python -m benchmarks.sweep_throughput [--n 8] [--steps 300]
[--rounds 3]`` (``--overhead-only``: arms 1 and 2 alone, without Ray; ``--no-overhead``: all
but arm 2). Every figure is wall
time on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from explorer.studies.grokking import train_grokking
from explorer.sweep import STUDIES, Sweep, shutdown_ray, sweep
from explorer.sweep import execute as _execute
from explorer.sweep.folder import warm_worker
from explorer.sweep.studies import _grokking_setting

BENCHMARK = "sweep throughput"
NAIVE = dataclasses.replace(STUDIES["grokking"], live=None)  # the replay from disk


def _say(key: str, value: Any) -> None:
    print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}",
          file=sys.stderr, flush=True)  # fmt: skip


def _points(n: int) -> list[dict]:
    wds = [0.3, 1.0]
    return [{"weight_decay": wds[i % 2], "seed": i // 2} for i in range(n)]


def _train_one(job: tuple[dict, dict, str]) -> float:
    base, point, folder = job
    torch.set_num_threads(1)
    settings = STUDIES["grokking"].settings(point, base)
    start = time.perf_counter()
    train_grokking(folder, _grokking_setting(settings), progress=False)
    return time.perf_counter() - start


def _ready(barrier: Any) -> None:
    """A pool process's start: ready as a Ray worker is, then wait for the other."""
    torch.set_num_threads(1)
    warm_worker()
    barrier.wait()


def _loop(base: dict, points: list[dict], folder: Path) -> float:
    start = time.perf_counter()
    for i, p in enumerate(points):
        _train_one((base, p, str(folder / f"r{i}")))
    return time.perf_counter() - start


def _timed_sweep(
    base: dict, points: list[dict], folder: Path, **kwargs: Any
) -> tuple[Sweep, float]:
    start = time.perf_counter()
    s = sweep(kwargs.pop("study", "grokking"), points=points, folder=folder, base=base,
              progress=False, **kwargs)  # fmt: skip
    seconds = time.perf_counter() - start
    assert not s.failed and len(s.ran) == len(points), (s.failed, s.ran)
    return s, seconds


def _split(s: Sweep) -> tuple[float, float]:
    """Median ``train_seconds`` and ``measure_seconds`` of a sweep's records."""
    records = list(s.records.values())
    return (
        statistics.median(r["train_seconds"] for r in records),
        statistics.median(r["measure_seconds"] for r in records),
    )


def _start_ray(workers: int, address: str | None = None) -> float:
    """Start the local Ray, or connect to the cluster at ``address``, and wait until its
    workers are ready (unless turned off). On a busy machine Ray's node can miss its fixed
    30 s start-up limit: tried up to 3 x 3 times."""
    start = time.perf_counter()
    for attempt in range(3):
        try:
            ray = _execute._ray(address, None if address else workers, None)
            break
        except Exception as err:
            if attempt == 2 or "timed out during startup" not in str(err):
                raise
            _say("ray start failed, again", str(err)[:80])
    ray.get(_execute._RAY["warming"])
    return time.perf_counter() - start


def _round(
    k: int,
    base: dict,
    points: list[dict],
    tmp: Path,
    pool: Any,
    ray: bool,
    cluster: Any,
    overhead: bool = True,
) -> dict[str, float]:
    out: dict[str, float] = {"load_before": os.getloadavg()[0]}
    here = tmp / f"round{k}"
    out["loop_s"] = _loop(base, points, here / "loop")
    if overhead:
        out.update(_overhead(base, points, here, out["loop_s"]))
    if ray:
        jobs = [(base, p, str(here / "two" / f"r{i}")) for i, p in enumerate(points)]
        start = time.perf_counter()
        pool.map(_train_one, jobs, chunksize=1)
        out["two_processes_s"] = time.perf_counter() - start
        _, out["ray_s"] = _timed_sweep(base, points, here / "ray", workers=2)
        out["speedup"] = out["loop_s"] / out["ray_s"]
        out["speedup_two_processes"] = out["loop_s"] / out["two_processes_s"]
        if cluster is not None:
            shutdown_ray()
            out["cluster_connect_s"] = _start_ray(2, cluster)  # ready, as the local one is
            _, out["cluster_s"] = _timed_sweep(base, points, here / "cluster", address=cluster)
            shutdown_ray()
            _start_ray(2)
            out["cluster_vs_in_process"] = out["ray_s"] / out["cluster_s"]
    out["load_after"] = os.getloadavg()[0]
    for key, value in out.items():
        _say(f"round {k} {key}", value)
    return out


def _overhead(base: dict, points: list[dict], here: Path, loop_s: float) -> dict[str, float]:
    """Arm 2: the serial sweep and its naive twin against the loop, and their records' split."""
    out: dict[str, float] = {}
    s, out["serial_s"] = _timed_sweep(base, points, here / "serial", executor="serial")
    out["train_s_per_run"], out["measure_s_per_run"] = _split(s)
    s, out["serial_naive_s"] = _timed_sweep(
        base, points, here / "naive", executor="serial", study=NAIVE
    )
    out["naive_train_s_per_run"], out["naive_measure_s_per_run"] = _split(s)
    out["overhead"] = out["serial_s"] / loop_s - 1
    out["overhead_naive"] = out["serial_naive_s"] / loop_s - 1
    out["measure_share"] = out["measure_s_per_run"] / out["train_s_per_run"]
    out["measure_share_naive"] = out["naive_measure_s_per_run"] / out["naive_train_s_per_run"]
    return out


def run(
    n: int = 8,
    steps: int = 300,
    p: int = 23,
    rounds: int = 3,
    ray: bool = True,
    cold: bool = True,
    cluster: bool = False,
    overhead: bool = True,
) -> dict[str, Any]:
    torch.set_num_threads(1)
    base = {"p": p, "steps": steps, "d_model": 32, "eval_every": 10, "stop_key_frequencies": None}
    points = _points(n)
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    out: dict[str, Any] = {"n": n, "steps": steps, "p": p, "cores": os.cpu_count() or 1}
    start = time.perf_counter()
    warm_worker()  # this process, as a worker: the loop and the serial sweeps run here
    out["ready_s"] = time.perf_counter() - start
    pool, address, stack = None, None, None
    if ray:
        if cold:  # the way before: workers not made ready, Ray started by a 1-point sweep
            shutdown_ray()
            _execute._RAY["warm"] = False
            try:
                out["ray_cold_start_s"] = _start_ray(2)
                _timed_sweep(base, points[:1], tmp / "cold-start", workers=2)  # 1 worker ran
                _, out["ray_cold_s"] = _timed_sweep(base, points, tmp / "cold", workers=2)
            finally:
                shutdown_ray()
                _execute._RAY["warm"] = True
            _say("ray_cold_s", out["ray_cold_s"])
        out["ray_start_s"] = _start_ray(2)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(3)
        pool = context.Pool(2, initializer=_ready, initargs=(barrier,))
        barrier.wait()
        if cluster:
            from contextlib import ExitStack

            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sweep"))
            from ray_cluster import local_cluster  # the tests' cluster, torn down on exit

            os.environ["RAY_AUTH_MODE"] = "disabled"
            stack = ExitStack()
            address = stack.enter_context(local_cluster(tmp))
    try:
        per_round = [
            _round(k, base, points, tmp, pool, ray, address, overhead) for k in range(rounds)
        ]
    finally:
        if pool is not None:
            pool.terminate()
        shutdown_ray()
        if stack is not None:
            stack.close()
    out["rounds"] = per_round
    out["median"] = {key: statistics.median(r[key] for r in per_round) for key in per_round[0]}
    if "ray_cold_s" in out:
        out["speedup_cold"] = out["median"]["loop_s"] / out["ray_cold_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--p", type=int, default=23)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-worker arm")
    parser.add_argument("--cluster", action="store_true", help="add the 2-process cluster")
    parser.add_argument("--overhead-only", action="store_true", help="arms 1 and 2 (no Ray)")
    parser.add_argument("--no-overhead", action="store_true", help="arms 1, 3 and 4")
    args = parser.parse_args()
    result = run(
        args.n, args.steps, args.p, args.rounds, ray=not args.overhead_only,
        cold=not args.no_cold, cluster=args.cluster, overhead=not args.no_overhead,
    )  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
