"""A sweep on disk, and the work of one point (what a Ray worker runs).

Layout (JSON and ordinary run folders; nothing pickled)::

    sweep/
      sweep.json        the study, the base settings, every point asked for (name -> its
                        changes), and an id the workers check to know they see this folder
      runs/<point>/     an ordinary explorer run (explorer.load / Run.open / the scrubber)
      done/<point>.json the point's completion record: full settings, status, outcomes,
                        timings. Written in one rename (``write_atomic``) once the run and
                        its study measures are finished: a point is finished exactly when
                        this file exists.

Resuming: a point without its record is run again. Its run folder resumes from its last
published checkpoint (``train`` is kill-safe at every write), so even an unfinished point
loses at most the steps since its last checkpoint; a finished point is never run again.

A worker process is made ready once (``warm_worker``, Ray's worker setup hook): the sweep's
code and transformer-lens imported before its first point, so that no point pays them and
its record's ``train_seconds`` holds none of them (``worker_warm``; ``worker_points``: the
points that process ran before).

A worker that sees the sweep folder (same machine, or a shared file system: ``sweep.json``
with the same id) trains straight into ``runs/<point>``. One that does not (a cluster
node) trains into a temporary folder and sends the run's files back with its record; the
driver writes them under ``runs/`` and only then the record.

>>> import tempfile
>>> f = SweepFolder.create(tempfile.mkdtemp() + "/s", "grokking", {"p": 7})
>>> f.finished()
{}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from explorer._atomic import fsync_dir, remove_tree, replace, write_atomic, write_durable
from explorer._inside import inside
from explorer.models import zoo
from explorer.models.checkpoint import read_tagged_json
from explorer.models.learning_coefficient import LLCSampler
from explorer.sweep.learning_coefficient import measure_learning_coefficients
from explorer.sweep.measures import StepClock, sweep_measures
from explorer.sweep.points import SweepPoint
from explorer.sweep.studies import study_of
from explorer.training.loop import train
from explorer.training.run import Run

__all__ = ["SweepFolder", "failure_record", "run_point"]

FORMAT, VERSION = "explorer-sweep", 1
SWEEP, RUNS, DONE = "sweep.json", "runs", "done"
FINISHED = ("complete", "stopped", "diverged")  # run statuses a record can hold
_WORKER = {"warm": False, "points": 0}  # this process as a sweep worker


def warm_worker() -> None:
    """Make this process ready to train points; Ray runs it in every worker process before
    its first task (``worker_process_setup_hook``). Importing this module brings the sweep's
    code and torch; building a toy transformer brings transformer-lens, which imports
    ``transformers`` (seconds: more than a short run's training on a busy machine) and
    which every built-in study's model needs. Once per process: a second call returns at once.
    """
    if _WORKER["warm"]:
        return
    zoo.modular_addition_transformer(p=3, d_model=8)
    _WORKER["warm"] = True


class SweepFolder:
    """The folder of one sweep: its description, its runs, its completion records."""

    def __init__(self, path: Path, spec: dict[str, Any]) -> None:
        self.path, self.spec = path, spec

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], study: str, base: Mapping[str, Any]
    ) -> SweepFolder:
        """Open the sweep in ``path``, or start one there; refuses another study or base."""
        root = Path(path)
        if (root / SWEEP).is_file():
            found = cls.open(root)
            if found.spec["study"] != study or found.spec["base"] != json.loads(json.dumps(base)):
                raise ValueError(
                    f"{str(root)!r} holds a sweep of study {found.spec['study']!r} with base "
                    f"{found.spec['base']}; this one is {study!r} with base {dict(base)}: "
                    "choose another folder"
                )
            return found
        if root.is_dir() and all(p.name.endswith(".tmp") for p in root.iterdir()):
            for leftover in root.iterdir():  # a create killed before sweep.json was published
                remove_tree(leftover, root)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"{str(root)!r} exists, is not empty and holds no sweep")
        root.mkdir(parents=True, exist_ok=True)
        spec = {
            "format": FORMAT,
            "version": VERSION,
            "id": uuid.uuid4().hex,
            "study": study,
            "base": json.loads(json.dumps(base)),
            "points": {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        folder = cls(root, spec)
        folder._write()
        return folder

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SweepFolder:
        root = Path(path)
        file = inside(root, SWEEP, what="sweep description", owner=f"sweep {str(root)!r}")
        if not file.is_file():
            raise FileNotFoundError(f"{str(root)!r} holds no sweep (no {SWEEP})")
        spec = read_tagged_json(file, FORMAT, VERSION, "sweep description", "not a sweep")
        return cls(root, spec)

    def _write(self) -> None:
        write_atomic(self.path / SWEEP, json.dumps(self.spec, indent=1).encode())

    def add(self, points: list[SweepPoint]) -> None:
        """Record ``points`` in ``sweep.json`` (those already there are kept)."""
        known = self.spec["points"]
        new = {p.name: dict(p.settings) for p in points if p.name not in known}
        if new:
            known.update(new)
            self._write()

    def run_dir(self, name: str) -> Path:
        return inside(self.path, RUNS, name, what="run folder", owner=self._owner)

    def record_path(self, name: str) -> Path:
        return inside(self.path, DONE, f"{name}.json", what="record", owner=self._owner)

    @property
    def _owner(self) -> str:
        return f"sweep {str(self.path)!r}"

    def finished(self) -> dict[str, dict[str, Any]]:
        """The completion record of every finished point, by name."""
        done = self.path / DONE
        out = {}
        for file in sorted(done.glob("*.json")) if done.is_dir() else []:
            try:
                record = json.loads(file.read_text())
            except (OSError, ValueError):
                continue  # never written by explorer: write_atomic publishes whole files
            if isinstance(record, dict) and record.get("name") == file.stem:
                out[file.stem] = record
        return out

    def publish(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write a worker's run files (if it sent them) and then its record: the point is done."""
        record = dict(record)
        files = record.pop("files", None)
        name = record["name"]
        if files is not None:
            runs = self.path / RUNS
            runs.mkdir(exist_ok=True)
            incoming = inside(self.path, RUNS, f".incoming-{name}", what="run", owner=self._owner)
            remove_tree(incoming, self.path)
            for rel, data in files.items():
                # a worker's relative paths: each part must stay inside the run folder
                target = inside(incoming, *rel.split("/"), what="run file", owner=self._owner)
                target.parent.mkdir(parents=True, exist_ok=True)
                write_durable(target, data)
            fsync_dir(incoming)
            remove_tree(self.run_dir(name), self.path)
            replace(incoming, self.run_dir(name))
        (self.path / DONE).mkdir(exist_ok=True)
        write_atomic(self.record_path(name), json.dumps(record, indent=1).encode())
        return record


def _sees(folder: Path, sweep_id: str) -> bool:
    try:
        return json.loads((folder / SWEEP).read_text()).get("id") == sweep_id
    except (OSError, ValueError):
        return False


def run_point(task: Mapping[str, Any], cancel: threading.Event | None = None) -> dict[str, Any]:
    """Train one point (or resume it, or find it trained) and return its completion record.

    ``task``: ``name``, ``settings`` (the full settings), ``changes``, ``study`` (a
    ``SweepStudy`` or a built-in study's name), ``folder``, ``sweep_id``, ``threads``, ``n_batches``, ``noise_every``,
    and optionally ``llc`` (an ``LLCSampler``'s fields, or None) and ``llc_checkpoints``.
    A ``KeyboardInterrupt`` during training stops the run (saved, resumable) and propagates;
    so does ``cancel`` (in this process), set from another thread: training stops at its
    next step.
    """
    warm, before = _WORKER["warm"] or _WORKER["points"] > 0, _WORKER["points"]
    _WORKER["points"] += 1
    torch.set_num_threads(int(task["threads"]))
    study = study_of(task["study"])
    folder, name = Path(task["folder"]), task["name"]
    shared = _sees(folder, task["sweep_id"])
    run_dir = folder / RUNS / name if shared else Path(tempfile.mkdtemp(prefix="sweep-")) / name
    started = time.perf_counter()
    live = study.live(task["settings"]) if study.live is not None else None
    recipe = live.recipe if live is not None else study.recipe(task["settings"])
    if (run_dir / "manifest.json").is_file():
        run = Run.open(run_dir)
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        run = Run.create(run_dir, recipe["model"], data=recipe.get("data"))
    if live is not None:
        live.watch(run)
    clock = StepClock()
    batches = None
    if study.batches is not None and task["n_batches"] >= 2:
        batches = _every(study.batches(task["settings"], task["n_batches"]), task["noise_every"])
    recipe["loss_fn"] = clock.wrap(_stoppable(recipe["loss_fn"], cancel))
    recipe["evals"] = {**recipe.get("evals", {}), **sweep_measures(run, clock, batches)}
    status, error = None, None
    try:
        run = train(**recipe, run=run, progress=False)
        status = run.status
    except FloatingPointError as err:  # the loss diverged: an outcome, not a failure
        status, error = "diverged", str(err)
    if status == "interrupted":
        raise KeyboardInterrupt(f"point {name} was interrupted")
    trained = time.perf_counter()
    outcomes: dict[str, Any] = {}
    if status != "diverged":
        if live is not None:
            live.finish(run)
        elif study.finish is not None:
            study.finish(run)
        outcomes = study.outcomes(run)
    measured = time.perf_counter()
    llc_seconds = None
    if status != "diverged" and task.get("llc") is not None:
        rows = measure_learning_coefficients(
            run, study, task["settings"], LLCSampler(**task["llc"]), task["llc_checkpoints"]
        )
        outcomes["final_llc"] = rows[-1]["llc"] if rows else None
        llc_seconds = time.perf_counter() - measured
    record = {
        "name": name,
        "study": study.name,
        "changes": dict(task["changes"]),
        "settings": dict(task["settings"]),
        "status": status,
        "error": error,
        "outcomes": {k: _number(v) for k, v in outcomes.items()},
        "train_seconds": trained - started,
        "measure_seconds": measured - trained,
        "llc_seconds": llc_seconds,
        "worker": os.getpid(),
        "worker_warm": warm,
        "worker_points": before,
        "shared_folder": shared,
    }
    if not shared:
        record["files"] = {
            f.relative_to(run_dir).as_posix(): f.read_bytes()
            for f in run_dir.rglob("*")
            if f.is_file()
        }
        remove_tree(run_dir.parent, run_dir.parent.parent)
    return record


def _stoppable(loss_fn: Any, cancel: threading.Event | None) -> Any:
    """``loss_fn`` that raises ``KeyboardInterrupt`` once ``cancel`` is set: ``train`` then
    saves the run as interrupted (resumable), as after Ctrl-C."""
    if cancel is None:
        return loss_fn

    def loss(model: Any, step: int) -> Any:
        if cancel.is_set():
            raise KeyboardInterrupt("sweep cancelled")
        return loss_fn(model, step)

    return loss


def _every(batches: Any, every: int) -> Any:
    """Grad noise only at steps that are multiples of ``every`` (no values logged elsewhere)."""
    return lambda step: batches(step) if step % every == 0 else []


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def failure_record(task: Mapping[str, Any], err: BaseException) -> dict[str, Any]:
    """The record of a point whose work raised (not published: it runs again next time)."""
    return {
        "name": task["name"],
        "status": "failed",
        "error": "".join(traceback.format_exception_only(type(err), err)).strip(),
        "changes": dict(task["changes"]),
        "settings": dict(task["settings"]),
    }
