"""A sweep's runs as the table a ``Prediction`` is judged on, and which measures move first.

``prediction_table(sweep, step=k, by=K)`` gives one row per finished run (index: its name):
the settings it changes; every logged measure's value at step ``k`` (the last logged step at
or before ``k``: what was known then, nothing later) and its change since step ``k // 2``
(``<measure>_change``); ``grok_step``, the first logged step where test accuracy reached
``reach`` (NaN if never); and ``groks``, 1 if that step is at most ``K``. Runs that had
already grokked by step ``k`` are left out (``keep_decided=False``): the prediction would be
read off the test accuracy itself; their names are in ``table.attrs["decided"]``.

The internal measures logged while training (``INTERNAL_MEASURES``: weight norm, gradient
norm and noise, weight change, the embedding's Fourier sparsity) are known at step ``k``.
The restricted and excluded losses are not: they project onto the key frequencies of the
*final* embedding (Nanda et al.), which step ``k`` does not know yet, so they describe a run
afterwards (``measure_leads``) but never feed a prediction.

``loss_bump_table(sweep, step=k, by=K)`` is the same for an induction sweep and the claim
"the induction bump has happened, judged from head scores, before the loss shows it": per
finished run, the settings, the head scores (``HEAD_SCORES``) and the losses
(``INDUCTION_LOSSES``) at step ``k`` with their change since ``k // 2``, ``bump_step`` (the
step of the training loss's phase change, ``detect_phase_change`` over the whole logged
curve, when it falls by at least ``min_drop`` nats; else NaN) and ``bump``, 1 if that step
is at most ``K``. Runs whose bump came by step ``k`` are left out, as above.

``measure_leads(sweep)`` says which measures move before the test loss: for each run that
grokked and each measure, the first step after memorisation (``train_99``) where the
measure has covered half of its change from then to the end of the run, and that step's
lead over the test loss's own half-way step (positive: the measure moved first).

>>> import tempfile
>>> from explorer.sweep import sweep
>>> s = sweep("grokking", {"weight_decay": [1.0]}, seeds=[0, 1], folder=tempfile.mkdtemp() + "/s",
...           base={"p": 11, "steps": 30, "d_model": 16}, executor="serial", progress=False)
>>> table = prediction_table(s, step=10, by=30)
>>> sorted(c for c in table.columns if c.startswith("weight_norm"))
['weight_norm', 'weight_norm_change']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from explorer._display import pandas
from explorer.analysis.curves import detect_phase_change
from explorer.studies.grokking import grokking_progress
from explorer.sweep.result import Sweep

__all__ = [
    "HEAD_SCORES",
    "INDUCTION_LOSSES",
    "INTERNAL_MEASURES",
    "loss_bump_table",
    "measure_leads",
    "prediction_table",
]

INTERNAL_MEASURES = (
    "weight_norm",
    "grad_norm",
    "weight_change",
    "grad_noise",
    "embedding_gini",
    "embedding_key_frequencies",
)
LOSSES = ("train_loss", "test_loss")
#: the induction study's head scores (one cached pass of 32 prompts at every logged step)
HEAD_SCORES = ("induction_max_induction_score", "induction_max_previous_token_score")
#: its losses: training, and held-out on the first and the repeated half of [BOS][L][L]
INDUCTION_LOSSES = ("train_loss", "induction_first_half_loss", "induction_repeated_half_loss")


def _at(steps: Sequence[int], values: Sequence[float], step: int) -> float:
    """The last finite value logged at or before ``step`` (NaN if none)."""
    found = math.nan
    for s, v in zip(steps, values):
        if s > step:
            break
        if v is not None and math.isfinite(v):
            found = float(v)
    return found


def _curves(sweep: Sweep) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    long = sweep.to_dataframe().sort_values(["run", "measure", "step"])
    out: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for (run, measure), group in long.groupby(["run", "measure"], sort=False):
        values = [math.nan if v is None else float(v) for v in group["value"]]
        out.setdefault(str(run), {})[str(measure)] = (group["step"].astype(int).tolist(), values)
    return out


def _first_reach(curve: tuple[list[int], list[float]] | None, level: float) -> float:
    if curve is None:
        return math.nan
    for s, v in zip(*curve):
        if math.isfinite(v) and v >= level:
            return float(s)
    return math.nan


def prediction_table(
    sweep: Sweep,
    *,
    step: int,
    by: int,
    measures: Sequence[str] | None = None,
    reach: float = 0.95,
    keep_decided: bool = False,
) -> Any:
    """One row per finished run: settings, measures at ``step`` and their change since
    ``step // 2``, ``grok_step`` and ``groks`` (test accuracy >= ``reach`` by step ``by``).

    Args:
        sweep: a grokking sweep (``Sweep``; its finished runs are read).
        step: the step the prediction is made at (only what was logged by then is used).
        by: the step the outcome is judged at.
        measures: the logged measures to include (default: ``INTERNAL_MEASURES`` and the
            training and test loss).
        reach: the test accuracy that counts as grokked.
        keep_decided: keep runs that had grokked by ``step`` (left out by default).
    """
    _check_steps(step, by)
    names = list(measures) if measures is not None else [*INTERNAL_MEASURES, *LOSSES]
    return _run_table(
        sweep, names, step=step, by=by, keep_decided=keep_decided, needed=names,
        hint="choose measures= among them", outcome=("grok_step", "groks"),
        when=lambda mine: _first_reach(mine.get("test_acc"), reach),
    )  # fmt: skip


def _run_table(
    sweep: Sweep,
    names: Sequence[str],
    *,
    step: int,
    by: int,
    keep_decided: bool,
    needed: Sequence[str],
    hint: str,
    outcome: tuple[str, str],
    when: Callable[[dict[str, Any]], float],
) -> Any:
    """One row per finished run: settings, each of ``names`` at ``step`` and its change since
    ``step // 2``, then ``outcome[0]`` (the step ``when`` finds in the run's curves) and
    ``outcome[1]`` (1 if that step is at most ``by``). Runs decided by ``step`` are left out
    (``attrs["decided"]``) unless ``keep_decided``."""
    curves = _curves(sweep)
    rows, decided = {}, []
    for run in sweep.finished:
        mine = curves.get(run, {})
        missing = sorted({m for m in needed if m not in mine})
        if missing:
            raise KeyError(f"run {run!r} logged no {missing}; it logged {sorted(mine)}: {hint}")
        at = when(mine)
        if not keep_decided and at <= step:
            decided.append(run)
            continue
        row: dict[str, Any] = dict(sweep._point(run).settings)
        for m in names:
            now = _at(*mine[m], step)
            row[m] = now
            row[f"{m}_change"] = now - _at(*mine[m], step // 2)
        row[outcome[0]] = at
        row[outcome[1]] = int(at <= by)
        rows[run] = row
    frame = pandas().DataFrame.from_dict(rows, orient="index")
    frame.index.name = "run"
    frame.attrs["decided"] = decided
    frame.attrs["step"], frame.attrs["by"] = step, by
    return frame


def _check_steps(step: int, by: int) -> None:
    for what, value in (("step", step), ("by", by)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be a step >= 1, got {value!r}")
    if by <= step:
        raise ValueError(f"by ({by}) must come after step ({step}): a prediction looks ahead")


def _bump_step(curve: tuple[list[int], list[float]] | None, min_drop: float) -> float:
    """The step of the loss's phase change if it falls by ``min_drop`` or more, else NaN."""
    if curve is None:
        return math.nan
    pairs = [(s, v) for s, v in zip(*curve) if math.isfinite(v)]
    try:
        change = detect_phase_change([s for s, _ in pairs], [v for _, v in pairs])
    except ValueError:  # too few points, or no fall at all
        return math.nan
    return float(change.step) if change.before - change.after >= min_drop else math.nan


def loss_bump_table(
    sweep: Sweep,
    *,
    step: int,
    by: int,
    measures: Sequence[str] | None = None,
    loss: str = "train_loss",
    min_drop: float = 0.2,
    keep_decided: bool = False,
) -> Any:
    """One row per finished run of an induction sweep: settings, measures at ``step`` and
    their change since ``step // 2``, ``bump_step`` and ``bump`` (``loss`` had its phase
    change, a fall of at least ``min_drop`` nats, by step ``by``).

    Args:
        sweep: an induction sweep (``Sweep``; its finished runs are read).
        step: the step the prediction is made at (only what was logged by then is used).
        by: the step the outcome is judged at.
        measures: the logged measures to include (default: ``HEAD_SCORES`` and
            ``INDUCTION_LOSSES``).
        loss: the logged loss whose phase change is the bump.
        min_drop: how far (nats, before minus after) the loss must fall to count as a bump.
        keep_decided: keep runs whose bump came by ``step`` (left out by default).
    """
    _check_steps(step, by)
    drop = float(min_drop)
    if not math.isfinite(drop) or drop <= 0:
        raise ValueError(f"min_drop must be a positive number of nats, got {min_drop!r}")
    names = list(measures) if measures is not None else [*HEAD_SCORES, *INDUCTION_LOSSES]
    return _run_table(
        sweep, names, step=step, by=by, keep_decided=keep_decided, needed=[*names, loss],
        hint="choose measures= and loss= among them", outcome=("bump_step", "bump"),
        when=lambda mine: _bump_step(mine[loss], drop),
    )  # fmt: skip


def _half_step(steps: list[int], values: list[float], start: int) -> float:
    pairs = [(s, v) for s, v in zip(steps, values) if s >= start and math.isfinite(v)]
    if len(pairs) < 2:
        return math.nan
    first, last = pairs[0][1], pairs[-1][1]
    if abs(last - first) <= 1e-9 * max(1.0, abs(first)):
        return math.nan  # it did not move
    half = (first + last) / 2
    for s, v in pairs:
        if (v - half) * (last - first) >= 0:
            return float(s)
    return math.nan


def measure_leads(
    sweep: Sweep,
    measures: Sequence[str] = (*INTERNAL_MEASURES, "train_loss"),
    *,
    reference: str = "test_loss",
    progress_measures: Sequence[str] = ("restricted_loss", "excluded_loss"),
    runs: Sequence[str] | None = None,
) -> Any:
    """For each run that grokked: when each measure covered half its change after
    memorisation, against when ``reference`` did. A long table: ``run``, ``measure``,
    ``half_step``, ``reference_half_step``, ``lead`` (reference minus measure: positive when
    the measure moved first); NaN where a measure did not move.

    ``progress_measures`` come from the run's replayed progress table (``grokking_progress``).
    ``runs``: which runs (default: every finished run that reached 95% test accuracy);
    a run that never memorised is measured from step 0.
    """
    curves = _curves(sweep)
    rows = []
    if runs is None:
        runs = [
            r for r in sweep.finished
            if sweep.records[r].get("outcomes", {}).get("test_95") is not None
        ]  # fmt: skip
    for run in runs:
        if run not in sweep.records:
            raise KeyError(f"no finished run {run!r}; finished: {', '.join(sweep.finished)}")
        start = int(sweep.records[run].get("outcomes", {}).get("train_99") or 0)
        mine = dict(curves.get(run, {}))
        if progress_measures:
            progress = grokking_progress(sweep.run(run))
            steps = progress.steps.tolist()
            for m in progress_measures:
                mine[m] = (steps, getattr(progress, m).double().tolist())
        ref = _half_step(*mine[reference], start)
        for m in (*measures, *progress_measures):
            if m not in mine:
                raise KeyError(f"run {run!r} has no measure {m!r}; it has {sorted(mine)}")
            half = _half_step(*mine[m], start)
            rows.append((run, m, half, ref, ref - half))
    columns = ["run", "measure", "half_step", "reference_half_step", "lead"]
    return pandas().DataFrame(rows, columns=columns)
