"""Sweeps on Ray: the in-process local Ray, Ctrl-C, and a real two-process cluster.

The cluster is started with ``ray start --head`` and a second ``ray start --address=...``
on 127.0.0.1 (``ray_cluster.local_cluster``: free ports, torn down whatever happens); the
same sweep sent there through ``ray://`` must equal the in-process one bit for bit. All of
this module's tests share one pytest-xdist worker (``--dist loadscope``) and run in order.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ray_cluster import local_cluster

from explorer import _atomic
from explorer.sweep import Sweep, shutdown_ray, sweep
from explorer.sweep.folder import SweepFolder, run_point

BASE = {"p": 7, "steps": 20, "d_model": 16, "eval_every": 5}
GRID = {"weight_decay": [0.1, 1.0], "train_frac": [0.4, 0.6]}


@pytest.fixture(autouse=True, scope="module")
def _ray_here():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_atomic, "_fsync", lambda fd: None)
        # no token: the test cluster runs without one (see ray_cluster), and so must we
        patch.setenv("RAY_AUTH_MODE", "disabled")
        patch.delenv("RAY_ADDRESS", raising=False)
        try:
            yield
        finally:
            shutdown_ray()


def _published(s: Sweep) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in s.names:
        run = s.run(name)
        out[f"{name}/metrics"] = (run.path / "metrics.jsonl").read_bytes()
        for step in run.steps:
            folder = run.checkpoint_path(step)
            out[f"{name}/{step}"] = (folder / "model.safetensors").read_bytes()
        out[f"{name}/outcomes"] = s.records[name]["outcomes"]
    return out


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Sweep:
    """The sweep on the local Ray this process starts (2 CPUs)."""
    return sweep("grokking", GRID, folder=tmp_path_factory.mktemp("local") / "s", base=BASE,
                 workers=2, progress=False)  # fmt: skip


def test_a_local_ray_sweep_runs_every_point_in_worker_processes(in_process, tmp_path):
    assert in_process.ran and set(in_process.ran) == set(in_process.names)
    workers = {r["worker"] for r in in_process.records.values()}
    assert len(workers) >= 1 and all(r["shared_folder"] for r in in_process.records.values())
    # every worker got ready before its first point (Ray's setup hook): none paid the
    # imports inside a point, and a worker runs point after point
    assert all(r["worker_warm"] for r in in_process.records.values())
    assert max(r["worker_points"] for r in in_process.records.values()) >= 1
    serial = sweep("grokking", GRID, folder=tmp_path / "s", base=BASE, executor="serial",
                   progress=False)  # fmt: skip
    assert _published(serial) == _published(in_process)


def test_ctrl_c_cancels_and_keeps_every_finished_point(in_process, tmp_path):
    folder = tmp_path / "s"
    seen = []

    def stop(state):
        seen.append(str(state))
        if state.done >= 1:
            raise KeyboardInterrupt

    first = sweep("grokking", GRID, folder=folder, base=BASE, workers=2, progress=False,
                  on_progress=stop)  # fmt: skip
    assert first.interrupted and 1 <= len(first.finished) < len(first.names)
    assert "1/4 runs done" in seen[-1] and "left" in seen[-1]
    finished = set(SweepFolder.open(folder).finished())
    assert finished == set(first.finished)
    again = sweep("grokking", GRID, folder=folder, base=BASE, workers=2, progress=False)
    assert not finished & set(again.ran) and set(again.reused) == finished
    assert again.failed == {}
    assert not again.interrupted and again.unfinished == ()
    assert _published(again) == _published(in_process)


def test_a_point_whose_worker_is_killed_runs_again_from_its_checkpoint(in_process, tmp_path):
    """A worker process killed mid-point (a node's memory monitor, a lost machine; once in CI
    most likely a cancelled sweep's worker still exiting) fails nothing: Ray
    runs the point again (``RETRIES_ON_CRASH``), it resumes from its last checkpoint, and
    the results are the in-process sweep's bit for bit."""
    import signal

    import psutil

    killed: list[int] = []
    outcome: dict[str, Sweep] = {}

    def run() -> None:
        outcome["sweep"] = sweep("grokking", GRID, folder=tmp_path / "s", base=BASE, workers=2,
                                 progress=False)  # fmt: skip

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive() and not killed:  # the first worker seen training a point
        for proc in psutil.process_iter(["cmdline"]):
            if "ray::run_point" in " ".join(proc.info["cmdline"] or ()):
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
                break
    thread.join()
    assert killed, "no worker was seen training a point"
    again = outcome["sweep"]
    assert again.failed == {} and again.unfinished == () and not again.interrupted
    assert _published(again) == _published(in_process)


def test_a_cancel_event_set_from_another_thread_stops_the_ray_sweep(tmp_path):
    """What a widget's Stop does: the event, not an exception, stops the Ray tasks; every
    finished point is kept and the rerun runs none of them."""
    folder, cancel = tmp_path / "s", threading.Event()
    first = sweep("grokking", GRID, folder=folder, base=BASE, workers=2, progress=False,
                  on_progress=lambda p: p.done >= 1 and cancel.set(), cancel=cancel)  # fmt: skip
    assert first.interrupted and 1 <= len(first.finished) < len(first.names)
    finished = set(SweepFolder.open(folder).finished())
    assert finished == set(first.finished)
    again = sweep("grokking", GRID, folder=folder, base=BASE, workers=2, progress=False)
    assert not finished & set(again.ran) and set(again.reused) == finished
    assert again.unfinished == () and again.failed == {}


def test_a_real_local_cluster_gives_the_in_process_results_bit_for_bit(in_process, tmp_path):
    with local_cluster(tmp_path) as address:
        on_cluster = sweep("grokking", GRID, folder=tmp_path / "s", base=BASE, address=address,
                           progress=False)  # fmt: skip
        shutdown_ray()  # disconnect before the cluster goes
    assert on_cluster.ran and set(on_cluster.ran) == set(on_cluster.names)
    # the cluster's workers, which Ray's setup hook does not reach through Ray Client, were
    # made ready before their first point too
    assert all(r["worker_warm"] for r in on_cluster.records.values())
    assert _published(on_cluster) == _published(in_process)


def test_a_worker_that_cannot_see_the_folder_sends_the_run_back(in_process, tmp_path):
    """As on a cluster node without the sweep's file system: the run travels as files."""
    place = SweepFolder.create(tmp_path / "s", "grokking", BASE)
    name = in_process.names[0]
    task = {
        "name": name, "changes": dict(in_process.points[0].settings),
        "settings": in_process.settings(name), "study": "grokking",
        "folder": str(tmp_path / "elsewhere"), "sweep_id": place.spec["id"], "threads": 1,
        "n_batches": 4, "noise_every": 25,
    }  # fmt: skip
    record = run_point(task)
    assert record["shared_folder"] is False and "metrics.jsonl" in record["files"]
    place.add(list(in_process.points[:1]))
    place.publish(record)
    got = Sweep.open(place.path, names=[name])
    mine = _published(in_process)
    assert _published(got) == {k: v for k, v in mine.items() if k.startswith(name + "/")}
    assert not Path(place.path / "runs" / f".incoming-{name}").exists()
