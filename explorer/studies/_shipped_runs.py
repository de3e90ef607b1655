"""What every study that ships a finished training run shares: opening a copy of it, and the
command line that retrains and re-ships it (``python -m explorer.studies.<study> --ship``).

>>> import tempfile
>>> from pathlib import Path
>>> from explorer.studies.induction_heads import SHIPPED_RUN
>>> run = open_shipped_run(SHIPPED_RUN, Path(tempfile.mkdtemp()) / "run")
>>> run.steps[0]
0
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from explorer._atomic import remove_tree
from explorer.training.run import Run


def open_shipped_run(shipped: Path, run_dir: str | Path) -> Run:
    """The run in ``run_dir``; a copy of the ``shipped`` run when the folder holds none yet."""
    path = Path(run_dir)
    if not (path / "manifest.json").is_file():
        if path.exists() and any(path.iterdir()):
            raise ValueError(f"{str(path)!r} is not empty and holds no run: choose another folder")
        shutil.copytree(shipped, path, dirs_exist_ok=True)
    return Run.open(path)


def ship_checkpoints(source: Run, dest: str | Path, steps: Sequence[int]) -> Run:
    """A copy of ``source`` in ``dest`` (replaced): every logged metric, the checkpoints of
    ``steps`` in float16 without optimizer state, and the source's status and training.

    >>> from explorer.models import zoo
    >>> src = Run.create(Path(tempfile.mkdtemp()) / "run", zoo.attention_only_transformer())
    >>> for step in (0, 5, 9):
    ...     src.save_checkpoint(zoo.attention_only_transformer(), step)
    ...     src.log(step, {"loss": 1.0 / (step + 1)})
    >>> copy = ship_checkpoints(src, Path(tempfile.mkdtemp()) / "shipped", [0, 9])
    >>> copy.steps, len(copy.metrics().get("loss").steps)
    ((0, 9), 3)
    """
    out = Path(dest)
    remove_tree(out, out.parent)  # the destination is replaced
    manifest = source.manifest
    first = source.load_model(source.steps[0])
    first.name = source.name
    shipped = Run.create(out, first, data=manifest["data"], meta=manifest.get("meta", {}))
    for row in source.rows():
        shipped.log(row.pop("step"), {k: math.nan if v is None else v for k, v in row.items()})
    for step in steps:
        model = source.load_model(step)
        model.name = source.name
        shipped.save_checkpoint(model, step, dtype=torch.float16)
    shipped.update(status=source.status, training=source.training)
    return shipped


def retrain_and_ship(
    prog: str,
    shipped: Path,
    train: Callable[[Path], Run],
    ship: Callable[[Run], Run],
    argv: Sequence[str] | None = None,
) -> None:
    """``prog [--run FOLDER] [--ship]``: train on one thread (the floats the shipped run
    recorded) into FOLDER (default: a temporary one), then ship it to ``shipped``."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--run", help="train into this folder (default: a temporary one)")
    parser.add_argument("--ship", action="store_true", help=f"then ship it to {shipped}")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(Path(args.run) if args.run else Path(tempfile.mkdtemp()) / shipped.name)
    finally:
        torch.set_num_threads(threads)
    print(f"trained: {run.path} ({len(run.steps)} checkpoints)")
    if args.ship:
        done = ship(run)
        size = sum(f.stat().st_size for f in done.path.rglob("*") if f.is_file())
        print(f"shipped to {done.path} ({size / 1024:.0f} KiB, steps {list(done.steps)})")
