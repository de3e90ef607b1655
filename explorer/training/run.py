"""A training run on disk: checkpoints, metrics and a manifest in one folder.

Layout (everything is JSON or safetensors, nothing is pickled)::

    run/
      manifest.json            what the run is: model config, data, optimizer, budget, status
      metrics.jsonl            one JSON object per logged step: {"step": 10, "train_loss": ...}
      checkpoints/step_000010/ model.safetensors + config.json (explorer.models.checkpoint)
      state/                   latest optimizer state (optimizer.safetensors + optimizer.json)

The manifest is rewritten atomically (temporary file, then rename) and metrics are
appended one line at a time, so a killed process leaves a readable run: a torn last line
is ignored. ``Run.open(path).load_model(step)`` is what ``explorer.load(path, step=...)`` calls.

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

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explorer.models.checkpoint import (
    load_checkpoint,
    load_state,
    read_tagged_json,
    read_weights,
    save_checkpoint,
)
from explorer.models.handle import ModelHandle

FORMAT = "explorer-run"
VERSION = 1
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
STATE = "state"
STATUSES = ("created", "running", "complete", "stopped", "interrupted", "failed")

__all__ = ["Curve", "Run", "RunMetrics"]


@dataclass(frozen=True)
class Curve:
    """One metric over training: ``values[i]`` was measured at ``steps[i]``."""

    name: str
    steps: torch.Tensor
    values: torch.Tensor

    def at(self, step: int) -> float:
        """The value at the logged step closest to ``step`` (NaN if the curve is empty)."""
        if len(self.steps) == 0:
            return math.nan
        i = int(torch.argmin((self.steps - int(step)).abs()))
        return float(self.values[i])


@dataclass(frozen=True)
class RunMetrics:
    """Every logged metric of a run, as curves (each over the steps where it was logged)."""

    curves: Mapping[str, Curve]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.curves)

    def get(self, name: str) -> Curve:
        if name not in self.curves:
            raise KeyError(f"no metric {name!r} in this run; logged: {', '.join(self.names)}")
        return self.curves[name]

    def __contains__(self, name: object) -> bool:
        return name in self.curves

    def last(self) -> dict[str, float]:
        """The latest value of every metric."""
        return {k: float(c.values[-1]) for k, c in self.curves.items() if len(c.values)}


class Run:
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
            shutil.rmtree(root)
        if root.exists() and any(root.iterdir()):
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
        run = cls(root, manifest)
        run._write_manifest()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """Open an existing run folder (raises if ``manifest.json`` is missing or foreign)."""
        root = Path(path)
        manifest = read_tagged_json(
            root / MANIFEST, FORMAT, VERSION, "run manifest", "not a training run"
        )
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
        return tuple(self._manifest["checkpoints"])

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

    def checkpoint_path(self, step: int) -> Path:
        return self.path / CHECKPOINTS / f"step_{int(step):09d}"

    def save_checkpoint(self, model: ModelHandle, step: int) -> None:
        """Save ``model``'s weights as the checkpoint of ``step``."""
        step = int(step)
        save_checkpoint(model, self.checkpoint_path(step), meta={"run": self.name, "step": step})
        checkpoints = sorted(set(self._manifest["checkpoints"]) | {step})
        self._manifest["checkpoints"] = checkpoints
        self._manifest["last_step"] = max(step, self._manifest.get("last_step") or 0)
        self._write_manifest()

    def load_model(self, step: int | None = None) -> ModelHandle:
        """A fresh model with the weights of checkpoint ``step`` (None: the last one)."""
        step = self._check_step(step)
        model = load_checkpoint(self.checkpoint_path(step))
        model.name = f"{self.name}@{step}"
        return model

    def load_into(self, model: ModelHandle, step: int | None = None) -> ModelHandle:
        """Copy the weights of checkpoint ``step`` into ``model`` (cheaper than ``load_model``)."""
        step = self._check_step(step)
        path = self.checkpoint_path(step)
        load_state(model, read_weights(path), str(path))
        return model

    # ------------------------------------------------------------------ metrics
    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Append one row of metrics for ``step`` (floats; NaN/inf are stored as null)."""
        row: dict[str, Any] = {"step": int(step)}
        for key, value in values.items():
            number = float(value)
            row[str(key)] = number if math.isfinite(number) else None
        with open(self.path / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()

    def rows(self) -> list[dict[str, Any]]:
        """Every logged row, in order; a torn last line (killed mid-write) is skipped."""
        file = self.path / METRICS
        if not file.is_file():
            return []
        out = []
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                out.append(row)
        return out

    def metrics(self) -> RunMetrics:
        """All metrics as curves; where a step was logged twice, the later row wins."""
        by_step: dict[int, dict[str, Any]] = {}
        for row in self.rows():
            by_step.setdefault(row["step"], {}).update(row)
        names: dict[str, None] = {}
        for row in by_step.values():
            names.update(dict.fromkeys(k for k in row if k != "step"))
        curves = {}
        for name in names:
            pts = [(s, r[name]) for s, r in sorted(by_step.items()) if name in r]
            steps = torch.tensor([s for s, _ in pts], dtype=torch.long)
            values = torch.tensor(
                [math.nan if v is None else float(v) for _, v in pts], dtype=torch.float32
            )
            curves[name] = Curve(name, steps, values)
        return RunMetrics(curves)

    def truncate(self, step: int) -> None:
        """Forget metrics logged at or after ``step`` and checkpoints after it (for resuming)."""
        kept = [r for r in self.rows() if r["step"] < step]
        tmp = self.path / (METRICS + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.path / METRICS)
        for s in [s for s in self.steps if s > step]:
            shutil.rmtree(self.checkpoint_path(s), ignore_errors=True)
        self._manifest["checkpoints"] = [s for s in self.steps if s <= step]
        self._manifest["last_step"] = step
        self._write_manifest()

    # ------------------------------------------------------- optimizer state
    def save_optimizer(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """Keep the optimizer state after ``step`` updates (tensors as safetensors)."""
        from explorer.training.optim_state import save_optimizer_state

        save_optimizer_state(optimizer, self.path / STATE, step)

    def load_optimizer(self, optimizer: torch.optim.Optimizer) -> int | None:
        """Restore the saved optimizer state into ``optimizer``; returns its step (or None)."""
        from explorer.training.optim_state import load_optimizer_state

        return load_optimizer_state(optimizer, self.path / STATE)

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

    def _write_manifest(self) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self._manifest, indent=2), encoding="utf-8")
        os.replace(tmp, self.path / MANIFEST)


def _jsonable(what: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {err}"
        ) from None
