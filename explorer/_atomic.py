"""Durable file writes: temporary name, fsync, rename, fsync the folder.

Every write that must survive a kill goes through here, so a test can stop the process at
each *write boundary* (before a file is opened, half-way through its bytes, after its bytes,
after its fsync, after a rename, after a folder fsync) and check that what is on disk still
reads as a consistent state. ``set_fault_hook(fn)`` installs ``fn(point, path)``, called at
each boundary; it may raise to simulate a kill there (tests raise a ``BaseException``
subclass so no ``except Exception`` in the code under test can swallow it).

Nothing here knows about checkpoints or runs; callers decide what is published by which
rename.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.json", b"{}")
>>> points = []
>>> with fault_hook(lambda point, path: points.append(point)):
...     write_atomic(folder / "a.json", b"[1]")
>>> points
['open', 'mid-write', 'written', 'fsync', 'rename', 'fsync-dir']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from explorer._inside import OutsideFolderError, is_inside, plain_name

FaultHook = Callable[[str, Path], None]

_hook: FaultHook | None = None


def _fsync(fd: int) -> None:
    os.fsync(fd)  # one place, so a test that only simulates kills can skip the disk flush


def set_fault_hook(hook: FaultHook | None) -> FaultHook | None:
    """Install ``hook(point, path)`` to be called at every write boundary; returns the old one."""
    global _hook
    old, _hook = _hook, hook
    return old


@contextmanager
def fault_hook(hook: FaultHook) -> Iterator[None]:
    """``set_fault_hook`` for the duration of a ``with`` block."""
    old = set_fault_hook(hook)
    try:
        yield
    finally:
        set_fault_hook(old)


def boundary(point: str, path: Path) -> None:
    if _hook is not None:
        _hook(point, path)


def fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable (no-op where folders can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folder entries are durable with the rename
        return
    try:
        _fsync(fd)
    finally:
        os.close(fd)
    boundary("fsync-dir", folder)


def write_durable(path: Path, data: bytes, *, append: bool = False, sync: bool = True) -> None:
    """Write (or append) ``data`` to ``path`` and fsync it (unless ``sync=False``); no rename."""
    boundary("open", path)
    with open(path, "ab" if append else "wb") as fh:
        half = len(data) // 2
        fh.write(data[:half])
        fh.flush()
        boundary("mid-write", path)  # a kill here leaves a torn file
        fh.write(data[half:])
        fh.flush()
        boundary("written", path)
        if sync:
            _fsync(fh.fileno())
    if sync:
        boundary("fsync", path)


def fsync_file(path: Path) -> None:
    """Flush a file written earlier without ``sync`` to the disk."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        _fsync(fh.fileno())
    boundary("fsync", path)


def replace(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` (atomic on POSIX) and fsync the folder of ``dst``."""
    os.replace(src, dst)
    boundary("rename", dst)
    fsync_dir(dst.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new bytes."""
    tmp = path.with_name(path.name + ".tmp")
    write_durable(tmp, data)
    replace(tmp, path)


def remove_tree(path: Path, root: Path) -> None:
    """Delete ``path`` (a folder, file or symlink) if it exists, and only inside ``root``.

    This is the one place explorer deletes files. ``path`` must be an entry of a folder that
    lies inside ``root`` (symlinks resolved) and, if it is a folder, lie inside ``root``
    itself; otherwise ``OutsideFolderError`` is raised and nothing is touched. A symlink is
    removed as a link: what it points to is never followed, and ``shutil.rmtree`` does not
    follow the links it meets inside a folder either. A kill part-way leaves an unpublished
    remnant.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    if not plain_name(path.name) or not is_inside(path.parent, root):
        raise OutsideFolderError(
            f"refusing to delete {str(path)!r}: it is not inside {str(root)!r}, the folder "
            "explorer was asked to change"
        )
    link = path.is_symlink()
    boundary("remove", path)
    if path.is_dir() and not link:
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
