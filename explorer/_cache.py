"""A folder where explorer keeps what it can recompute bit for bit, named by
``$EXPLORER_CACHE`` (unset or empty: nothing is kept, everything is computed each time).

Each kind of result has a subfolder; a file is named by a hash of everything that decides
it, written under a name of its own and renamed into place, so processes that share the
folder (the test suite's workers and the kernels they start) read whole files, and two
that write the same file write the same bytes. A result is computed under its lock
(``one_writer``): a second process that needs it while the first computes it waits and
reads the first one's file instead of computing it again. Kept today: the standard library
tokenized per tokenizer (``studies.stdlib_lm_data``) and the planted MNIST models of the
auditing game (``studies.auditing.plant``).

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> path = cached_path("example", "seed", 3, folder=folder)
>>> path.parent.name, path.suffix
('example', '.safetensors')
>>> write_cached(path, b"bytes")
>>> path.read_bytes()
b'bytes'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock, and two processes may compute the same file
    fcntl = None  # type: ignore[assignment]

__all__ = ["CACHE_ENV", "cached_path", "one_writer", "write_cached"]

CACHE_ENV = "EXPLORER_CACHE"


def cached_path(
    kind: str, *key: object, folder: str | os.PathLike[str] | None = None
) -> Path | None:
    """Where the result of ``kind`` decided by ``key`` is kept (it may not exist yet), in
    ``folder`` (default ``$EXPLORER_CACHE``); None when no folder is set."""
    root = folder if folder is not None else os.environ.get(CACHE_ENV)
    if not root:
        return None
    digest = hashlib.sha256("\n".join(map(str, key)).encode()).hexdigest()[:24]
    return Path(root) / kind / f"{digest}.safetensors"


def write_cached(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file of its own and one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def one_writer(path: Path | None) -> Iterator[None]:
    """Hold ``path``'s lock (a ``.lock`` file beside it) while its result is looked up and,
    if missing, computed and written: whoever needs the same result meanwhile waits, then
    finds the file. Nothing is locked when ``path`` is None (no cache folder)."""
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
