"""A real-text corpus every machine has: the source of Python's own standard library.

``stdlib_corpus()`` reads the ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` in
sorted order, leaving out folders that are not ordinary library code (test suites, IDLE,
demos, generated tables such as ``encodings`` and ``pydoc_data``) and anything installed
beside the library (``site-packages``). Nothing else is read: no ``.pyc``, no third-party
package, no network. The same Python version therefore gives the same corpus, and the
corpus records that version and a SHA-256 of its content so a difference is visible.

Files are split into training and held-out sets **by file**: a file is held out when the
hash of its relative path falls in one bucket of ``held_out_every`` (10 by default, so ~10%
of files). The rule depends on the path alone, so a file's side of the split does not move
when other files are added or removed in another Python version, and no held-out line is
ever seen in training.

>>> corpus = stdlib_corpus()
>>> corpus.python_version == platform.python_version()
True
>>> set(f.path for f in corpus.train).isdisjoint(f.path for f in corpus.held_out)
True
>>> any(f.path == "json/decoder.py" for f in corpus.files)
True
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXCLUDED_FOLDERS", "SourceFile", "StdlibCorpus", "held_out_file", "stdlib_corpus"]

#: Folder names left out wherever they occur in a path (tests, tools, generated tables).
EXCLUDED_FOLDERS = frozenset(
    {
        "__pycache__",
        "dist-packages",
        "encodings",
        "ensurepip",
        "idle_test",
        "idlelib",
        "lib2to3",
        "pydoc_data",
        "site-packages",
        "test",
        "tests",
        "turtledemo",
    }
)


@dataclass(frozen=True)
class SourceFile:
    """One file of the corpus: its path relative to the stdlib folder (POSIX) and its text."""

    path: str
    text: str

    def __repr__(self) -> str:
        return f"SourceFile({self.path!r}, {len(self.text):,} chars)"


@dataclass(frozen=True)
class StdlibCorpus:
    """The standard-library corpus of one Python version, split by file.

    Attributes:
        python_version: ``platform.python_version()`` of the interpreter read.
        root: the stdlib folder the files came from.
        train: the training files, sorted by path.
        held_out: the held-out files (never in ``train``), sorted by path.
        content_hash: SHA-256 over every file's path and text in sorted order (both splits).
        held_out_every: one file in this many (by path hash) is held out.
        skipped: files left out because they are not UTF-8.
    """

    python_version: str
    root: str
    train: tuple[SourceFile, ...]
    held_out: tuple[SourceFile, ...]
    content_hash: str
    held_out_every: int
    skipped: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[SourceFile, ...]:
        """Every file, both splits, sorted by path."""
        return tuple(sorted(self.train + self.held_out, key=lambda f: f.path))

    def split(self, name: str) -> tuple[SourceFile, ...]:
        """The files of split ``name``: ``"train"`` or ``"held_out"``."""
        if name == "train":
            return self.train
        if name == "held_out":
            return self.held_out
        raise ValueError(f"unknown split {name!r}: choose 'train' or 'held_out'")

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the corpus (stored with a trained run)."""
        return {
            "source": "python-stdlib",
            "python_version": self.python_version,
            "content_hash": self.content_hash,
            "held_out_every": self.held_out_every,
            "train_files": len(self.train),
            "held_out_files": len(self.held_out),
            "train_chars": sum(len(f.text) for f in self.train),
            "held_out_chars": sum(len(f.text) for f in self.held_out),
            "excluded_folders": sorted(EXCLUDED_FOLDERS),
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"StdlibCorpus(Python {self.python_version}: {d['train_files']} train files "
            f"({d['train_chars']:,} chars), {d['held_out_files']} held out "
            f"({d['held_out_chars']:,} chars), hash {self.content_hash[:12]})"
        )


def held_out_file(path: str, every: int = 10) -> bool:
    """Whether the file at relative POSIX ``path`` is held out (one bucket of ``every``).

    >>> held_out_file("json/decoder.py"), held_out_file("json/decoder.py")
    (False, False)
    """
    if every < 2:
        raise ValueError(f"held_out_every must be >= 2 (one file in that many), got {every}")
    return int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) % every == 0


def stdlib_corpus(
    root: str | Path | None = None, *, held_out_every: int = 10, max_files: int | None = None
) -> StdlibCorpus:
    """Read the standard library's source into a corpus split by file.

    Args:
        root: the folder to read (default: this interpreter's stdlib folder). Another
            folder of ``.py`` files works too, e.g. for a test.
        held_out_every: one file in this many is held out (by the hash of its path).
        max_files: keep only the first ``max_files`` files in sorted order (quick tests).

    Returns:
        a ``StdlibCorpus``; its ``content_hash`` changes whenever any kept file does.
    """
    base = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    if not base.is_dir():
        raise FileNotFoundError(f"no standard-library folder at {str(base)!r}")
    if max_files is not None and max_files < 1:
        raise ValueError(f"max_files must be a positive integer or None, got {max_files}")
    paths = sorted(
        (p.relative_to(base).as_posix(), p)
        for p in base.rglob("*.py")
        if p.is_file() and not _excluded(p.relative_to(base).parts[:-1])
    )
    if max_files is not None:
        paths = paths[:max_files]
    digest = hashlib.sha256()
    train: list[SourceFile] = []
    held: list[SourceFile] = []
    skipped: list[str] = []
    for rel, path in paths:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(rel)
            continue
        text = text.replace("\r\n", "\n")
        digest.update(rel.encode() + b"\0" + text.encode() + b"\0")
        (held if held_out_file(rel, held_out_every) else train).append(SourceFile(rel, text))
    if not train or not held:
        raise ValueError(
            f"{str(base)!r} gave {len(train)} training and {len(held)} held-out files: "
            "the corpus needs both (point root at a folder with more .py files)"
        )
    return StdlibCorpus(
        python_version=platform.python_version(),
        root=str(base),
        train=tuple(train),
        held_out=tuple(held),
        content_hash=digest.hexdigest(),
        held_out_every=held_out_every,
        skipped=tuple(skipped),
    )


def _excluded(folders: tuple[str, ...]) -> bool:
    return any(
        part in EXCLUDED_FOLDERS or part.startswith("config-") or part.startswith(".")
        for part in folders
    )
