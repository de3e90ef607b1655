"""Rebuilding a run's manifest from its checkpoint folders (``Run.repair(path, rebuild=True)``).

The manifest is what publishes a run's checkpoints; when it is deleted, truncated or damaged,
each ``checkpoints/step_*`` folder still holds a whole checkpoint (its config, weights and,
for the newest, the optimizer state). ``RunRebuild`` (part of ``Run``) reads each folder,
keeps those that are intact explorer checkpoints of one architecture, records their sizes and
SHA-256 checksums as they are now, and publishes a new manifest; what the old manifest said
about the data and training is kept when it can still be read. ``either_path_or_run`` lets
``repair`` be called on a folder (``Run.repair(path, rebuild=True)``: the manifest may be
gone, so no ``Run`` can be opened) as well as on a run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer._inside import OutsideFolderError, inside
from explorer.models.checkpoint import (
    CONFIG,
    WEIGHTS,
    check_config_fits_weights,
    read_header,
    read_tagged_json,
)
from explorer.models.config import config_from_dict
from explorer.training._run_layout import CHECKPOINTS, FORMAT, MANIFEST, STATUSES, VERSION
from explorer.training._run_repair import RunRepair, sha256_of
from explorer.training.optim_state import HEADER, TENSORS

__all__ = ["RunRebuild", "architecture_differs", "either_path_or_run"]

STEP_FOLDER = re.compile(r"step_(\d{9,})(?:-\d+)?")


def architecture_differs(model: object, config: Any) -> str | None:
    """How a checkpoint's ``config`` (an explorer config, or ``{"family", "config"}``
    as a config.json holds it) differs from a run's ``model`` record (``"d_model 16 vs 32"``,
    run first); None if it does not (the init seed may differ: it is not architecture)."""
    if hasattr(config, "to_dict"):
        family, own = config.family, json.loads(json.dumps(config.to_dict()))
    else:
        family, own = config.get("family"), config.get("config") or {}
    run = model if isinstance(model, dict) else {}
    theirs = run.get("config") if isinstance(run.get("config"), dict) else {}
    if run.get("family") != family:
        return f"family {run.get('family')!r} vs {family!r}"
    differ = sorted(
        k for k in set(own) | set(theirs) if k != "seed" and own.get(k) != theirs.get(k)
    )
    return ", ".join(f"{k} {theirs.get(k)!r} vs {own.get(k)!r}" for k in differ[:4]) or None


def either_path_or_run(method: Callable[..., list[str]]) -> Any:
    """``Run.method(path, **kw)`` on the class (the run is opened, or read leniently when
    ``rebuild=True``), ``run.method(**kw)`` on an instance."""

    class _Either:
        def __get__(self, run: Any, cls: Any) -> Callable[..., list[str]]:
            if run is not None:
                return method.__get__(run, cls)

            @functools.wraps(method)
            def on_folder(path: str | os.PathLike[str], **kwargs: Any) -> list[str]:
                rebuild = kwargs.get("rebuild", False)
                return method(cls._at(path) if rebuild is True else cls.open(path), **kwargs)

            return on_folder

    return _Either()


class RunRebuild(RunRepair):
    """The manifest-rebuilding method of ``Run``."""

    _unreadable: str | None = None

    @classmethod
    def _at(cls, path: str | os.PathLike[str]) -> Any:
        """A run over ``path`` whose manifest may be missing or unreadable."""
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"no folder {str(root)!r}: nothing to rebuild a run from")
        try:
            file = inside(root, MANIFEST, what="manifest", owner=f"run {str(root)!r}")
            manifest = read_tagged_json(file, FORMAT, VERSION, "run manifest", "it is missing")
            unreadable = None
        except (OSError, ValueError) as err:
            if "upgrade explorer" in str(err):
                raise
            manifest, unreadable = {}, str(err)
        run = cls(root, manifest)  # type: ignore[call-arg]
        run._unreadable = unreadable
        return run

    def _rebuild(self) -> list[str]:
        folder = inside(self.path, CHECKPOINTS, what="checkpoints folder", owner=self._owner)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{self._owner} has no {CHECKPOINTS}/ folder: there is nothing to rebuild "
                f"{MANIFEST} from"
            )
        old = self._manifest
        model = old.get("model") if isinstance(old.get("model"), dict) else None
        report: list[str] = []
        found: dict[int, list[tuple[int, str, dict[str, Any]]]] = {}
        for entry in sorted(folder.iterdir()):
            match = STEP_FOLDER.fullmatch(entry.name)
            if match is None:
                continue  # a staging folder or a stray file: removed as unpublished below
            if entry.is_symlink() or not entry.is_dir():
                report.append(f"left out {CHECKPOINTS}/{entry.name}: not a plain folder")
                continue
            step = int(match[1])
            try:
                record, header = self._read_folder(entry, step, model)
            except (OSError, ValueError, TypeError) as err:
                report.append(f"left out {CHECKPOINTS}/{entry.name}: {err}")
                continue
            if model is None:  # the first intact checkpoint says what the run trains
                model = {"family": header["family"], "config": header["config"]}
                name = (
                    header.get("meta", {}).get("run")
                    if isinstance(header.get("meta"), dict)
                    else None
                )
                old.setdefault("name", name or header.get("name") or self.path.name)
            found.setdefault(step, []).append((entry.stat().st_mtime_ns, entry.name, record))
        if not found:
            raise ValueError(
                f"{self._owner} has no intact checkpoint folder to rebuild {MANIFEST} from"
                + (f" ({'; '.join(report)})" if report else "")
            )
        index = {}
        for step, candidates in sorted(found.items()):
            candidates.sort()
            *older, (_, name, record) = candidates  # the newest write of that step wins
            index[str(step)] = {"dir": name, **record}
            for _, other, _ in older:
                report.append(f"left out {CHECKPOINTS}/{other}: an older copy of step {step}")
        steps = sorted(found)
        status = old.get("status")
        if status not in STATUSES or old.get("checkpoints") != steps:
            status = "interrupted"
        self._manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": str(old.get("name", self.path.name)),
            "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
            "model": model,
            "data": old.get("data", {}),
            "meta": old.get("meta", {}),
            "training": old.get("training", {}),
            "checkpoints": steps,
            "index": index,
            "status": status,
            "last_step": steps[-1],
        }
        self._write_manifest()
        head = f"rebuilt {MANIFEST} from {len(steps)} checkpoint folders (steps {steps})"
        if self._unreadable:
            head += f"; the old one could not be read ({self._unreadable}), so the data, meta "
            head += "and training it recorded are lost"
        self._unreadable = None
        return [head + "; SHA-256 checksums recorded from the files as they are now", *report] + (
            self._drop_unpublished()
        )

    def _read_folder(
        self, folder: Path, step: int, model: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The manifest entry of one checkpoint folder, and its config header; raises if the
        folder is not an intact checkpoint of the run's architecture."""
        for name in (CONFIG, WEIGHTS):
            inside(folder, name, what=f"file {name!r}", owner=self._owner)
        header = read_header(folder)
        family, config = header.get("family"), header.get("config")
        if not isinstance(family, str) or not isinstance(config, dict):
            raise ValueError(f"{CONFIG} has no 'family' and 'config'")
        check_config_fits_weights(config_from_dict(family, config), folder / WEIGHTS, folder.name)
        differ = None if model is None else architecture_differs(model, header)
        if differ:
            raise ValueError(f"another architecture than the run's (run vs folder: {differ})")
        names = [CONFIG, WEIGHTS]
        try:
            optimizer = inside(folder, HEADER, what="optimizer state", owner=self._owner)
            tensors = inside(folder, TENSORS, what="optimizer state", owner=self._owner)
            if optimizer.is_file() and tensors.is_file():
                if json.loads(optimizer.read_text(encoding="utf-8")).get("step") == step:
                    names += [HEADER, TENSORS]
        except (OutsideFolderError, ValueError, AttributeError):
            pass  # no usable optimizer state: training resumes with a fresh one
        files = {n: (folder / n).stat().st_size for n in names}
        return {"files": files, "sha256": {n: sha256_of(folder / n) for n in names}}, header
