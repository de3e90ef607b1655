"""What a store holds, as Python values: stored hypotheses, unreadable rows, and the row codec.

``HypothesisStore`` (``store``) and importing (``imports``) both read and write these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from explorer._display import MAX_ROWS, Shown, pandas
from explorer.hypotheses._limits import check_field, check_stored_number, check_text
from explorer.hypotheses.agreement import Label
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.prediction import Prediction
from explorer.hypotheses.verdict import Verdict

__all__ = [
    "HypothesisList",
    "StoredHypothesis",
    "UnreadableRow",
    "check_label",
    "check_verdict",
    "now",
    "row_of",
    "spec_of",
]


@dataclass(frozen=True)
class UnreadableRow:
    """A stored row that could not be read (the rest of the project loads without it)."""

    table: str
    id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.table} row {self.id!r}: {self.reason}"


class HypothesisList(Shown, list):  # type: ignore[type-arg]
    """The hypotheses that loaded, plus ``unreadable``: rows that failed, with the reason."""

    def __init__(self, items: Any = (), unreadable: Any = ()) -> None:
        super().__init__(items)
        self.unreadable: tuple[UnreadableRow, ...] = tuple(unreadable)

    def _summary(self) -> str:
        counts: dict[str, int] = {}
        for stored in self:
            counts[stored.status] = counts.get(stored.status, 0) + 1
        text = ", ".join(f"{n} {status}" for status, n in counts.items()) or "empty"
        more = f"; {len(self.unreadable)} unreadable rows" if self.unreadable else ""
        return f"{len(self)} hypotheses: {text}{more}"

    def to_dataframe(self) -> Any:
        """One row per hypothesis: ``id``, ``claim``, ``status``, latest ``value``,
        ``verdicts`` (how many), ``project`` and ``author``."""
        rows = [
            (s.hypothesis.id, s.hypothesis.claim, s.status,
             s.latest.value if s.latest else float("nan"), len(s.verdicts), s.project, s.author)
            for s in self
        ]  # fmt: skip
        columns = ["id", "claim", "status", "value", "verdicts", "project", "author"]
        return pandas().DataFrame(rows, columns=columns)

    def _table(self) -> tuple:
        rows = [
            (s.hypothesis.claim, s.status, s.latest.value if s.latest else "", len(s.verdicts))
            for s in self[:MAX_ROWS]
        ]
        note = f"{len(rows)} of {len(self)} hypotheses" + (
            f"; {len(self.unreadable)} rows could not be read" if self.unreadable else ""
        )
        return "Hypotheses", ("claim", "status", "latest value", "verdicts"), rows, note


@dataclass(frozen=True, repr=False)
class StoredHypothesis(Shown):
    """A hypothesis as stored: who wrote it, in which project, and its verdicts (oldest first)."""

    hypothesis: Hypothesis | Prediction
    project: str
    author: str
    created: str
    updated: str
    verdicts: tuple[Verdict, ...] = ()

    @property
    def latest(self) -> Verdict | None:
        return self.verdicts[-1] if self.verdicts else None

    @property
    def status(self) -> str:
        return self.latest.status if self.latest else "untested"

    def _summary(self) -> str:
        claim = self.hypothesis.claim
        claim = claim if len(claim) <= 80 else claim[:77] + "..."
        return (
            f"{claim!r}: {self.status}, {len(self.verdicts)} verdicts; "
            f"project {self.project!r}, author {self.author!r}, id {self.hypothesis.id}"
        )

    def _table(self) -> tuple:
        rows = [(v.timestamp, v.status, v.value, v.model_name) for v in self.verdicts[-MAX_ROWS:]]
        note = f"{self.status}; project {self.project}, author {self.author}"
        return self.hypothesis.claim, ("when", "status", "value", "model"), rows, note

    def to_dataframe(self) -> Any:
        """One row per verdict, oldest first: ``when``, ``status``, ``value``, ``ci_low``,
        ``ci_high``, ``model``."""
        rows = [
            (v.timestamp, v.status, v.value, v.ci_low, v.ci_high, v.model_name)
            for v in self.verdicts
        ]
        return pandas().DataFrame(
            rows, columns=["when", "status", "value", "ci_low", "ci_high", "model"]
        )


def now() -> str:
    """UTC time to the microsecond: rows saved within one second still sort in save order."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def spec_of(h: Hypothesis | Prediction) -> str:
    return json.dumps(h.to_dict(), sort_keys=True)


def row_of(h: Hypothesis | Prediction, author: str, updated: str) -> dict[str, Any]:
    """The hypotheses row of ``h``; raises naming the field a store cannot hold."""
    check_field("hypothesis id", h.id)
    for unit in h.units:
        check_field("unit", str(unit))
    return {
        "author": check_field("author", author),
        "claim": check_text("claim", h.claim),
        "units": ", ".join(map(str, h.units)),
        "spec": spec_of(h),
        "updated": check_field("updated", updated),
    }


def check_verdict(verdict: Verdict) -> Verdict:
    """``verdict`` if a store can hold it: evidence (not unavailable), fields within limits."""
    if verdict.status == "unavailable":
        raise ValueError(
            f"an unavailable verdict is not evidence, so it is not recorded: {verdict.note}"
        )
    check_field("hypothesis id", verdict.hypothesis_id)
    check_field("model fingerprint", verdict.model_fingerprint)
    check_field("status", verdict.status)
    check_field("timestamp", verdict.timestamp)
    for name in ("value", "ci_low", "ci_high"):
        check_stored_number(f"the verdict's {name}", getattr(verdict, name))
    return verdict


def check_label(lab: Label) -> Label:
    """``lab`` if a store can hold it: unit, item and rater within their limits, no NUL."""
    for name in ("unit", "item", "rater"):
        check_field(name, getattr(lab, name))
    check_text("label", lab.label)
    return lab
