"""Per-example evidence and its bootstrap confidence interval.

A test measures one or two numbers per held-out example (``Evidence``); a statistic turns
them into one value: a mean, a ratio of sums (patching recovery), AUROC, precision or
recall against a concept mask. Every statistic is written for example *weights*, so one
call scores all bootstrap resamples at once: a resample is a row of counts (how often each
example was drawn), and the plain value is the row of ones. Concept tests resample
positives and negatives separately (stratified), so every resample has both, in the
split's own numbers.

A concept statistic (AUROC, precision, recall) needs ``MIN_PER_CLASS`` (10) concept and 10
other examples to decide anything (precision, a rate among the examples that fire, also 10
that fire): with ``n`` positives all detected, the exact 95% bound on
the missed share is still ``3/n`` (the rule of three), so below 10 the data cannot rule out a
rate under 0.7, the lowest threshold a detector claim is usually held to; and a stratified
resample of fewer than 10 draws from so few values that a perfect score gives a zero-width
interval (3 positives out of 200 gave "1.00 [1.00, 1.00]"). ``check_enough`` raises
``TooFewExamples`` naming the count needed (``too_few`` returns the sentence); a hypothesis
turns it into ``inconclusive``.

>>> ev = Evidence(torch.tensor([1.0, 2.0, 3.0, 4.0]))
>>> point, low, high = bootstrap_interval(ev, n_boot=500, confidence=0.9, seed=0)
>>> point, low <= point <= high
(2.5, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from explorer._checks import check_choice, check_fraction, check_positive
from explorer._display import Shown, num, pandas

STATISTICS = ("mean", "ratio", "auroc", "precision", "recall")
CONCEPT_STATISTICS = ("auroc", "precision", "recall")
MIN_PER_CLASS = 10


class TooFewExamples(ValueError):
    """Too few concept (or other) examples for a concept statistic to decide anything."""

    def __init__(self, statistic: str, n_pos: int, n_neg: int, minimum: int = MIN_PER_CLASS):
        self.counts = (n_pos, n_neg)
        short = [
            f"{minimum - n} more {what}"
            for n, what in ((n_pos, "concept examples"), (n_neg, "other examples"))
            if n < minimum
        ]
        super().__init__(
            f"too few to decide: the held-out split has {n_pos} concept and {n_neg} other "
            f"examples; {statistic} needs >= {minimum} of each ({' and '.join(short)})"
        )


@dataclass(frozen=True, repr=False)
class Evidence(Shown):
    """Numbers measured on each held-out example.

    Attributes:
        values: one number per example (a score, an effect, an activation).
        statistic: how values become one number: ``"mean"``; ``"ratio"`` (sum of values
            over sum of ``denominators``); ``"auroc"``, ``"precision"``, ``"recall"``
            (values as a detector of ``positives``).
        denominators: per-example denominators for ``"ratio"``.
        positives: boolean concept mask for the detector statistics.
        fire_threshold: a value above it counts as firing (precision and recall).
        details: extra numbers for the verdict (e.g. the metric before and after).
    """

    values: torch.Tensor
    statistic: str = "mean"
    denominators: torch.Tensor | None = None
    positives: torch.Tensor | None = None
    fire_threshold: float = 0.0
    details: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("statistic", self.statistic, STATISTICS)
        values = torch.as_tensor(self.values).detach().double().flatten()
        if values.numel() == 0:
            raise ValueError("no per-example values: the held-out split gave nothing to measure")
        if not torch.isfinite(values).all():
            raise ValueError("the test produced NaN or infinite per-example values")
        object.__setattr__(self, "values", values)
        if self.statistic == "ratio":
            if self.denominators is None:
                raise ValueError("a ratio statistic needs per-example denominators")
            object.__setattr__(self, "denominators", self.denominators.detach().double().flatten())
        if self.statistic in CONCEPT_STATISTICS:
            if self.positives is None:
                raise ValueError(f"{self.statistic} needs a concept mask of positive examples")
            positives = self.positives.detach().bool().flatten()
            n_pos = int(positives.sum())
            if n_pos == 0 or n_pos == len(positives):  # not even defined
                raise TooFewExamples(self.statistic, n_pos, len(positives) - n_pos)
            object.__setattr__(self, "positives", positives)

    def __len__(self) -> int:
        return len(self.values)

    def to_dataframe(self) -> Any:
        """One row per example: its ``value`` (and ``denominator``, ``positive`` when set)."""
        columns: dict[str, Any] = {"example": range(len(self)), "value": self.values.numpy()}
        if self.denominators is not None:
            columns["denominator"] = self.denominators.numpy()
        if self.positives is not None:
            columns["positive"] = self.positives.numpy()
        return pandas().DataFrame(columns)

    def _summary(self) -> str:
        details = ", ".join(f"{k} {num(v)}" for k, v in list(self.details.items())[:4])
        return (
            f"{self.statistic} over {len(self)} examples, mean value {num(float(self.values.mean()))}"
            + (f", {int(self.positives.sum())} positive" if self.positives is not None else "")
            + (f"; {details}" if details else "")
        )

    def _table(self) -> tuple:
        rows = [("statistic", self.statistic), ("examples", len(self)),
                ("mean value", float(self.values.mean()))]  # fmt: skip
        rows += [(k, v) for k, v in self.details.items()]
        return "Evidence", ("", "value"), rows, ""


def too_few(evidence: Evidence, minimum: int = MIN_PER_CLASS) -> str:
    """Why a concept statistic cannot decide on these examples ("" if it can).

    >>> too_few(Evidence(torch.arange(200.0), "auroc", positives=torch.arange(200) < 3))
    'too few to decide: the held-out split has 3 concept and 197 other examples; auroc needs >= 10 of each (7 more concept examples)'
    """
    if evidence.statistic in CONCEPT_STATISTICS and evidence.positives is not None:
        n_pos = int(evidence.positives.sum())
        n_neg = len(evidence) - n_pos
        if min(n_pos, n_neg) < minimum:
            return str(TooFewExamples(evidence.statistic, n_pos, n_neg, minimum))
        n_fired = int((evidence.values > evidence.fire_threshold).sum())
        if evidence.statistic == "precision" and n_fired < minimum:  # its denominator
            return (
                f"too few to decide: {n_fired} held-out examples fire above "
                f"{evidence.fire_threshold:g}; precision needs >= {minimum} "
                f"({minimum - n_fired} more)"
            )
    return ""


def check_enough(evidence: Evidence, minimum: int = MIN_PER_CLASS) -> None:
    """Raise ``TooFewExamples`` if a concept statistic has < ``minimum`` of either class."""
    if evidence.statistic in CONCEPT_STATISTICS and evidence.positives is not None:
        n_pos = int(evidence.positives.sum())
        if min(n_pos, len(evidence) - n_pos) < minimum:
            raise TooFewExamples(evidence.statistic, n_pos, len(evidence) - n_pos, minimum)


def statistic(evidence: Evidence, weights: torch.Tensor) -> torch.Tensor:
    """The statistic for each row of example weights ``[n_resamples, n_examples]``."""
    v, w = evidence.values, weights.double()
    if evidence.statistic == "mean":
        return (w @ v) / w.sum(1)
    if evidence.statistic == "ratio":
        denominator = w @ evidence.denominators  # type: ignore[operator]
        return (w @ v) / torch.where(denominator == 0, torch.nan, denominator)
    pos = evidence.positives
    assert pos is not None
    if evidence.statistic == "auroc":
        # P(positive scores above negative), ties count half: weighted Mann-Whitney U.
        vp, vn = v[pos], v[~pos]
        wins = (vp[:, None] > vn[None, :]).double() + 0.5 * (vp[:, None] == vn[None, :]).double()
        wp, wn = w[:, pos], w[:, ~pos]
        return torch.einsum("bi,ij,bj->b", wp, wins, wn) / (wp.sum(1) * wn.sum(1))
    fires = (v > evidence.fire_threshold).double()
    hits = w @ (fires * pos.double())
    if evidence.statistic == "precision":
        fired = w @ fires
        return torch.where(fired == 0, torch.zeros_like(fired), hits / fired.clamp_min(1e-12))
    return hits / (w @ pos.double())


def resample_weights(evidence: Evidence, n_boot: int, seed: int) -> torch.Tensor:
    """Bootstrap counts ``[n_boot, n]``; stratified by the concept mask when there is one."""
    n = len(evidence)
    g = torch.Generator().manual_seed(seed)
    groups = (
        [torch.arange(n)]
        if evidence.positives is None
        else [
            torch.nonzero(evidence.positives).flatten(),
            torch.nonzero(~evidence.positives).flatten(),
        ]
    )
    weights = torch.zeros(n_boot, n, dtype=torch.float64)
    for members in groups:
        draws = members[torch.randint(len(members), (n_boot, len(members)), generator=g)]
        weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    return weights


def bootstrap_interval(
    evidence: Evidence, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(value, low, high)``: the statistic and its percentile bootstrap interval."""
    check_positive("n_boot", n_boot)
    check_fraction("confidence", confidence)
    point = float(statistic(evidence, torch.ones(1, len(evidence), dtype=torch.float64))[0])
    if point != point:
        raise ValueError(
            f"the {evidence.statistic} is undefined on these examples (a zero denominator: "
            "for patching, the clean and corrupted runs score the same)"
        )
    samples = statistic(evidence, resample_weights(evidence, n_boot, seed))
    samples = samples[~torch.isnan(samples)]
    if samples.numel() == 0:
        raise ValueError(f"the {evidence.statistic} is undefined on every bootstrap resample")
    tail = (1 - confidence) / 2
    low, high = torch.quantile(samples, torch.tensor([tail, 1 - tail], dtype=samples.dtype))
    return point, float(low), float(high)
