"""Checking a run folder against its manifest, and dropping what does not match.

``RunRepair`` is part of ``Run`` (``training.run``): ``problems()`` says how published files
differ from what the manifest published (edited, deleted or truncated by hand);
``repair()`` unpublishes damaged checkpoints and removes every unpublished file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer._atomic import remove_tree
from explorer.training._run_layout import CHECKPOINTS, MANIFEST, STATE
from explorer.training.optim_state import HEADER

__all__ = ["RunRepair"]


class RunRepair:
    """The consistency methods of ``Run``."""

    path: Path
    _manifest: dict[str, Any]
    steps: tuple[int, ...]
    checkpoint_path: Any
    _write_manifest: Any

    def problems(self, step: int | None = None) -> list[str]:
        """What is inconsistent in the published checkpoint ``step`` (None: every one)."""
        out = []
        for s in self.steps if step is None else (step,):
            entry = self._manifest.get("index", {}).get(str(s))
            folder = self.checkpoint_path(s)
            where = f"{CHECKPOINTS}/{folder.name}"
            if not folder.is_dir():
                out.append(f"checkpoint {s} is listed in {MANIFEST} but {where} is missing")
                continue
            for file, size in (entry or {}).get("files", {}).items():
                path = folder / file
                if not path.is_file():
                    out.append(f"{where}/{file} is missing")
                elif path.stat().st_size != size:
                    out.append(
                        f"{where}/{file} has {path.stat().st_size} bytes; {MANIFEST} "
                        f"published it with {size}"
                    )
            if entry and HEADER in entry["files"] and (folder / HEADER).is_file():
                try:
                    saved = json.loads((folder / HEADER).read_text(encoding="utf-8")).get("step")
                except (ValueError, AttributeError):
                    saved = "unreadable"
                if saved != s:
                    out.append(f"{where}/{HEADER} holds the optimizer state of step {saved}")
        return out

    def repair(self) -> list[str]:
        """Drop damaged checkpoints and every unpublished file; what was dropped, as sentences.

        A checkpoint whose files do not match what the manifest published (edited, deleted
        or truncated by hand) is unpublished, so training resumes from the newest intact one.
        """
        report = []
        bad = [s for s in self.steps if self.problems(s)]
        for s in bad:
            report.append(f"dropped checkpoint {s}: {'; '.join(self.problems(s))}")
        if bad:
            dirs = [self.checkpoint_path(s) for s in bad]
            for s in bad:
                self._manifest["index"].pop(str(s), None)
            self._manifest["checkpoints"] = [s for s in self.steps if s not in bad]
            self._manifest["last_step"] = self.steps[-1] if self.steps else None
            self._write_manifest()
            for folder in dirs:
                remove_tree(folder)
        report += self._drop_unpublished()
        return report

    def _drop_unpublished(self) -> list[str]:
        """Remove files no published state refers to (left by a kill); what was removed."""
        published = {self.checkpoint_path(s).name: s for s in self.steps}
        removed = []
        folder = self.path / CHECKPOINTS
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if entry.name not in published:
                removed.append(f"removed unpublished {CHECKPOINTS}/{entry.name}")
                remove_tree(entry)
                continue
            listed = self._manifest.get("index", {}).get(str(published[entry.name]))
            for file in sorted(entry.iterdir()) if listed is not None else []:
                if file.name not in listed["files"]:  # e.g. optimizer state dropped by "last"
                    removed.append(f"removed unpublished {CHECKPOINTS}/{entry.name}/{file.name}")
                    remove_tree(file)
        for entry in sorted(self.path.glob("*.tmp")):
            removed.append(f"removed unpublished {entry.name}")
            remove_tree(entry)
        legacy = self.path / STATE  # explorer < 0.2 kept one optimizer state for the run
        if legacy.is_dir():
            try:
                saved = json.loads((legacy / HEADER).read_text(encoding="utf-8")).get("step")
            except (OSError, ValueError, AttributeError):
                saved = None
            if saved != self._manifest.get("last_step"):
                removed.append(f"removed {STATE}/ (optimizer state of step {saved})")
                remove_tree(legacy)
        return removed
