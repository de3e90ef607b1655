"""Paths a file names, kept inside the folder that file came from.

A run's manifest names its checkpoint folders and their files; a shared or downloaded run
is data, not a trusted program, so a name like ``"../../victim"``, ``"/home/me"`` or a
symlink that leads out of the folder must never make explorer read, write or delete
anything outside it. ``inside(root, name, ...)`` is the one check: a name is one plain path
component (no separator, not ``.`` or ``..``, not absolute), and the path it gives, with
every symlink resolved, lies inside ``root`` resolved. Anything else raises
``OutsideFolderError`` (a ``ValueError``) naming the path and the folder.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> inside(root, "checkpoints", "step_000000001", what="checkpoint folder").name
'step_000000001'
>>> plain_name("../../victim"), plain_name("/home"), is_inside(root / "a" / "..", root)
(False, False, True)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OutsideFolderError", "inside", "is_inside", "plain_name"]


class OutsideFolderError(ValueError):
    """A path read from a file leads outside the folder it belongs to: refused."""


def plain_name(name: object) -> bool:
    """Whether ``name`` is one path component: a non-empty string, no separator, not . or ..
    and no NUL."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and not os.path.isabs(name)
        and not (len(name) > 1 and name[1] == ":")  # a Windows drive
    )


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, every symlink resolved, is ``root`` (resolved) or below it."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == top or top in real.parents


def inside(root: Path, *names: object, what: str = "path", owner: str | None = None) -> Path:
    """``root / names...``, refused unless each name is plain and the result stays inside.

    ``what`` says what the path is (``"checkpoint folder"``), ``owner`` whose it is (the run),
    so the error reads as a sentence: which path, which folder, why refused.
    """
    where = owner or f"folder {str(root)!r}"
    for name in names:
        if not plain_name(name):
            raise OutsideFolderError(
                f"{what} {name!r} is not a plain name inside {where}: a file may only name "
                "files and folders inside its own folder (no '/', '..' or absolute paths), "
                "so explorer refuses it"
            )
    path = Path(root)
    for name in names:  # plain names: only a symlink among them can lead out (lstat each)
        path = path / str(name)
        if os.path.islink(path) and not is_inside(path, root):
            raise OutsideFolderError(
                f"{what} {str(path)!r} of {where} is a symlink that leads outside it "
                f"(to {os.path.realpath(path)!r}): explorer only reads, writes and deletes "
                "inside the folder it was given, so it refuses it"
            )
    return path
