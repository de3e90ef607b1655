"""The grokking tutorial's training run, as it ships: a few checkpoints and the full table.

``tutorials/grokking.ipynb`` studies the run of ``DEFAULT_SETTING`` (seed 0): about 2,550
epochs, 157 s of CPU on one idle core, minutes on a busy one. A finished run ships under
``explorer/studies/trained/grokking``: every logged metric, ``SHIPPED_CHECKPOINTS``
checkpoints in float16 (the first, the last, the checkpoint nearest each phase boundary, and
some in between; the copy that ships was chosen when the phases were read at the checkpoints
only, so its boundaries now fall between them) and ``progress.json``, the progress measures ``grokking_progress`` computed by replaying *every*
checkpoint of the full run (55 of them). The analysis reads that table when it opens the
thinned copy (``GrokkingProgress.precomputed`` then says so); a test recomputes the measures
on the shipped checkpoints and compares them with the table at those steps.

``open_run(folder)`` copies the shipped run into ``folder`` unless a run is already there;
``train_grokking(folder)`` on an empty folder trains from scratch (a tqdm bar with the time
remaining). Rebuild the shipped copy with ``python -m explorer.studies.grokking_shipped --ship``;
a test replays its first epochs and compares them with the logged metrics (epochs 0-3 only:
another CPU rounds differently, and training grows the difference after them).

>>> SHIPPED_CHECKPOINTS, SHIPPED_RUN.name
(8, 'grokking')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explorer.studies._shipped_runs import open_shipped_run, retrain_and_ship, ship_checkpoints
from explorer.studies.grokking import DEFAULT_SETTING, grokking_progress, train_grokking
from explorer.studies.grokking_table import PROGRESS_FILE, progress_table
from explorer.training.run import Run

#: The run that ships with explorer (metrics, float16 checkpoints, the full progress table).
SHIPPED_RUN = Path(__file__).resolve().parent / "trained" / "grokking"
SHIPPED_CHECKPOINTS = 8


def choose_checkpoints(run: Run, phases: Any, keep: int = SHIPPED_CHECKPOINTS) -> list[int]:
    """``keep`` checkpoint steps: the first, the last, each phase boundary (memorized, circuit
    start, cleanup start and end), then the free checkpoints nearest evenly spaced epochs."""
    steps = list(run.steps)
    if len(steps) <= keep:
        return steps
    bounds = (phases.memorized, phases.circuit_start, phases.cleanup_start, phases.cleanup_end)
    chosen = [steps[0], steps[-1]]
    for b in bounds:
        if b is not None and run.nearest_step(b) not in chosen:
            chosen.append(run.nearest_step(b))
    for k in range(1, keep):
        free = [s for s in steps if s not in chosen]
        if len(chosen) < keep and free:
            chosen.append(min(free, key=lambda s: abs(s - steps[-1] * k / keep)))
    return sorted(chosen)


def ship_run(run: Run | str | Path, dest: str | Path = SHIPPED_RUN) -> Run:
    """Copy ``run``'s metrics, ``choose_checkpoints`` (float16, no optimizer state) and the
    progress table of all its checkpoints to ``dest``, which is replaced."""
    source = run if isinstance(run, Run) else Run.open(run)
    progress = grokking_progress(source)
    shipped = ship_checkpoints(source, dest, choose_checkpoints(source, progress.phases))
    table = progress_table(progress, source.name)
    (shipped.path / PROGRESS_FILE).write_text(json.dumps(table, indent=1) + "\n")
    return shipped


def open_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir``; a copy of the shipped run when the folder holds none yet."""
    return open_shipped_run(SHIPPED_RUN, run_dir)


def main(argv: Sequence[str] | None = None) -> None:
    retrain_and_ship(
        "python -m explorer.studies.grokking_shipped",
        SHIPPED_RUN,
        lambda folder: train_grokking(folder, DEFAULT_SETTING),
        ship_run,
        argv,
    )


if __name__ == "__main__":
    main()
