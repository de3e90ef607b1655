"""The sweep that ships: grokking's phase diagram over weight decay x training fraction.

``tutorials/when_does_grokking_happen.ipynb`` studies ``PHASE_GRID`` x ``PHASE_SEEDS``
(4 weight decays x 4 training fractions x 3 seeds = 48 runs) of modular addition at
``PHASE_BASE`` (p = 41, d_model 64, lr 1e-2, at most 400 full-batch epochs; the rest is
grokking's ``CI_SETTING``), a setting small enough for a laptop: about 50 s per run on one
thread of a busy 2-core machine, 41 minutes for all 48 run one after another
(``docs/sweeps.md`` has the measured figures).

What ships under ``explorer/studies/trained/grokking-sweep`` is the sweep folder thinned by
``ship_sweep``: ``sweep.json``, every completion record, and per run its manifest, every
logged metric and its replayed progress table; checkpoints (float16, no optimizer state)
only for the runs matching ``CHECKPOINT_RUNS`` (seed 0 at training fraction 0.5: one per
weight decay), and of those only the first and the last. A run
without checkpoints still gives every curve and outcome; ``explorer.load`` needs one with.

The second part of the tutorial sweeps the induction study over model width
(``INDUCTION_GRID`` x ``INDUCTION_SEEDS``: 5 widths x 2 seeds = 10 runs of its default
setting, 1,200 steps each: 47 s to 4 minutes per run on one thread); it ships under
``explorer/studies/trained/induction-size-sweep`` as metrics and records only (no
checkpoints), and ``induction_size_sweep(folder, retrain=True)`` trains it again.

``phase_sweep(folder)`` copies the shipped sweep into ``folder`` (unless one is there) and
opens it; ``phase_sweep(folder, retrain=True)`` runs the whole sweep there instead (resumable:
rerun it and only unfinished runs train). Re-ship with
``python -m explorer.sweep.shipped --run FOLDER --ship``.

>>> sorted(PHASE_GRID), len(PHASE_SEEDS)
(['train_frac', 'weight_decay'], 3)
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from explorer._atomic import remove_tree
from explorer.studies.grokking_shipped import ship_checkpoints  # the shipped-run thinning
from explorer.studies.grokking_table import PROGRESS_FILE
from explorer.sweep.execute import sweep
from explorer.sweep.folder import DONE, RUNS, SWEEP, SweepFolder
from explorer.sweep.result import Sweep
from explorer.training.run import Run

__all__ = [
    "CHECKPOINT_RUNS",
    "INDUCTION_GRID",
    "INDUCTION_SEEDS",
    "PHASE_BASE",
    "PHASE_GRID",
    "PHASE_SEEDS",
    "SHIPPED_INDUCTION_SWEEP",
    "SHIPPED_SWEEP",
    "induction_size_sweep",
    "phase_sweep",
    "ship_sweep",
]

#: what ``tutorials/when_does_grokking_happen.ipynb`` sweeps: 4 x 4 settings x 3 seeds
PHASE_GRID = {"weight_decay": [0.3, 1.0, 2.0, 4.0], "train_frac": [0.3, 0.4, 0.5, 0.6]}
PHASE_SEEDS = [0, 1, 2]
PHASE_BASE = {"p": 41, "d_model": 64, "lr": 0.01, "steps": 400}
#: the runs that keep checkpoints (their first and last): those whose settings match these
CHECKPOINT_RUNS = {"seed": 0, "train_frac": 0.5}
TRAINED = Path(__file__).resolve().parents[1] / "studies" / "trained"
SHIPPED_SWEEP = TRAINED / "grokking-sweep"

#: the tutorial's second part: the induction study at five widths x two seeds (its defaults
#: otherwise: 2 attention-only layers, 4 heads, 1,200 steps); emergence needs >= 5 sizes
INDUCTION_GRID = {"d_model": [8, 16, 24, 32, 64]}
INDUCTION_SEEDS = [0, 1]
SHIPPED_INDUCTION_SWEEP = TRAINED / "induction-size-sweep"


def ship_sweep(
    source: str | Path,
    dest: str | Path = SHIPPED_SWEEP,
    keep: Mapping[str, Any] | None = None,
) -> Sweep:
    """A thinned copy of the sweep in ``source`` at ``dest`` (replaced): every record,
    metric and progress table; the first and last checkpoints (float16) of the runs whose
    settings match ``keep`` (default ``CHECKPOINT_RUNS``), none of the others'."""
    keep = CHECKPOINT_RUNS if keep is None else keep
    place = SweepFolder.open(source)
    out = Path(dest)
    remove_tree(out, out.parent)
    (out / RUNS).mkdir(parents=True)
    shutil.copy2(place.path / SWEEP, out / SWEEP)
    shutil.copytree(place.path / DONE, out / DONE)
    for name, record in place.finished().items():
        run = Run.open(place.run_dir(name))
        settings = record["settings"]
        chosen = all(settings.get(k) == v for k, v in keep.items())
        ship_checkpoints(run, out / RUNS / name, [run.steps[0], run.steps[-1]] if chosen else [])
        progress = run.path / PROGRESS_FILE
        if progress.is_file():
            table = json.loads(progress.read_text())
            (out / RUNS / name / PROGRESS_FILE).write_text(json.dumps(table) + "\n")
    return Sweep.open(out)


def phase_sweep(folder: str | Path, *, retrain: bool = False, progress: bool = True) -> Sweep:
    """The tutorial's sweep in ``folder``: a copy of the shipped one, or (``retrain=True``)
    trained there from scratch on a local Ray (resumable)."""
    path = Path(folder)
    if retrain:
        return sweep(
            "grokking", PHASE_GRID, seeds=PHASE_SEEDS, base=PHASE_BASE, folder=path,
            threads=1, progress=progress,
        )  # fmt: skip
    return _copy_shipped(SHIPPED_SWEEP, path)


def induction_size_sweep(
    folder: str | Path, *, retrain: bool = False, progress: bool = True
) -> Sweep:
    """The tutorial's induction size sweep (``INDUCTION_GRID`` x ``INDUCTION_SEEDS``) in
    ``folder``: a copy of the shipped one (metrics and records, no checkpoints), or
    (``retrain=True``) trained there on a local Ray (resumable)."""
    path = Path(folder)
    if retrain:
        return sweep(
            "induction", INDUCTION_GRID, seeds=INDUCTION_SEEDS, folder=path, threads=1,
            progress=progress,
        )  # fmt: skip
    return _copy_shipped(SHIPPED_INDUCTION_SWEEP, path)


def _copy_shipped(shipped: Path, path: Path) -> Sweep:
    if not (path / SWEEP).is_file():
        if path.exists() and any(path.iterdir()):
            raise ValueError(
                f"{str(path)!r} is not empty and holds no sweep: choose another folder"
            )
        shutil.copytree(shipped, path, dirs_exist_ok=True)
    return Sweep.open(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m explorer.sweep.shipped")
    parser.add_argument("--run", required=True, help="train (or resume) the sweep in this folder")
    parser.add_argument("--ship", action="store_true", help="then ship it with the package")
    parser.add_argument(
        "--induction", action="store_true", help="the induction size sweep, not the phase diagram"
    )
    args = parser.parse_args(argv)
    if args.induction:
        done = induction_size_sweep(args.run, retrain=True)
    else:
        done = phase_sweep(args.run, retrain=True)
    print(f"trained: {done}")
    if args.ship:
        if args.induction:
            shipped = ship_sweep(args.run, SHIPPED_INDUCTION_SWEEP, keep={"never": True})
        else:
            shipped = ship_sweep(args.run)
        size = sum(f.stat().st_size for f in shipped.folder.rglob("*") if f.is_file())
        print(f"shipped to {shipped.folder} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
