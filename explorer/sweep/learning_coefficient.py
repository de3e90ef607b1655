"""The local learning coefficient as a sweep measure: at a few checkpoints, after training.

Opt-in (``sweep(..., llc=LLCSampler(...))``): the LLC's SGLD chains cost far more than
every other measure together, so a sweep never pays for it unless asked. When asked, each
run estimates it (``explorer.models.learning_coefficient``: devinterp's SGLD) at up to
``llc_checkpoints`` of its checkpoints, spread evenly over the run (its first and last
included), once training and the study's own measures are finished. Training is untouched
(the estimate reads checkpoints), so a swept run's weights are the same with and without it,
and the time is reported on its own: ``llc_seconds`` in the point's record, beside
``train_seconds`` and ``measure_seconds``.

Each estimate samples around the checkpoint's weights with the study's examples
(``SweepStudy.llc_data``: grokking's training pairs and their answers; induction's fixed
batch of repeated-token sequences, next-token loss). The values land in the run's
``llc.json`` (``step``, ``llc``, ``llc_std``, ``init_loss``, ``seconds`` and the sampler's
settings), which ``read_learning_coefficients`` reads and ``Sweep.to_dataframe()`` adds to
the curves as the measures ``llc`` and ``llc_std``.

>>> import tempfile
>>> from explorer.sweep import sweep
>>> s = sweep("grokking", {"weight_decay": [1.0]}, folder=tempfile.mkdtemp() + "/llc",
...           base={"p": 5, "steps": 10, "d_model": 8}, executor="serial", progress=False,
...           llc=LLCSampler(draws=4, batch_size=8), llc_checkpoints=2)
>>> [row["step"] for row in read_learning_coefficients(s.run("weight_decay=1"))]
[0, 10]
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from explorer._atomic import write_atomic
from explorer.models.learning_coefficient import LLCSampler, learning_coefficient
from explorer.sweep.studies import SweepStudy
from explorer.training.run import Run

__all__ = ["LLC_FILE", "measure_learning_coefficients", "read_learning_coefficients"]

LLC_FILE = "llc.json"


def spread(steps: tuple[int, ...], n: int) -> list[int]:
    """``n`` of ``steps`` evenly spaced by position, the first and last included.

    >>> spread((0, 10, 20, 30, 40, 50), 3)
    [0, 20, 50]
    """
    if n >= len(steps):
        return list(steps)
    if n == 1:
        return [steps[-1]]
    picks = sorted({round(i * (len(steps) - 1) / (n - 1)) for i in range(n)})
    return [steps[i] for i in picks]


def measure_learning_coefficients(
    run: Run,
    study: SweepStudy,
    settings: Mapping[str, Any],
    sampler: LLCSampler,
    n_checkpoints: int,
) -> list[dict[str, Any]]:
    """Estimate the LLC at up to ``n_checkpoints`` of ``run``'s checkpoints and write them
    to its ``llc.json`` (replacing an earlier file); the rows written."""
    if study.llc_data is None:
        raise ValueError(
            f"study {study.name!r} gives no examples for the learning coefficient "
            "(SweepStudy.llc_data): leave llc=None"
        )
    inputs, labels = study.llc_data(settings)
    rows = []
    for step in spread(run.steps, n_checkpoints):
        got = learning_coefficient(run.load_model(step), inputs, labels=labels, sampler=sampler)
        rows.append(
            {
                "step": step,
                "llc": got.mean if math.isfinite(got.mean) else None,
                "llc_std": got.std if math.isfinite(got.std) else None,
                "init_loss": got.init_loss,
                "seconds": got.seconds,
                "n_beta": got.n_beta,
            }
        )
    body = {"sampler": dataclasses.asdict(sampler), "rows": rows}
    write_atomic(run.path / LLC_FILE, json.dumps(body, indent=1).encode())
    return rows


def read_learning_coefficients(run: Run) -> list[dict[str, Any]]:
    """The rows of ``run``'s ``llc.json`` (empty if the LLC was not measured)."""
    file = run.path / LLC_FILE
    if not file.is_file():
        return []
    try:
        body = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{str(file)!r} is not an LLC file written by explorer: {err}") from err
    return [dict(r, sampler=body.get("sampler")) for r in body.get("rows", [])]
