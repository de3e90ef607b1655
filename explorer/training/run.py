"""A training run on disk: checkpoints, metrics and a manifest in one folder.

Layout (everything is JSON or safetensors, nothing is pickled)::

    run/
      manifest.json            what the run is: model config, data, optimizer, budget, status,
                               and the published checkpoints with the size of each file
      metrics.jsonl            one JSON object per logged step: {"step": 10, "train_loss": ...}
      checkpoints/step_000010/ model.safetensors + config.json (explorer.models.checkpoint)
                               + optimizer.safetensors + optimizer.json (the state at step 10;
                               by default only the newest checkpoint keeps it)

A checkpoint commits as a unit: its files are written into a staging folder, fsynced, moved
to their final folder, and then the manifest (which alone says what is published) is
replaced in one rename. Whatever is on disk that the manifest does not list was never
published: ``train`` ignores and removes it when it resumes, so a kill at any point resumes
from the last published step. Metrics are appended one line at a time (a torn last line is
ignored) and published with the next checkpoint. Files that disagree with the manifest were
changed outside explorer: ``Run.problems()`` says how, ``Run.repair()`` drops them.
``Run.open(path).load_model(step)`` is what ``explorer.load(path, step=...)`` calls. The
metrics log is ``curves``'s, the consistency checks ``_run_repair``'s (both part of ``Run``).

>>> import tempfile
>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=8)
>>> run = Run.create(tempfile.mkdtemp() + "/run", model)
>>> run.save_checkpoint(model, 0)
>>> run.log(0, {"train_loss": 2.3})
>>> Run.open(run.path).steps, run.metrics().get("train_loss").values.tolist()
((0,), [2.299999952316284])
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from explorer._atomic import (
    fsync_dir,
    fsync_file,
    remove_tree,
    replace,
    write_atomic,
    write_durable,
)
from explorer._checks import check_choice
from explorer._inside import inside
from explorer.models.checkpoint import (
    CONFIG,
    WEIGHTS,
    checkpoint_files,
    load_checkpoint,
    load_state,
    read_tagged_json,
    read_weights,
)
from explorer.models.handle import ModelHandle
from explorer.training._run_layout import (
    CHECKPOINTS,
    FORMAT,
    MANIFEST,
    STAGING,
    STATE,
    STATUSES,
    VERSION,
    step_dir,
)
from explorer.training._run_rebuild import RunRebuild, architecture_differs, either_path_or_run
from explorer.training.curves import Curve, RunMetrics, _MetricsLog
from explorer.training.optim_state import (
    HEADER,
    TENSORS,
    has_optimizer_state,
    load_optimizer_state,
    optimizer_files,
)

__all__ = ["Curve", "Run", "RunMetrics"]


class Run(_MetricsLog, RunRebuild):
    """A training run folder. Create with ``Run.create``, reopen with ``Run.open``."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        model: ModelHandle,
        *,
        data: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Run:
        """Start an empty run for ``model`` (its config is recorded; weights are not saved).

        Args:
            path: the run folder; must not hold a run unless ``overwrite``.
            model: a handle with an explorer config (zoo models, MNIST nets).
            data: JSON-able description of the data split (e.g. p, train_frac, seed).
            meta: anything else JSON-able to keep with the run.
            overwrite: delete an existing run at ``path`` first.
        """
        root = Path(path)
        if (root / MANIFEST).exists():
            if not overwrite:
                raise FileExistsError(
                    f"{str(root)!r} already holds a run: open it with Run.open, or pass overwrite=True"
                )
            remove_tree(root, root.parent)
        if root.is_dir() and all(p.name.endswith(".tmp") for p in root.iterdir()):
            for leftover in root.iterdir():  # a create that was killed before publishing
                remove_tree(leftover, root)
        if root.exists() and any(root.iterdir()):
            if (root / CHECKPOINTS).is_dir():
                raise FileExistsError(
                    f"{str(root)!r} holds checkpoint folders but no {MANIFEST} (deleted?): "
                    f"Run.repair({str(root)!r}, rebuild=True) rebuilds it from them; or "
                    "choose a new folder"
                )
            raise FileExistsError(f"{str(root)!r} exists and is not empty: choose a new folder")
        if model.config is None:
            raise ValueError(
                f"{model.name} has no explorer config, so a run could not rebuild it: "
                "build it with explorer.zoo or from a config"
            )
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": model.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model": {"family": model.config.family, "config": model.config.to_dict()},
            "data": _jsonable("data", dict(data or {})),
            "meta": _jsonable("meta", dict(meta or {})),
            "training": {},
            "checkpoints": [],
            "status": "created",
            "last_step": None,
        }
        root.mkdir(parents=True, exist_ok=True)
        fsync_dir(root.parent)
        run = cls(root, manifest)
        run._write_manifest()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """Open an existing run folder (raises if ``manifest.json`` is missing or foreign)."""
        root = Path(path)
        file = inside(root, MANIFEST, what="manifest", owner=f"run {str(root)!r}")
        try:
            manifest = read_tagged_json(file, FORMAT, VERSION, "run manifest", "not a training run")
        except (FileNotFoundError, ValueError) as err:
            if (root / CHECKPOINTS).is_dir() and "upgrade explorer" not in str(err):
                raise type(err)(
                    f"{err}. The folder holds checkpoint folders: "
                    f"Run.repair({str(root)!r}, rebuild=True) rebuilds {MANIFEST} from them"
                ) from None
            raise
        return cls(root, manifest)

    # --------------------------------------------------------------- properties
    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest (edit through the methods, not this dict)."""
        return json.loads(json.dumps(self._manifest))

    @property
    def name(self) -> str:
        return str(self._manifest.get("name", self.path.name))

    @property
    def status(self) -> str:
        return str(self._manifest["status"])

    @property
    def steps(self) -> tuple[int, ...]:
        """Steps that have a checkpoint, increasing."""
        listed = self._manifest.get("checkpoints")
        if not isinstance(listed, list):
            return ()
        return tuple(sorted({s for s in listed if type(s) is int and s >= 0}))

    @property
    def last_step(self) -> int | None:
        """The last step trained to (the weights of the newest checkpoint)."""
        return self._manifest.get("last_step")

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._manifest.get("data", {}))

    @property
    def training(self) -> dict[str, Any]:
        """Optimizer, step budget and schedule recorded by ``train``."""
        return dict(self._manifest.get("training", {}))

    def __repr__(self) -> str:
        return (
            f"Run({str(self.path)!r}, {self.name}, status={self.status}, "
            f"{len(self.steps)} checkpoints, last step {self.last_step})"
        )

    # --------------------------------------------------------------- checkpoints
    def nearest_step(self, step: int) -> int:
        """The checkpoint step closest to ``step`` (ties go to the earlier one)."""
        if not self.steps:
            raise ValueError(f"run {str(self.path)!r} has no checkpoints yet")
        return min(self.steps, key=lambda s: (abs(s - int(step)), s))

    def _check_step(self, step: int | None) -> int:
        if not self.steps:
            raise ValueError(f"run {str(self.path)!r} has no checkpoints yet")
        if step is None:
            return self.steps[-1]
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step must be an integer, got {step!r}")
        if step not in self.steps:
            raise ValueError(
                f"no checkpoint at step {step}: this run has {len(self.steps)} checkpoints "
                f"from {self.steps[0]} to {self.steps[-1]} (nearest: {self.nearest_step(step)})"
            )
        return step

    def save_checkpoint(
        self,
        model: ModelHandle,
        step: int,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        keep_optimizer: str = "all",
        dtype: torch.dtype | None = None,
    ) -> None:
        """Save ``model``'s weights (and ``optimizer``'s state) as the checkpoint of ``step``.

        The files are written into a staging folder, fsynced, and moved to their final
        folder; then the manifest, which is what lists published checkpoints, is replaced in
        one rename. A kill at any moment leaves either the previous run or the new one.
        ``keep_optimizer="last"`` drops the optimizer state of earlier checkpoints once this
        one is published (it is two to three times the size of the weights); resuming from
        such a checkpoint later starts a fresh optimizer, with a warning.
        ``dtype`` stores the weights in that type (``torch.float16`` for a run to ship).
        """
        check_choice("keep_optimizer", keep_optimizer, ("all", "last"))
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a whole number >= 0, got {step!r}")
        self._check_same_model(model)
        self._refuse_if_unsafe(f"save checkpoint {step}")
        files = checkpoint_files(model, meta={"run": self.name, "step": step}, dtype=dtype)
        if optimizer is not None:
            files.update(optimizer_files(optimizer, step))
        folder = inside(self.path, CHECKPOINTS, what="checkpoints folder", owner=self._owner)
        if not folder.is_dir():
            folder.mkdir()
            fsync_dir(self.path)
        name = self._free_name(step)
        staging = folder / f"{STAGING}{name}"
        remove_tree(staging, self.path)
        staging.mkdir()
        for file, data in files.items():
            write_durable(staging / file, data)
        fsync_dir(staging)
        remove_tree(folder / name, self.path)  # an unpublished remnant of a killed attempt
        replace(staging, folder / name)
        fsync_file(self._metrics_file())  # the rows logged so far are published with it
        old = self.checkpoint_path(step) if step in self.steps else None
        self._manifest.setdefault("index", {})[str(step)] = {
            "dir": name,
            "files": {file: len(data) for file, data in files.items()},
            "sha256": {file: hashlib.sha256(data).hexdigest() for file, data in files.items()},
        }
        self._manifest["checkpoints"] = sorted(set(self._manifest["checkpoints"]) | {step})
        self._manifest["last_step"] = max(step, self._manifest.get("last_step") or 0)
        pruned = []
        if keep_optimizer == "last" and optimizer is not None:
            for s in self.steps:
                entry = self._entry(s)
                if s < step and entry is not None and HEADER in entry["files"]:
                    for key in ("files", "sha256"):
                        entry[key] = {
                            k: v
                            for k, v in entry.get(key, {}).items()
                            if k not in (HEADER, TENSORS)
                        }
                    pruned.append(self.checkpoint_path(s))
        self._write_manifest()  # the publication
        if old is not None and old.name != name:
            remove_tree(old, self.path)
        for path in pruned:  # no longer published: a kill here leaves only garbage
            for file in (HEADER, TENSORS):
                remove_tree(path / file, self.path)

    def _check_same_model(self, model: ModelHandle) -> None:
        """Refuse weights of another architecture than the run's (the init seed may differ)."""
        if model.config is None:
            return  # checkpoint_files names the missing config
        differ = architecture_differs(self._manifest.get("model"), model.config)
        if differ:
            raise ValueError(
                f"{model.name} does not fit {self._owner}: another architecture (run vs "
                f"model: {differ}). Save it in a run of its own (Run.create)"
            )

    def has_optimizer_state(self, step: int) -> bool:
        """Whether the checkpoint of ``step`` holds the optimizer state to resume from it."""
        entry = self._entry(step)
        if entry is not None:
            return HEADER in entry.get("files", {})
        return (self.checkpoint_path(step) / HEADER).is_file()

    def _free_name(self, step: int) -> str:
        """A folder name for ``step`` that no published checkpoint uses."""
        used = {self.checkpoint_path(s).name for s in self.steps}
        name, k = step_dir(step), 1
        while name in used:
            name, k = f"{step_dir(step)}-{k}", k + 1
        return name

    def load_model(self, step: int | None = None) -> ModelHandle:
        """A fresh model with the weights of checkpoint ``step`` (None: the last one)."""
        step = self._check_step(step)
        model = load_checkpoint(self._verify(step, (CONFIG, WEIGHTS)))
        model.name = f"{self.name}@{step}"
        return model

    def load_into(self, model: ModelHandle, step: int | None = None) -> ModelHandle:
        """Copy the weights of checkpoint ``step`` into ``model`` (cheaper than ``load_model``)."""
        step = self._check_step(step)
        path = self._verify(step, (WEIGHTS,))
        load_state(model, read_weights(path), str(path))
        return model

    # ------------------------------------------------------- optimizer state
    def load_optimizer(
        self, optimizer: torch.optim.Optimizer, step: int | None = None
    ) -> int | None:
        """Restore the optimizer state of checkpoint ``step`` (None: the last) into
        ``optimizer``; returns the step, or None if that checkpoint has no optimizer state.
        State taken at another step is refused."""
        step = self._check_step(step)
        folder = self._verify(step, (HEADER, TENSORS))
        if not has_optimizer_state(folder) and step == self._manifest.get("last_step"):
            # a run written by explorer < 0.2
            folder = inside(self.path, STATE, what="optimizer state folder", owner=self._owner)
        return load_optimizer_state(optimizer, folder, step)

    # ----------------------------------------------------------------- manifest
    def update(self, *, status: str | None = None, **fields: Any) -> None:
        """Set manifest fields (``status`` must be one of the known statuses)."""
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}: choose one of {', '.join(STATUSES)}")
            self._manifest["status"] = status
        for key, value in fields.items():
            self._manifest[key] = _jsonable(key, value)
        self._write_manifest()

    @either_path_or_run
    def repair(self, *, rebuild: bool = False) -> list[str]:
        """Drop damaged checkpoints and every unpublished file; what was dropped, as sentences.

        A checkpoint whose files do not match what the manifest published (edited, deleted,
        truncated or changed in place: sizes and SHA-256 checksums are compared) is
        unpublished, so training resumes from the newest intact one; a manifest entry that
        names a path outside the run folder is unpublished without touching that path.
        ``rebuild=True`` first rebuilds ``manifest.json`` from the checkpoint folders (after
        it was deleted or damaged: call it on the folder, ``Run.repair(path, rebuild=True)``).
        Nothing outside the run folder is ever deleted.
        """
        if rebuild:
            return self._rebuild()
        return self._repair()

    def _write_manifest(self) -> None:
        file = inside(self.path, MANIFEST, what="manifest", owner=self._owner)
        write_atomic(file, json.dumps(self._manifest, indent=2).encode())


def _jsonable(what: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {err}"
        ) from None
