"""``Prediction``: a claim that a phenomenon can be foreseen, formed on some runs, judged on others.

A prediction is a hypothesis about runs, not about the units of one model. It names an
outcome (a yes/no column: "this run groks by step 600"), the features it predicts from
(internal measures at step ``k``, or settings), a predictor (``"logistic"`` or a
``"threshold"`` rule; ``explorer.hypotheses.predictors``) and a *baseline*: the same predictor
given only ``baseline_features``, by default the training and validation loss. Both are
fitted on the ``formation`` runs and scored on the ``held_out`` runs, which they never saw.

The verdict is about whether the features beat the baseline. Per held-out run, the
improvement is the baseline's Brier score minus the prediction's (``score="brier"``, the
default: squared error of the predicted probability) or the prediction's correctness minus
the baseline's (``score="accuracy"``, predicted probability >= 0.5 counts as yes). Their
mean over the held-out runs, with a paired bootstrap interval over those runs, is the
verdict's value: ``supported`` (the features beat the baseline) when the whole interval
lies above ``margin`` (0 unless stated), ``refuted`` when it lies wholly below, else
``inconclusive``; also ``inconclusive`` when the held-out runs are too few to decide
(fewer than ``MIN_HELD_OUT_RUNS``, or fewer than ``MIN_PER_OUTCOME`` runs of either outcome:
a held-out set of 9 runs, or one with 2 that grok, cannot tell a predictor from the base
rate; the note names the count needed) or the formation runs hold one outcome only.

Like any hypothesis it is data: ``to_dict``/``from_dict`` (no code), saved in a
``HypothesisStore`` with its verdicts, edited into new versions with ``replace``.
``test(runs)`` takes a table with one row per run (a pandas DataFrame indexed by run name,
or ``{run: {column: value}}``); ``explorer.sweep.prediction_table`` builds it from a sweep.

>>> import torch
>>> runs = {f"r{i}": {"signal": float(i % 2), "train_loss": 1.0, "test_loss": 2.0,
...                   "groks": i % 2} for i in range(40)}
>>> p = Prediction(claim="the signal says which runs grok", outcome="groks",
...                features=("signal",), formation=[f"r{i}" for i in range(20)],
...                held_out=[f"r{i}" for i in range(20, 40)])
>>> result = p.test(runs)
>>> result.verdict.status, result.beats_baseline
('supported', True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explorer._checks import check_choice, check_fraction, check_positive
from explorer.hypotheses.bootstrap import Evidence, bootstrap_interval
from explorer.hypotheses.calibration import Calibration, PredictionResult
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.predictors import PREDICTORS, FittedPredictor, fit_predictor
from explorer.hypotheses.verdict import Verdict, judge
from explorer.hypotheses.versioning import VERSION_TEXT, known_fields

__all__ = [
    "LOSS_FEATURES",
    "MIN_HELD_OUT_RUNS",
    "MIN_PER_OUTCOME",
    "SCORES",
    "Prediction",
    "claim_from_dict",
    "split_runs",
]

KIND = "prediction"  # the "kind" of a stored spec (a Hypothesis's spec has none)
SCORES = ("brier", "accuracy")
LOSS_FEATURES = ("train_loss", "test_loss")
MIN_HELD_OUT_RUNS = 10
MIN_PER_OUTCOME = 3


def _names(what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ValueError(f"{what} must be names (non-empty text), got {bad!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} repeat a name: {list(names)}")
    return names


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """A predicted outcome of runs, formed on ``formation`` runs, judged on ``held_out`` runs.

    Args:
        claim: the claim in words.
        outcome: the table's yes/no column to predict (1/0 or True/False).
        features: the columns the prediction uses (internal measures, or settings).
        formation, held_out: run names (rows of the table); disjoint.
        baseline_features: the columns the baseline predictor gets (default: the training
            and validation loss); ``()`` for the base rate of the formation runs.
        predictor: ``"logistic"`` or ``"threshold"`` (a rule of one cutoff per feature).
        score: ``"brier"`` or ``"accuracy"``: what the improvement over the baseline counts.
        margin: the improvement the interval must clear to say the features beat the baseline.
        step, by: what the table's columns mean, for the record and for rebuilding the
            table (the measures at step ``step``; the outcome by step ``by``); optional.
        n_boot, confidence, seed: the paired bootstrap over the held-out runs.
        dataset: the runs' source (a sweep's name or folder).
        id, parent_id: this version's identity, and the version it was edited from.
    """

    claim: str
    outcome: str
    features: tuple[str, ...]
    formation: tuple[str, ...]
    held_out: tuple[str, ...]
    baseline_features: tuple[str, ...] = LOSS_FEATURES
    predictor: str = "logistic"
    score: str = "brier"
    margin: float = 0.0
    step: int | None = None
    by: int | None = None
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    dataset: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.claim, str) or not self.claim.strip():
            raise ValueError("a prediction needs a claim in words (got an empty claim)")
        if not isinstance(self.outcome, str) or not self.outcome:
            raise ValueError(f"outcome must be the name of a yes/no column, got {self.outcome!r}")
        for name in ("features", "formation", "held_out", "baseline_features"):
            object.__setattr__(self, name, _names(name, getattr(self, name)))
        if not self.features:
            raise ValueError("a prediction needs at least one feature to predict from")
        for name in ("formation", "held_out"):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty: name the runs it holds")
        both = sorted(set(self.formation) & set(self.held_out))
        if both:
            raise ValueError(f"formation and held_out share runs {both[:5]}: they must be disjoint")
        for name in ("features", "baseline_features"):
            if self.outcome in getattr(self, name):
                raise ValueError(f"the outcome {self.outcome!r} cannot be one of the {name}")
        check_choice("predictor", self.predictor, PREDICTORS)
        check_choice("score", self.score, SCORES)
        margin = float(self.margin)
        if not math.isfinite(margin) or not -1 <= margin <= 1:
            raise ValueError(f"margin must be a number in [-1, 1], got {self.margin!r}")
        object.__setattr__(self, "margin", margin)
        for name in ("step", "by"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be a step (an integer) or None, got {value!r}")
        check_positive("n_boot", self.n_boot)
        check_fraction("confidence", self.confidence)
        if self.parent_id is not None and (
            not isinstance(self.parent_id, str) or not self.parent_id
        ):
            raise ValueError(f"parent_id must be an id (text) or None, got {self.parent_id!r}")

    @property
    def units(self) -> tuple:
        """A prediction names no units of a model (the store lists none)."""
        return ()

    # ------------------------------------------------------------------ testing
    def test(self, runs: Any) -> PredictionResult:
        """Fit on the formation runs of ``runs``, judge on its held-out runs (see the module)."""
        table = _rows(runs)
        columns = (*self.features, *self.baseline_features, self.outcome)
        form_x, form_b, form_y = self._arrays(table, self.formation, columns, "formation")
        held_x, held_b, held_y = self._arrays(table, self.held_out, columns, "held_out")
        fitted = fit_predictor(self.predictor, form_x, form_y, self.features)
        fitted_base = fit_predictor(self.predictor, form_b, form_y, self.baseline_features)
        probs, base_probs = fitted.probabilities(held_x), fitted_base.probabilities(held_b)
        return self._judge(held_y, probs, base_probs, fitted, fitted_base, form_y)

    def _arrays(
        self,
        table: dict[str, dict[str, Any]],
        names: Sequence[str],
        columns: Sequence[str],
        what: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        missing = [n for n in names if n not in table]
        if missing:
            raise KeyError(
                f"{len(missing)} {what} runs are not in the table: {missing[:5]}; it has "
                f"{len(table)} runs, e.g. {list(table)[:3]}"
            )
        rows = [table[n] for n in names]
        absent = sorted({c for r in rows for c in columns if c not in r})
        if absent:
            have = sorted({c for r in rows for c in r})
            raise KeyError(f"the table lacks columns {absent}; it has {have}")
        values = torch.tensor([[_number(r[c], c, n) for c in columns] for r, n in zip(rows, names)],
                              dtype=torch.float64)  # fmt: skip
        y = values[:, -1]
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(
                f"the outcome {self.outcome!r} must be yes/no (0/1 or bool) in every run"
            )
        f = len(self.features)
        return values[:, :f], values[:, f:-1], y

    def _judge(
        self,
        y: torch.Tensor,
        probs: torch.Tensor,
        base_probs: torch.Tensor,
        fitted: FittedPredictor,
        fitted_base: FittedPredictor,
        form_y: torch.Tensor,
    ) -> PredictionResult:
        if self.score == "brier":
            gain = (base_probs - y) ** 2 - (probs - y) ** 2
        else:
            gain = ((probs >= 0.5) == (y == 1)).double() - (
                (base_probs >= 0.5) == (y == 1)
            ).double()
        n_yes = int(y.sum())
        short = _too_few(len(y), n_yes, form_y)
        value = low = high = math.nan
        if len(y) >= 2:
            value, low, high = bootstrap_interval(
                Evidence(gain), n_boot=self.n_boot, confidence=self.confidence, seed=self.seed
            )
        status, note = (
            ("inconclusive", short)
            if short
            else judge(low, high, self.margin, "above", self.margin)
        )
        verdict = Verdict(
            hypothesis_id=self.id, claim=self.claim, status=status, note=note,
            value=value, ci_low=low, ci_high=high, confidence=self.confidence,
            threshold=self.margin, direction="above",
            measure=f"held-out {self.score} gain of {self.predictor}({', '.join(self.features)}) "
                    f"over {self.predictor}({', '.join(self.baseline_features) or 'base rate'})",
            baseline=self.margin, baseline_source=_baseline_text(self, fitted_base),
            n_examples=len(y), split=f"{len(y)} held-out runs ({n_yes} yes)",
            model_name=f"runs of {self.dataset or 'a table'}",
            model_fingerprint=_fingerprint(self.held_out, y),
            n_boot=self.n_boot, seed=self.seed,
            details={
                "brier": float(((probs - y) ** 2).mean()),
                "baseline_brier": float(((base_probs - y) ** 2).mean()),
                "accuracy": float(((probs >= 0.5) == (y == 1)).double().mean()),
                "baseline_accuracy": float(((base_probs >= 0.5) == (y == 1)).double().mean()),
                "n_formation": float(len(form_y)), "n_held_out": float(len(y)),
            },
        )  # fmt: skip
        return PredictionResult(
            prediction=self, verdict=verdict, runs=self.held_out, outcomes=y,
            probabilities=probs, baseline_probabilities=base_probs,
            fitted=fitted.describe(), baseline_fitted=fitted_base.describe(),
            calibration=Calibration.of(y, {"features": probs, "baseline": base_probs}),
        )  # fmt: skip

    # --------------------------------------------------------------- editing
    def replace(self, **changes: Any) -> Prediction:
        """A copy with some fields changed; a changed claim or test is a new version (a new
        id, ``parent_id`` this one), as ``Hypothesis.replace``."""
        copy = dataclasses.replace(self, **changes)
        if "id" in changes or not self._content_differs(copy):
            return copy
        return dataclasses.replace(
            copy, id=uuid.uuid4().hex, parent_id=changes.get("parent_id", self.id)
        )

    def _content_differs(self, other: Any) -> bool:
        def content(p: Any) -> dict[str, Any]:
            data = p.to_dict()
            for name in ("version", "id", "parent_id"):
                data.pop(name, None)
            return data

        return content(self) != content(other)

    # ----------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("features", "formation", "held_out", "baseline_features"):
            data[name] = list(data[name])
        return {"kind": KIND, "version": VERSION_TEXT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        """Rebuild from ``to_dict`` output; a malformed record raises ``ValueError`` naming why."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ValueError(f"not a prediction record (its kind is not {KIND!r})")
        known = {f.name for f in dataclasses.fields(cls)}
        data = known_fields({k: v for k, v in data.items() if k != "kind"}, known, "prediction")
        missing = sorted({"claim", "outcome", "features", "formation", "held_out"} - set(data))
        if missing:
            raise ValueError(f"the prediction record lacks {missing}")
        try:
            return cls(**data)
        except TypeError as err:
            raise ValueError(f"malformed prediction record: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Prediction:
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        return (
            f"{self.claim} [{self.predictor}({', '.join(self.features)}) vs "
            f"{', '.join(self.baseline_features) or 'base rate'}; {self.score} gain > {self.margin:g}]"
        )


def _number(value: Any, column: str, run: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"run {run!r} has no finite value of {column!r} (got {value!r})")
    return number


def _rows(runs: Any) -> dict[str, dict[str, Any]]:
    """``{run: {column: value}}`` from a DataFrame (index: run names; or a ``run`` column)
    or a mapping."""
    if hasattr(runs, "to_dict") and hasattr(runs, "columns"):
        frame = runs.set_index("run") if "run" in runs.columns else runs
        return {str(k): dict(v) for k, v in frame.to_dict(orient="index").items()}
    if isinstance(runs, Mapping):
        return {str(k): dict(v) for k, v in runs.items()}
    raise TypeError(
        f"runs must be a table: a DataFrame with one row per run, or {{run: {{column: value}}}}, "
        f"got {type(runs).__name__}"
    )


def _too_few(n: int, n_yes: int, form_y: torch.Tensor) -> str:
    short = []
    if n < MIN_HELD_OUT_RUNS:
        short.append(
            f"{n} held-out runs; a verdict needs >= {MIN_HELD_OUT_RUNS} ({MIN_HELD_OUT_RUNS - n} more)"
        )
    for count, what in ((n_yes, "yes"), (n - n_yes, "no")):
        if count < MIN_PER_OUTCOME:
            short.append(
                f"{count} held-out runs with outcome {what}; it needs >= {MIN_PER_OUTCOME}"
            )
    k = int(form_y.sum())
    if k in (0, len(form_y)):
        short.append(
            f"every formation run has outcome {'yes' if k else 'no'}: nothing to learn from"
        )
    return ("too few to decide: " + "; ".join(short)) if short else ""


def _baseline_text(p: Prediction, fitted: FittedPredictor) -> str:
    given = ", ".join(p.baseline_features) or "nothing (the base rate)"
    return f"the same {p.predictor} predictor given {given}: {fitted.describe()}"


def _fingerprint(names: Sequence[str], y: torch.Tensor) -> str:
    text = json.dumps([list(names), y.tolist()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def split_runs(
    runs: Iterable[str], *, held_out: float = 0.5, seed: int = 0
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(formation, held_out)``: the runs shuffled (seeded) and cut, ``held_out`` of them last.

    >>> split_runs([f"r{i}" for i in range(6)], seed=1)
    (('r1', 'r5', 'r2'), ('r0', 'r3', 'r4'))
    """
    names = list(runs)
    check_fraction("held_out", held_out)
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = len(names) - max(1, round(held_out * len(names)))
    if cut < 1:
        raise ValueError(f"{len(names)} runs cannot be split: both halves need at least one")
    shuffled = [names[i] for i in order]
    return tuple(shuffled[:cut]), tuple(shuffled[cut:])


def claim_from_dict(data: dict[str, Any]) -> Hypothesis | Prediction:
    """A stored claim: a ``Prediction`` when its record says ``kind: prediction``, else a
    ``Hypothesis`` (a store holds both in one table).

    >>> p = Prediction(claim="c", outcome="y", features=("f",), formation=["a"], held_out=["b"])
    >>> type(claim_from_dict(p.to_dict())).__name__
    'Prediction'
    """
    if isinstance(data, dict) and data.get("kind") == KIND:
        return Prediction.from_dict(data)
    return Hypothesis.from_dict(data)
