"""The grokking progress measures of a whole run as a JSON table (shipped with a thinned run).

A shipped grokking run keeps a few checkpoints; ``grokking_progress`` replays every checkpoint
of the full run once and ``progress_table`` stores the result beside the shipped copy, as data
(``PROGRESS_FILE``). ``read_progress_table`` checks it and returns what ``grokking_progress``
builds its result from, labelled as precomputed.

>>> PROGRESS_FILE
'progress.json'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer.analysis.fourier import KeyFrequencies

PROGRESS_FILE = "progress.json"
MEASURES = ("train_loss", "test_loss", "train_acc", "test_acc", "restricted_loss",
            "excluded_loss", "gini", "weight_norm")  # fmt: skip


def progress_table(progress: Any, run_name: str) -> dict[str, Any]:
    """``progress`` (a ``GrokkingProgress`` replayed on every checkpoint of a run) as JSON."""
    if progress.precomputed is not None:
        raise ValueError("progress was itself read from a precomputed table: replay a full run")
    key = progress.key
    return {
        "what": "grokking_progress measures, precomputed by replaying every checkpoint of the "
        f"full run ({len(progress.steps)} checkpoints, float32)",
        "run": run_name,
        "checkpoints": len(progress.steps),
        "key": {"frequencies": list(key.frequencies), "fraction": key.fraction},
        "key_norms": list(key.norms),
        "steps": [int(s) for s in progress.steps],
        "measures": {n: [float(v) for v in getattr(progress, n)] for n in MEASURES},
    }


def read_progress_table(
    path: str | Path,
) -> tuple[list[int], KeyFrequencies, dict[str, list[float]], str]:
    """The table in ``path``, checked: ``(steps, key, measures, note)``; ``note`` says it was
    precomputed from the full run's checkpoints."""
    table = json.loads(Path(path).read_text())
    names = ("what", "checkpoints", "key", "key_norms", "steps", "measures")
    missing = [k for k in names if k not in table]
    missing += [n for n in MEASURES if n not in table.get("measures", {})]
    if missing:
        raise ValueError(f"{path} is not a grokking progress table: it lacks {missing}")
    n = len(table["steps"])
    wrong = [m for m, v in table["measures"].items() if len(v) != n]
    if wrong:
        raise ValueError(f"{path}: measures {wrong} do not have one value per step ({n})")
    k = table["key"]
    key = KeyFrequencies(tuple(k["frequencies"]), float(k["fraction"]), tuple(table["key_norms"]))
    note = f"precomputed from all {table['checkpoints']} checkpoints of the full run"
    return table["steps"], key, {m: table["measures"][m] for m in MEASURES}, note
