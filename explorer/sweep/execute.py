"""``sweep``: run every point of a grid on Ray (or one by one), resumably, with progress.

Execution is Ray's: each unfinished point is one Ray task (``num_cpus=1``, torch on
``threads`` threads). By default a local Ray is started in this process
(``ray.init(address="local", num_cpus=<cores>, include_dashboard=False)`` on 127.0.0.1)
and kept for later sweeps. Its worker processes are reused from point to point, and each
gets ready once (``WORKER_SETUP``, Ray's worker setup hook: the sweep's code and
transformer-lens imported, seconds), started on every CPU as Ray starts (through Ray
Client, whose workers the hook does not reach, a first task per CPU does the same);
``address="ray://host:10001"`` (Ray Client) or ``"host:6379"``
(a node of the cluster), or the ``RAY_ADDRESS`` environment variable, sends the same tasks
to a cluster, whose nodes need explorer installed (or ``runtime_env={"py_modules": [...]}``).
``executor="serial"`` runs the points here, one after another, without Ray.

Progress: a tqdm bar (runs done, running, failed, time left) and ``on_progress``, called with
a ``SweepProgress`` whenever a point starts or finishes. Ctrl-C (``KeyboardInterrupt``, also
raised from ``on_progress``) cancels the points still running: every finished point is kept
(its record was written when it finished), the cancelled ones resume from their last
checkpoint next time, and the partial ``Sweep`` is returned with ``interrupted=True``.
``cancel`` (a ``threading.Event``) does the same from another thread (a widget's Cancel,
a sweep run in the background): Ray's points are cancelled within half a second; a point
running here stops at its next training step, saved.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from explorer._checks import check_choice
from explorer.hypotheses.store import DEFAULT_PROJECT, HypothesisStore
from explorer.hypotheses.sweep_index import put_sweep_runs
from explorer.models.learning_coefficient import LLCSampler
from explorer.sweep.folder import SweepFolder, failure_record, run_point, warm_worker
from explorer.sweep.points import expand_points
from explorer.sweep.result import Sweep
from explorer.sweep.studies import STUDIES, SweepStudy, study_of
from explorer.sweep.tracking import SweepProgress, _Tracker

__all__ = ["SweepProgress", "plan_sweep", "sweep"]


# the Ray connection this module opened, if any; "warm": False (the benchmark's way before)
# starts Ray without getting its workers ready
_RAY: dict[str, Any] = {"key": None, "warm": True, "warming": []}
#: Ray's worker setup hook: ``warm_worker`` runs in each worker process before its first task
WORKER_SETUP = "explorer.sweep.folder.warm_worker"
#: times Ray runs a point again when its worker process dies (not when the point raises)
RETRIES_ON_CRASH = 2


def _ray(address: str | None, workers: int | None, runtime_env: Mapping | None) -> Any:
    # lazy: Ray takes seconds to import and is needed only to run a sweep on it
    import ray

    key = f"{address or 'local'}|{workers}|{sorted((runtime_env or {}).items())}"
    if ray.is_initialized():
        if _RAY["key"] == key or (_RAY["key"] is None and address is None):
            return ray  # ours, as asked; or the user's own ray.init(), used as it is
        ray.shutdown()
    kwargs: dict[str, Any] = {"log_to_driver": False}
    # every worker imports the sweep's code and transformer-lens once, before its first point
    # (not through Ray Client, ray://: the hook does not reach a client's workers, and a
    # runtime env makes the cluster wait on its runtime-env agent to start the client's server)
    client = address is not None and address.startswith("ray://")
    hook = {"worker_process_setup_hook": WORKER_SETUP} if _RAY["warm"] and not client else {}
    if hook or runtime_env:
        kwargs["runtime_env"] = {**hook, **(runtime_env or {})}
    if address is None:
        for attempt in range(3):
            try:
                ray.init(
                    address="local",  # never attach to another cluster found on this machine
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **kwargs,
                )
                break
            except Exception as err:
                # On a busy machine Ray's raylet can abort at start: it gives its dashboard
                # agent a fixed 15 s to import and report its ports. A second try starts
                # from a warm file cache.
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    raise
    else:
        for attempt in range(3):
            try:
                ray.init(address=address, **kwargs)
                break
            except ConnectionAbortedError as err:
                # On a busy machine a cluster can fail to start the server process it runs
                # for each Ray Client connection; a new connection asks for a new one.
                ray.shutdown()
                if attempt == 2 or "Starting Ray client server failed" not in str(err):
                    raise
    _RAY["key"] = key
    # start a worker on every CPU now, each getting ready (WORKER_SETUP, or through Ray
    # Client the task itself) while this process prepares the sweep; not waited for: a
    # point queues behind its worker's setup anyway
    if _RAY["warm"]:
        ready = ray.remote(num_cpus=1, max_retries=0)(_ready)
        _RAY["warming"] = [ready.remote() for _ in range(_slots(ray))]
    return ray


def _ready() -> int:
    # the setup hook made this worker ready already, except through Ray Client (ray://),
    # whose workers the hook does not reach: this task, one per CPU, makes each ready there
    warm_worker()
    return os.getpid()


def _slots(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def shutdown_ray() -> None:
    """Stop the local Ray this module started (or disconnect from the cluster)."""
    # lazy: as in _ray
    import ray

    if _RAY["key"] is not None and ray.is_initialized():
        ray.shutdown()
    _RAY["key"], _RAY["warming"] = None, []


def sweep(
    study: str | SweepStudy,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    folder: str | os.PathLike[str],
    seeds: Sequence[int] | None = None,
    base: Mapping[str, Any] | None = None,
    address: str | None = None,
    executor: str = "ray",
    workers: int | None = None,
    threads: int = 1,
    n_batches: int = 4,
    noise_every: int | None = None,
    llc: LLCSampler | None = None,
    llc_checkpoints: int = 8,
    runtime_env: Mapping[str, Any] | None = None,
    store: HypothesisStore | str | None = None,
    project: str = DEFAULT_PROJECT,
    name: str | None = None,
    progress: bool = True,
    on_progress: Callable[[SweepProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Sweep:
    """Train a study at every point of ``grid`` (or ``points``) x ``seeds`` into ``folder``.

    Each point is an ordinary run in ``folder/runs/<point>``, logging the study's measures
    plus ``weight_change`` and ``grad_noise`` (``explorer.sweep.measures``). Calling again
    with the same folder runs only the points not finished (and any new ones).

    Args:
        study: ``"grokking"``, ``"induction"`` or a ``SweepStudy``.
        grid: ``{setting: [values]}``: every combination is a point.
        points: a list of ``{setting: value}`` instead of a grid.
        folder: the sweep's folder (created if new, resumed if it holds this sweep).
        seeds: repeat every point with each seed (the study's ``seed`` setting).
        base: settings shared by every point (over the study's defaults; grokking's are
            ``CI_SETTING``'s).
        address: a Ray cluster (``"ray://host:port"``; default ``RAY_ADDRESS``, else a
            local Ray started here).
        executor: ``"ray"`` or ``"serial"`` (here, one point after another, no Ray).
        workers: CPUs of the local Ray (default: this machine's cores).
        threads: torch threads per run (1: runs are compared bit for bit across machines).
        n_batches: batches of ``grad_noise`` (below 2: not measured).
        noise_every: steps between ``grad_noise`` measurements (default 5 x eval_every).
        llc: measure the local learning coefficient with these SGLD settings (devinterp;
            ``explorer.sweep.learning_coefficient``) at ``llc_checkpoints`` checkpoints of
            each run after training, timed apart (``llc_seconds``). None (default): not
            measured. A finished point is not measured again when a later call asks for it.
        llc_checkpoints: how many checkpoints per run get an LLC estimate (evenly spread,
            first and last included).
        runtime_env: Ray's runtime environment for the tasks (e.g. ``py_modules``).
        store: a ``HypothesisStore`` (or its path / URL) to index the points in as they
            finish (``explorer.hypotheses.sweep_index``).
        project, name: the store's project, and the sweep's name there (default: the
            folder's name).
        progress: show a tqdm bar.
        on_progress: called with a ``SweepProgress`` as points start and finish.
        cancel: an event another thread sets to cancel the sweep (as Ctrl-C does).

    Returns:
        a ``Sweep`` of every point asked for (``interrupted`` if cancelled).

    >>> import tempfile
    >>> s = sweep("grokking", {"weight_decay": [0.1, 1.0]}, folder=tempfile.mkdtemp() + "/wd",
    ...           base={"p": 7, "steps": 20, "d_model": 16}, executor="serial", progress=False)
    >>> s.names, len(s.ran)
    (('weight_decay=0.1', 'weight_decay=1'), 2)
    """
    check_choice("executor", executor, ("ray", "serial"))
    for what, value in (
        ("threads", threads),
        ("n_batches", n_batches),
        ("noise_every", noise_every),
    ):
        if value is None and what == "noise_every":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (what != "n_batches"):
            low = 0 if what == "n_batches" else 1
            raise ValueError(f"{what} must be a whole number >= {low}, got {value!r}")
    if llc is not None and not isinstance(llc, LLCSampler):
        raise ValueError(f"llc must be an LLCSampler (its SGLD settings) or None, got {llc!r}")
    if (
        isinstance(llc_checkpoints, bool)
        or not isinstance(llc_checkpoints, int)
        or llc_checkpoints < 1
    ):
        raise ValueError(f"llc_checkpoints must be a whole number >= 1, got {llc_checkpoints!r}")
    the_study = study_of(study)
    if llc is not None and the_study.llc_data is None:
        raise ValueError(
            f"study {the_study.name!r} gives no examples for the learning coefficient "
            "(SweepStudy.llc_data): leave llc=None"
        )
    full_base = the_study.settings({}, base)
    chosen = expand_points(grid=grid, points=points, seeds=seeds, fields=the_study.fields)
    place = SweepFolder.create(folder, the_study.name, dict(base or {}))
    place.add(chosen)
    index = HypothesisStore(store) if isinstance(store, (str, os.PathLike)) else store
    sweep_name = name or place.path.name
    finished = place.finished()
    reused = [p.name for p in chosen if p.name in finished]
    todo = [p for p in chosen if p.name not in finished]
    every = noise_every or 5 * int(full_base.get("eval_every", 10))
    tasks = [
        {
            "name": p.name,
            "changes": dict(p.settings),
            "settings": the_study.settings(p.settings, base),
            # a built-in study travels by name (a worker rebuilds it), any other pickled
            "study": the_study.name if STUDIES.get(the_study.name) is the_study else the_study,
            "folder": str(place.path.resolve()),
            "sweep_id": place.spec["id"],
            "threads": threads,
            "n_batches": n_batches,
            "noise_every": every,
            "llc": None if llc is None else dataclasses.asdict(llc),
            "llc_checkpoints": llc_checkpoints,
        }
        for p in todo
    ]
    tracker = _Tracker(len(tasks), len(reused), progress, on_progress, sweep_name)
    ran: list[str] = []
    failed: dict[str, str] = {}

    def publish(record: dict[str, Any]) -> None:
        if record["status"] == "failed":
            failed[record["name"]] = record["error"]
            tracker.finished(failed=True)
            return
        record = place.publish(record)
        ran.append(record["name"])
        if index is not None:
            _index(index, sweep_name, [record], place, project)
        tracker.finished(
            seconds=sum(
                record.get(k) or 0.0 for k in ("train_seconds", "measure_seconds", "llc_seconds")
            )
        )

    interrupted = False
    try:
        if executor == "serial" or not tasks:
            for task in tasks:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt("sweep cancelled")
                tracker.started(1)
                try:
                    record = run_point(task, cancel=cancel)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as err:  # one point failing does not stop the others
                    record = failure_record(task, err)
                publish(record)
        else:
            _on_ray(tasks, publish, tracker, address, workers, runtime_env, cancel)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        tracker.close()
    result = Sweep.open(place.path, names=[p.name for p in chosen])
    return result.with_call(
        ran=tuple(ran), reused=tuple(reused), failed=failed, interrupted=interrupted
    )


def plan_sweep(
    study: str | SweepStudy,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    folder: str | os.PathLike[str],
    seeds: Sequence[int] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Sweep:
    """Record the points ``sweep`` with these arguments will run in ``folder`` (created if
    new), running none: the ``Sweep`` to show before it runs (``SweepView.launch``).

    >>> import tempfile
    >>> plan_sweep("grokking", {"lr": [1e-3, 1e-2]}, folder=tempfile.mkdtemp() + "/s").unfinished
    ('lr=0.001', 'lr=0.01')
    """
    the_study = study_of(study)
    the_study.settings({}, base)  # a wrong base setting is refused now, not in a worker
    chosen = expand_points(grid=grid, points=points, seeds=seeds, fields=the_study.fields)
    place = SweepFolder.create(folder, the_study.name, dict(base or {}))
    place.add(chosen)
    return Sweep.open(place.path, names=[p.name for p in chosen])


def _on_ray(
    tasks: list[dict[str, Any]],
    publish: Callable[[dict[str, Any]], None],
    tracker: _Tracker,
    address: str | None,
    workers: int | None,
    runtime_env: Mapping | None,
    cancel: threading.Event | None = None,
) -> None:
    ray = _ray(address or os.environ.get("RAY_ADDRESS") or None, workers, runtime_env)
    # a point whose worker dies (a node's memory monitor, a lost machine; once in CI, most
    # likely a cancelled sweep's worker still exiting) runs again, from its last checkpoint;
    # a point's own error is not retried, nor (Ray's rule) a cancelled point
    remote = ray.remote(num_cpus=1, max_retries=RETRIES_ON_CRASH)(run_point)
    pending = {remote.remote(task): task for task in tasks}
    slots = _slots(ray)
    tracker.started(min(slots, len(pending)))
    try:
        while pending:
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("sweep cancelled")
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as err:  # the point's error, as Ray wrapped it
                    record = failure_record(task, err)
                tracker.running = min(slots, len(pending))
                publish(record)
            tracker.tick()
    except KeyboardInterrupt:
        for ref in pending:  # the runs resume from their last checkpoint next time
            ray.cancel(ref, force=True)
        # cancelling is asynchronous: wait until those workers are gone, so that a sweep
        # started next never trains a point while a cancelled worker still writes to it
        ray.wait(list(pending), num_returns=len(pending), timeout=60)
        raise


def _index(
    store: HypothesisStore, name: str, records: list[dict], place: SweepFolder, project: str
) -> None:
    put_sweep_runs(store, name, records, folder=str(place.path.resolve()), project=project)
