"""Labels people give units, and how much they agree: Cohen's kappa (two raters), Fleiss' (more).

A ``Label`` says what one rater thinks of one item of a unit: for "what does neuron 0.37
do?" the items are, say, the neuron's top examples, and each rater marks each one
("loop" / "no loop"); ``item="unit"`` labels the unit as a whole. Kappa compares the
observed agreement with the agreement expected by chance from how often each rater (Cohen)
or everyone (Fleiss) uses each category: 1 is perfect, 0 is chance.

>>> cohen_kappa(["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15,
...             ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15)
0.4
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explorer._display import RecordShown, num, pandas


@dataclass(frozen=True)
class Label:
    """One rater's label for one item of a unit."""

    unit: str
    rater: str
    label: str
    item: str = "unit"

    def __post_init__(self) -> None:
        for name in ("unit", "rater", "label", "item"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"a label needs a non-empty {name}, got {value!r}")


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two raters' labels for the same items (NaN if chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError(f"the two raters labelled {len(a)} and {len(b)} items: pair them first")
    if not a:
        raise ValueError("Cohen's kappa needs at least one item both raters labelled")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    categories = sorted(set(a) | set(b))
    expected = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in categories)
    return _kappa(observed, expected)


def fleiss_kappa(counts: Sequence[Sequence[int]] | np.ndarray) -> float:
    """Fleiss' kappa from a table ``counts[item, category]`` (each row sums to the raters n).

    >>> round(fleiss_kappa([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6],
    ...     [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0],
    ...     [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]), 3)
    0.21
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(
            f"counts must be a non-empty [items, categories] table, got shape {table.shape}"
        )
    return _kappa(*_fleiss_parts(table))


def _fleiss_parts(table: np.ndarray) -> tuple[float, float]:
    per_item = table.sum(1)
    n = per_item[0]
    if not np.all(per_item == n) or n < 2:
        raise ValueError(
            f"Fleiss' kappa needs the same number (>= 2) of ratings per item, got {sorted(set(per_item.tolist()))}"
        )
    observed = float(((table * (table - 1)).sum(1) / (n * (n - 1))).mean())
    shares = table.sum(0) / table.sum()
    return observed, float((shares**2).sum())


def _kappa(observed: float, expected: float) -> float:
    if expected >= 1.0:
        return float("nan")
    return round((observed - expected) / (1.0 - expected), 12)


STRENGTH = ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


@dataclass(frozen=True, repr=False)
class Agreement(RecordShown):
    """How much the raters of one unit (or of a whole label set) agree.

    ``method`` is ``"cohen"`` (two raters), ``"fleiss"`` (three or more) or ``"none"``
    (``note`` says why); ``observed`` and ``expected`` are the raw and chance agreement.
    """

    unit: str
    method: str
    kappa: float | None
    observed: float | None
    expected: float | None
    n_items: int
    raters: tuple[str, ...]
    categories: tuple[str, ...]
    note: str = ""

    @property
    def strength(self) -> str:
        """Landis & Koch's words for kappa (poor < 0 < slight < 0.2 < fair < ... < almost perfect)."""
        if self.kappa is None or self.kappa != self.kappa:
            return "undefined"
        words = [w for bound, w in STRENGTH if self.kappa <= bound]
        return words[0] if words else "almost perfect"

    def _summary(self) -> str:
        kappa = "undefined" if self.strength == "undefined" else num(self.kappa)  # type: ignore[arg-type]
        raters = ", ".join(self.raters[:4]) + (", ..." if len(self.raters) > 4 else "")
        return (
            f"{self.unit or 'all units'}: {self.method} kappa {kappa} ({self.strength}) over "
            f"{self.n_items} items, raters {raters}" + (f"; {self.note}" if self.note else "")
        )

    def to_dataframe(self) -> Any:
        """One row: ``to_dict()`` (raters and categories as text)."""
        row = self.to_dict()
        row["raters"], row["categories"] = ", ".join(self.raters), ", ".join(self.categories)
        return pandas().DataFrame([row])

    def to_dict(self) -> dict[str, object]:
        kappa = None if self.kappa is None or self.kappa != self.kappa else self.kappa
        return {
            "unit": self.unit,
            "method": self.method,
            "kappa": kappa,
            "strength": self.strength,
            "observed": self.observed,
            "expected": self.expected,
            "n_items": self.n_items,
            "raters": list(self.raters),
            "categories": list(self.categories),
            "note": self.note,
        }


def agreement(labels: Iterable[Label], unit: str = "") -> Agreement:
    """Agreement over all items in ``labels`` (a later label by the same rater replaces one).

    Two raters: Cohen's kappa over the items both labelled. More: Fleiss' kappa over the
    items every rater labelled.
    """
    ratings: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for lab in labels:
        ratings[(lab.unit, lab.item)][lab.rater] = lab.label
    raters = tuple(sorted({r for by_rater in ratings.values() for r in by_rater}))
    categories = tuple(sorted({v for by_rater in ratings.values() for v in by_rater.values()}))
    full = [by_rater for by_rater in ratings.values() if len(by_rater) == len(raters)]

    def none(note: str) -> Agreement:
        return Agreement(unit, "none", None, None, None, len(full), raters, categories, note)

    if len(raters) < 2:
        return none("agreement needs labels from at least two raters")
    if not full:
        return none(f"no item was labelled by all {len(raters)} raters")
    if len(raters) == 2:
        a = [r[raters[0]] for r in full]
        b = [r[raters[1]] for r in full]
        n = len(a)
        observed = sum(x == y for x, y in zip(a, b)) / n
        expected = sum((a.count(c) / n) * (b.count(c) / n) for c in categories)
        method = "cohen"
    else:
        table = np.array([[list(r.values()).count(c) for c in categories] for r in full])
        observed, expected = _fleiss_parts(table)
        method = "fleiss"
    kappa = _kappa(observed, expected)
    note = "every rater used the same single category: kappa is undefined" if kappa != kappa else ""
    return Agreement(unit, method, kappa, observed, expected, len(full), raters, categories, note)


def agreement_by_unit(labels: Iterable[Label]) -> dict[str, Agreement]:
    """``{unit: Agreement}`` over each unit's items, units in sorted order."""
    by_unit: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:
        by_unit[lab.unit].append(lab)
    return {unit: agreement(by_unit[unit], unit) for unit in sorted(by_unit)}


def label_counts(labels: Iterable[Label]) -> dict[str, dict[str, dict[str, int]]]:
    """``{unit: {rater: {label: how many items}}}``, units, raters and labels sorted.

    >>> label_counts([Label("head 1.4", "ana", "induction", "x1"),
    ...               Label("head 1.4", "ana", "induction", "x2"),
    ...               Label("head 1.4", "bo", "copying", "x1")])
    {'head 1.4': {'ana': {'induction': 2}, 'bo': {'copying': 1}}}
    """
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for lab in labels:
        by_label = counts.setdefault(lab.unit, {}).setdefault(lab.rater, {})
        by_label[lab.label] = by_label.get(lab.label, 0) + 1
    return {
        unit: {rater: dict(sorted(c.items())) for rater, c in sorted(by_rater.items())}
        for unit, by_rater in sorted(counts.items())
    }
