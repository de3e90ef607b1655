"""``Verdict``: what testing a hypothesis on held-out data found, with its evidence.

The rule, which every verdict's summary states: a claim is ``supported`` when the whole
confidence interval lies on the claimed side of the threshold *and* beyond the baseline:
the 95th percentile of the measure on >= 20 random unit sets of the claim's size and kind
(the 5th for a claim "below"; ``hypotheses.baseline``), or a baseline value the hypothesis
gave. It is ``refuted`` when the interval lies wholly on the other side of the threshold,
and ``inconclusive`` otherwise: the interval straddles the threshold, random units do as
well, there was no baseline to compare with, or the held-out split had too few examples of
a class to decide (the note names the count needed). It records the value, the interval,
the baseline distribution, which model (weights fingerprint) and which split, and when.
Verdicts round-trip through JSON; their HTML form escapes every string.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from explorer._display import RecordShown, html_table
from explorer.hypotheses.versioning import VERSION_TEXT, known_fields

STATUSES = ("supported", "refuted", "inconclusive", "unavailable")
_NUMBERS = ("value", "ci_low", "ci_high")
DIRECTIONS = ("above", "below")


def decide(low: float, high: float, threshold: float, direction: str) -> str:
    """The status for an interval ``[low, high]`` against a one-sided claim.

    >>> decide(0.5, 0.7, 0.4, "above"), decide(0.1, 0.3, 0.4, "above"), decide(0.3, 0.5, 0.4, "above")
    ('supported', 'refuted', 'inconclusive')
    """
    if direction == "above":
        return "supported" if low > threshold else "refuted" if high < threshold else "inconclusive"
    return "supported" if high < threshold else "refuted" if low > threshold else "inconclusive"


def judge(
    low: float, high: float, threshold: float, direction: str, cutoff: float | None
) -> tuple[str, str]:
    """``(status, why)`` for an interval against the threshold and the baseline ``cutoff``.

    >>> judge(0.5, 0.7, 0.4, "above", 0.45)
    ('supported', '')
    >>> judge(0.5, 0.7, 0.4, "above", 0.6)[0], judge(0.1, 0.3, 0.4, "above", 0.0)[0]
    ('inconclusive', 'refuted')
    """
    status = decide(low, high, threshold, direction)
    if status != "supported":
        return status, ""
    if cutoff is None:
        return "inconclusive", "no baseline to compare with, so it cannot be supported"
    beaten = low > cutoff if direction == "above" else high < cutoff
    if not beaten:
        return "inconclusive", "clears the threshold, not the baseline"
    return "supported", ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, repr=False)
class Verdict(RecordShown):
    """The outcome of ``Hypothesis.test``.

    Attributes:
        status: ``"supported"``, ``"refuted"`` or ``"inconclusive"``.
        value: the statistic on the held-out split; ``ci_low``..``ci_high`` its bootstrap
            interval at ``confidence``.
        baseline: the same statistic for random units of the same kind (their mean over
            ``baseline_units``), or a value the hypothesis gave; None if neither was possible.
        baseline_p95, baseline_n_sets: the baseline distribution's summary: the cutoff a
            supported claim beat (95th percentile of the random sets' values; the 5th for a
            claim "below"; the given value itself) and how many random sets were measured.
        details: measure-specific numbers (e.g. the metric before and after ablation).
        note: why the status is what it is, where the interval alone does not say.
    """

    hypothesis_id: str
    claim: str
    status: str
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    threshold: float
    direction: str
    measure: str
    baseline: float | None
    baseline_source: str
    n_examples: int
    split: str
    model_name: str
    model_fingerprint: str
    n_boot: int
    seed: int
    baseline_units: tuple[tuple[str, ...], ...] = ()
    baseline_values: tuple[float, ...] = ()
    baseline_p95: float | None = None
    baseline_n_sets: int = 0
    details: dict[str, float] = field(default_factory=dict)
    timestamp: str = field(default_factory=_now)
    note: str = ""

    def __post_init__(self) -> None:
        for name in _NUMBERS:  # JSON has no NaN: an unavailable verdict stores null
            value = getattr(self, name)
            object.__setattr__(self, name, math.nan if value is None else float(value))
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}: one of {STATUSES}")
        object.__setattr__(
            self, "baseline_units", tuple(tuple(map(str, s)) for s in self.baseline_units)
        )
        object.__setattr__(self, "baseline_values", tuple(map(float, self.baseline_values)))
        object.__setattr__(self, "details", {str(k): float(v) for k, v in self.details.items()})

    @classmethod
    def unavailable(
        cls,
        hypothesis: Any,
        reason: str,
        model: Any,
        n_examples: int,
        status: str = "unavailable",
    ) -> Verdict:
        """A verdict with no value (``reason`` says why): ``"unavailable"`` (it could not run
        here) or ``"inconclusive"`` (the split cannot decide, e.g. too few concept examples)."""
        return cls(
            hypothesis_id=hypothesis.id,
            claim=hypothesis.claim,
            status=status,
            value=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            confidence=hypothesis.confidence,
            threshold=hypothesis.threshold,
            direction=hypothesis.direction,
            measure=(
                f"{hypothesis.measure.describe()} of {', '.join(map(str, hypothesis.units))}"
                if hypothesis.units
                else hypothesis.measure.describe()
            ),
            baseline=None,
            baseline_source="",
            n_examples=n_examples,
            split=hypothesis.held_out.describe(),
            model_name=model.name,
            model_fingerprint=model.fingerprint(),
            n_boot=hypothesis.n_boot,
            seed=hypothesis.seed,
            note=reason,
        )

    @property
    def beats_baseline(self) -> bool | None:
        """Whether the interval clears the baseline's cutoff (its 95th percentile; the mean
        for records older than the rule) on the claimed side (None: no baseline)."""
        cutoff = self.baseline_p95 if self.baseline_p95 is not None else self.baseline
        if cutoff is None or math.isnan(self.ci_low):
            return None
        if self.direction == "above":
            return self.ci_low > cutoff
        return self.ci_high < cutoff

    @property
    def recordable(self) -> bool:
        """Whether a store keeps it: a measured value (not unavailable, not unscorable)."""
        return self.status != "unavailable" and not math.isnan(self.value)

    def rule(self) -> str:
        """The rule this verdict applied, with its numbers."""
        side = ">" if self.direction == "above" else "<"
        text = f"supported needs the CI {side} {self.threshold:g}"
        if self.baseline_p95 is not None and self.baseline_n_sets:
            pct = "95th" if self.direction == "above" else "5th"
            text += (
                f" and {side} {self.baseline_p95:.3g} ({pct} pct of "
                f"{self.baseline_source}, mean {self.baseline:.3g})"
            )
        elif self.baseline is not None:
            text += f" and {side} the baseline {self.baseline:.3g} ({self.baseline_source})"
        else:
            text += f" and a baseline ({self.baseline_source or 'none'})"
        return text

    def summary(self) -> str:
        """One line a person can read: status, value, interval, threshold, baseline."""
        if self.status == "unavailable":
            return self.note or "unavailable"
        if math.isnan(self.value):  # the split could not decide: say why, and on what
            return (
                f"{self.status}: {self.measure}: {self.note}; {self.split}; "
                f"model {self.model_name} @{self.model_fingerprint}"
            )
        pct = round(100 * self.confidence)
        text = (
            f"{self.status}: {self.measure} = {self.value:.3g} "
            f"[{self.ci_low:.3g}, {self.ci_high:.3g}] ({pct}% CI); {self.rule()}"
        )
        if self.note:
            text += f"; {self.note}"
        return text + f"; {self.split}; model {self.model_name} @{self.model_fingerprint}"

    def __str__(self) -> str:
        return self.summary()

    def _summary(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["baseline_units"] = [list(s) for s in self.baseline_units]
        out["baseline_values"] = list(self.baseline_values)
        for name in _NUMBERS:
            out[name] = None if math.isnan(out[name]) else out[name]
        out["version"] = VERSION_TEXT
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        known = {f.name for f in dataclasses.fields(cls)}
        data = known_fields(data, known, "verdict")
        try:
            return cls(**data)
        except TypeError as err:
            raise ValueError(f"malformed verdict record: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        return cls.from_dict(json.loads(text))

    def _table(self) -> tuple:
        """The card of a verdict: its status above, one row per thing a reader checks."""
        rows = [
            ("claim", self.claim),
            ("measure", self.measure),
            ("value", f"{self.value:.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}]"),
            ("threshold", f"{self.direction} {self.threshold:g}"),
            (
                "baseline",
                "none"
                if self.baseline is None
                else f"{self.baseline:.4g} ({self.baseline_source})",
            ),
            ("rule", self.rule()),
            ("held-out", self.split),
            ("model", f"{self.model_name} @{self.model_fingerprint}"),
            ("when", self.timestamp),
        ]
        if self.note:
            rows.insert(0, ("why", self.note))
        return self.status, ("", ""), rows, ""

    def _repr_html_(self) -> str:
        return verdict_html(self)


_COLOURS = {
    "supported": "#1a7f37",
    "refuted": "#cf222e",
    "inconclusive": "#9a6700",
    "unavailable": "#57606a",
}


def verdict_html(verdict: Verdict) -> str:
    """A small escaped HTML card for notebooks: the status above, in its colour."""
    return html_table(*verdict._table(), colour=_COLOURS[verdict.status])
