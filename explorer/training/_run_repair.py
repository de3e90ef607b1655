"""Checking a run folder against its manifest, and dropping what does not match.

``RunRepair`` is part of ``Run`` (``training.run``): ``problems()`` says how published files
differ from what the manifest published (edited, deleted, truncated or bit-flipped by hand:
the manifest records each file's size and SHA-256), and which paths in the manifest would
lead outside the run folder; ``repair()`` unpublishes damaged checkpoints and removes every
unpublished file, deleting only inside the run folder; ``truncate(step)`` forgets what came
after a checkpoint, saying what it deletes. ``Run.repair(path, rebuild=True)``
rebuilds a deleted or damaged manifest from the checkpoint folders (``_run_rebuild``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from explorer._atomic import remove_tree, write_atomic
from explorer._inside import OutsideFolderError, inside, plain_name
from explorer.training._run_layout import CHECKPOINTS, MANIFEST, STATE, step_dir
from explorer.training.optim_state import HEADER

__all__ = ["RunRepair", "sha256_of"]

HEX = frozenset("0123456789abcdef")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_step(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RunRepair:
    """The consistency methods of ``Run``."""

    path: Path
    _manifest: dict[str, Any]
    steps: tuple[int, ...]
    _write_manifest: Any
    rows: Any
    _metrics_file: Any
    _warned_no_checksums: bool = False

    # ---------------------------------------------------------------- paths
    @property
    def _owner(self) -> str:
        return f"run {str(self.path)!r}"

    def _entry(self, step: int) -> dict[str, Any] | None:
        index = self._manifest.get("index")
        entry = index.get(str(int(step))) if isinstance(index, dict) else None
        return entry if isinstance(entry, dict) else None

    def checkpoint_path(self, step: int) -> Path:
        """The folder of checkpoint ``step``; refused (``OutsideFolderError``, a ValueError)
        if the manifest names one outside the run folder or a symlink leading out of it."""
        entry = self._entry(step)
        name = entry.get("dir") if entry else step_dir(int(step))
        return inside(
            self.path,
            CHECKPOINTS,
            name,
            what=f"the folder of checkpoint {int(step)}",
            owner=self._owner,
        )

    def _checkpoint_file(self, step: int, name: str) -> Path:
        return inside(
            self.checkpoint_path(step),
            name,
            what=f"file {name!r} of checkpoint {int(step)}",
            owner=self._owner,
        )

    def _entry_problems(self, step: int) -> list[str]:
        """What in the manifest's entry for ``step`` is malformed or leads outside the run
        (cheap: no file is read)."""
        entry = self._entry(step)
        if entry is None:
            return []
        out = []
        try:
            self.checkpoint_path(step)
        except OutsideFolderError as err:
            return [str(err)]
        files = entry.get("files")
        if not isinstance(files, dict):
            return [f"{MANIFEST} lists no files for checkpoint {step}"]
        for name, size in files.items():
            if not plain_name(name):
                out.append(
                    f"{MANIFEST} names file {name!r} in checkpoint {step}, which is not a plain "
                    "name inside its folder: refused"
                )
            elif not _is_step(size):
                out.append(f"{MANIFEST} gives file {name!r} of checkpoint {step} the size {size!r}")
        sums = entry.get("sha256", {})
        if not isinstance(sums, dict) or any(
            not isinstance(v, str) or len(v) != 64 or set(v) - HEX for v in sums.values()
        ):
            out.append(f"{MANIFEST} holds malformed SHA-256 checksums for checkpoint {step}")
        return out

    def _manifest_problems(self) -> list[str]:
        """Problems of the manifest as a whole and of every entry's paths (no file is read)."""
        out = []
        listed = self._manifest.get("checkpoints")
        if not isinstance(listed, list) or not all(_is_step(s) for s in listed):
            return [f"{MANIFEST} lists checkpoints {listed!r}, not whole steps >= 0"]
        if listed != sorted(set(listed)):
            out.append(f"{MANIFEST} lists the checkpoints out of order or twice: {listed}")
        for s in self.steps:
            out += self._entry_problems(s)
        return out

    def _refuse_if_unsafe(self, doing: str) -> None:
        """Raise before a destructive call if any manifest path is malformed or leads out."""
        problems = self._manifest_problems()
        if problems:
            raise ValueError(
                f"refusing to {doing}: the manifest of {self._owner} is damaged: "
                f"{'; '.join(problems)}. Nothing was changed. Call "
                f"Run.open({str(self.path)!r}).repair() to drop what it names (nothing outside "
                "the run folder is touched)"
            )

    # ---------------------------------------------------------------- checks
    def problems(self, step: int | None = None) -> list[str]:
        """What is inconsistent in the published checkpoint ``step`` (None: every one, and
        the manifest itself): missing files, sizes or SHA-256 checksums that differ from
        what the manifest published, paths that lead outside the run folder."""
        out = self._manifest_problems() if step is None else []
        for s in self.steps if step is None else (step,):
            out += self._checkpoint_problems(s)
        return out

    def _checkpoint_problems(self, s: int) -> list[str]:
        bad = self._entry_problems(s)
        if bad:
            return bad
        out = []
        entry = self._entry(s)
        folder = self.checkpoint_path(s)
        where = f"{CHECKPOINTS}/{folder.name}"
        if not folder.is_dir():
            return [f"checkpoint {s} is listed in {MANIFEST} but {where} is missing"]
        sums = (entry or {}).get("sha256", {})
        for file, size in (entry or {}).get("files", {}).items():
            try:
                path = self._checkpoint_file(s, file)
            except OutsideFolderError as err:
                out.append(str(err))
                continue
            if not path.is_file():
                out.append(f"{where}/{file} is missing")
            elif path.stat().st_size != size:
                out.append(
                    f"{where}/{file} has {path.stat().st_size} bytes; {MANIFEST} "
                    f"published it with {size}"
                )
            elif file in sums and sha256_of(path) != sums[file]:
                out.append(
                    f"{where}/{file} does not match the SHA-256 checksum {MANIFEST} published "
                    "for it: its bytes changed after it was saved (same size)"
                )
        if entry and HEADER in entry["files"] and (folder / HEADER).is_file():
            try:
                saved = json.loads((folder / HEADER).read_text(encoding="utf-8")).get("step")
            except (ValueError, AttributeError, OSError):
                saved = "unreadable"
            if saved != s:
                out.append(f"{where}/{HEADER} holds the optimizer state of step {saved}")
        return out

    def _verify(self, step: int, names: tuple[str, ...]) -> Path:
        """The folder of checkpoint ``step``, once the files ``names`` about to be read are
        inside the run and match their published SHA-256 (when the manifest has one)."""
        folder = self.checkpoint_path(step)
        entry = self._entry(step) or {}
        sums = entry.get("sha256", {}) if isinstance(entry.get("sha256", {}), dict) else {}
        for name in names:
            path = self._checkpoint_file(step, name)
            if name in sums and path.is_file() and sha256_of(path) != sums[name]:
                raise ValueError(
                    f"{CHECKPOINTS}/{folder.name}/{name} of {self._owner} does not match the "
                    f"SHA-256 checksum {MANIFEST} published for it (changed since it was "
                    f"saved). Run.open({str(self.path)!r}).repair() drops that checkpoint, "
                    "so loading and training use an intact one"
                )
        if entry and not sums and not self._warned_no_checksums:
            self._warned_no_checksums = True
            warnings.warn(
                f"{self._owner} was saved without SHA-256 checksums (explorer before 0.3): "
                "sizes are checked, but a change that keeps a file's size is not detected. "
                f"Run.repair({str(self.path)!r}, rebuild=True) records them from the files "
                "as they are now",
                UserWarning,
                stacklevel=3,
            )
        return folder

    # ---------------------------------------------------------------- truncate
    def truncate(self, step: int, *, dry_run: bool = False) -> list[str]:
        """Delete the checkpoints after ``step`` and the metrics logged at or after it (to
        resume from ``step``); what it deleted (with ``dry_run``: what it would), as sentences.

        ``step`` must be one of the run's checkpoint steps: anything else (a negative step,
        a step between checkpoints or after the last, not a whole number) is refused and
        nothing is deleted. Optimizer state lives inside each checkpoint and carries its
        step, so after ``truncate(step)`` training resumes with the state of ``step`` itself
        (or, for a checkpoint saved without one, a fresh optimizer, with a warning), never
        another's.
        """
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"truncate needs a checkpoint step (a whole number), got {step!r}")
        if not isinstance(dry_run, bool):
            raise TypeError(f"dry_run must be True or False, got {dry_run!r}")
        if step not in self.steps:
            have = ", ".join(map(str, self.steps)) or "none"
            raise ValueError(
                f"truncate({step}) refused: {step} is not a checkpoint step of {self._owner} "
                f"(its checkpoints: {have}). truncate(step) keeps the checkpoints up to step "
                "and deletes the later ones; nothing was deleted"
            )
        return self._truncate_to(step, dry_run=dry_run)

    def _truncate_to(self, step: int, *, dry_run: bool = False) -> list[str]:
        self._refuse_if_unsafe(f"truncate to step {step}")
        dropped = [s for s in self.steps if s > step]
        dirs = [self.checkpoint_path(s) for s in dropped]
        rows = self.rows()
        kept = [r for r in rows if r["step"] < step]
        verb = "will delete" if dry_run else "deleted"
        report = [f"{verb} checkpoint {s} ({CHECKPOINTS}/{d.name})" for s, d in zip(dropped, dirs)]
        if len(kept) < len(rows):
            report.append(f"{verb} {len(rows) - len(kept)} metric rows logged at step >= {step}")
        if dry_run:
            return report + self._drop_unpublished(dry_run=True)
        for s in dropped:
            self._manifest.get("index", {}).pop(str(s), None)
        self._manifest["checkpoints"] = [s for s in self.steps if s <= step]
        self._manifest["last_step"] = step
        if dropped and self._manifest["status"] in ("complete", "stopped"):
            self._manifest["status"] = "interrupted"  # so ``train`` continues it
        self._write_manifest()  # published first: a kill below leaves only garbage
        for folder in dirs:
            remove_tree(folder, self.path)
        write_atomic(self._metrics_file(), "".join(json.dumps(r) + "\n" for r in kept).encode())
        return report + self._drop_unpublished()

    # ---------------------------------------------------------------- repair
    def _repair(self, *, rebuild: bool = False) -> list[str]:
        """Drop damaged checkpoints and every unpublished file; what was dropped, as sentences.

        A checkpoint whose files do not match what the manifest published (edited, deleted,
        truncated or changed in place by hand) is unpublished, so training resumes from the
        newest intact one. A manifest entry naming a folder outside the run is unpublished
        and nothing it names is touched.
        """
        if not isinstance(rebuild, bool):
            raise TypeError(f"rebuild must be True or False, got {rebuild!r}")
        listed = self._manifest.get("checkpoints")
        index = self._manifest.get("index", {})
        if (
            not isinstance(listed, list)
            or not all(_is_step(s) for s in listed)
            or not (isinstance(index, dict))
        ):
            raise ValueError(
                f"the checkpoint list or index of {self._owner}'s {MANIFEST} is damaged "
                f"(checkpoints: {str(listed)[:80]}), so it cannot say which folders are "
                f"published: nothing was deleted. Run.repair({str(self.path)!r}, rebuild=True) "
                "rebuilds it from the checkpoint folders"
            )
        report = []
        if isinstance(listed, list) and listed != sorted(set(listed)):
            self._manifest["checkpoints"] = sorted(set(listed))
            report.append(f"sorted the checkpoint list of {MANIFEST} (it was {listed})")
        bad = {s: self.problems(s) for s in self.steps}
        bad = {s: p for s, p in bad.items() if p}
        for s, problems in bad.items():
            report.append(f"dropped checkpoint {s}: {'; '.join(problems)}")
        if bad or report:
            dirs = []
            for s in bad:
                try:
                    dirs.append(self.checkpoint_path(s))
                except OutsideFolderError:
                    pass  # never a folder of this run: only the manifest entry goes
                self._manifest.get("index", {}).pop(str(s), None)
            self._manifest["checkpoints"] = [s for s in self.steps if s not in bad]
            self._manifest["last_step"] = self.steps[-1] if self.steps else None
            self._write_manifest()
            for folder in dirs:
                remove_tree(folder, self.path)
        report += self._drop_unpublished()
        return report

    def _drop_unpublished(self, dry_run: bool = False) -> list[str]:
        """Remove files no published state refers to (left by a kill); what was removed.
        Only entries inside the run folder are removed; a symlink is removed as a link."""
        published: dict[str, int] = {}
        for s in self.steps:
            try:
                published[self.checkpoint_path(s).name] = s
            except OutsideFolderError:
                continue
        verb = "will remove" if dry_run else "removed"
        removed = []
        doomed: list[Path] = []
        folder = inside(self.path, CHECKPOINTS, what="checkpoints folder", owner=self._owner)
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if entry.name not in published:
                what = "symlink" if entry.is_symlink() else "unpublished"
                removed.append(f"{verb} {what} {CHECKPOINTS}/{entry.name}")
                doomed.append(entry)
                continue
            listed = self._entry(published[entry.name])
            for file in sorted(entry.iterdir()) if listed is not None else []:
                if file.name not in listed["files"]:  # e.g. optimizer state dropped by "last"
                    removed.append(f"{verb} unpublished {CHECKPOINTS}/{entry.name}/{file.name}")
                    doomed.append(file)
        for entry in sorted(self.path.glob("*.tmp")):
            removed.append(f"{verb} unpublished {entry.name}")
            doomed.append(entry)
        legacy = self.path / STATE  # explorer < 0.2 kept one optimizer state for the run
        if legacy.is_dir() or legacy.is_symlink():
            try:
                header = inside(self.path, STATE, HEADER, what="legacy optimizer state")
                saved = json.loads(header.read_text(encoding="utf-8")).get("step")
            except (OSError, ValueError, AttributeError):
                saved = None
            if saved != self._manifest.get("last_step"):
                removed.append(f"{verb} {STATE}/ (optimizer state of step {saved})")
                doomed.append(legacy)
        if not dry_run:
            for path in doomed:
                remove_tree(path, self.path)
        return removed
