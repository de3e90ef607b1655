"""``Hypothesis``: a claim about units of a model, and the test that judges it on held-out data.

A hypothesis names its claim in words, its target units, a measure (what to compute per
example), a threshold and a direction, the split it was formed on and the held-out split
it is judged on. ``h.test(model, data)`` measures the held-out split only, bootstraps a
confidence interval (seeded), compares with the same measure on random units of the same
kind, and returns a ``Verdict``. Everything needed to run the test again, on another
checkpoint for example, is in ``h.to_dict()``.

>>> from explorer.hypotheses import HeadScore, Split, planted
>>> model, data = planted.previous_token_model(), planted.previous_token_examples(80)
>>> h = Hypothesis(
...     claim="head 0.0 attends to the previous token",
...     units="head 0.0",
...     measure=HeadScore("previous_token"),
...     threshold=0.4,
...     formation=Split(range(40)),
...     held_out=Split(range(40, 80)),
... )
>>> h.test(model, data).status
'supported'
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explorer._checks import check_fraction, check_positive
from explorer.analysis.units import Head, Neuron, ResidPosition, Unit, check_unit, parse_unit
from explorer.hypotheses._limits import check_hypothesis_numbers, check_record_numbers
from explorer.hypotheses.bootstrap import bootstrap_interval, statistic
from explorer.hypotheses.examples import Examples, Split, as_examples, check_disjoint
from explorer.hypotheses.input_measures import unit_free
from explorer.hypotheses.measures import (
    Measure,
    MeasureUnavailable,
    UserFunction,
    measure_from_dict,
)
from explorer.hypotheses.verdict import DIRECTIONS, Verdict, decide
from explorer.hypotheses.versioning import VERSION_TEXT, known_fields
from explorer.models.handle import ModelHandle


@dataclass(frozen=True, kw_only=True)
class Hypothesis:
    """A testable claim about units of a model.

    Args:
        claim: the claim in words.
        units: the target units (``Head``/``Neuron``/``ResidPosition`` or text like
            ``"head 1.4"``), one or several; none for a claim about inputs (an
            ``InputStamp`` measure, or a function of the model alone).
        measure: a built-in measure (``HeadScore``, ``AblationEffect``,
            ``NeuronSelectivity``, ``PatchingRecovery``, ``InputStamp``) or any function
            ``fn(model, examples, units) -> Tensor[batch]``.
        threshold, direction: the claim is that the measure lies ``"above"`` (or
            ``"below"``) ``threshold``.
        formation, held_out: the examples the idea came from and the disjoint examples
            it is judged on.
        baseline: a value to compare with; None compares with ``n_baseline`` random sets
            of units of the same kind (same layers, same positions).
        n_boot, confidence, seed: the bootstrap.
        dataset: a name for the data the splits index (the board uses it to re-run).
        id: stable identity across edits (``dataclasses.replace`` keeps it).
        budget_spent: the passes run on the model before the claim was written: pass the
            model handle (its ``spent`` is read now) or ``(forward, backward, examples)``.
            A claim formed after 20 passes says more than one formed after 20,000.
    """

    claim: str
    measure: Measure
    threshold: float
    formation: Split
    held_out: Split
    units: tuple[Unit, ...] = ()
    direction: str = "above"
    baseline: float | None = None
    n_baseline: int = 8
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    dataset: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    budget_spent: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        check_hypothesis_numbers(self)
        object.__setattr__(self, "budget_spent", _budget(self.budget_spent))
        if not isinstance(self.claim, str) or not self.claim.strip():
            raise ValueError("a hypothesis needs a claim in words (got an empty claim)")
        units = self.units
        if isinstance(units, (str, Head, Neuron, ResidPosition)):
            units = (units,)
        units = tuple(parse_unit(u) for u in units)  # type: ignore[union-attr]
        if len(set(units)) != len(units):
            raise ValueError(f"target units repeat: {', '.join(map(str, units))}")
        object.__setattr__(self, "units", units)
        measure = self.measure
        if isinstance(measure, str):  # a measure registered in this session, by name
            measure = UserFunction.named(measure)
        elif not hasattr(measure, "evaluate"):
            measure = UserFunction.of(measure)  # type: ignore[arg-type]
        object.__setattr__(self, "measure", measure)
        if not units and not (unit_free(measure) or isinstance(measure, UserFunction)):
            raise ValueError(
                "a hypothesis needs at least one target unit, e.g. 'head 1.4' (a claim about "
                "inputs takes an InputStamp measure or a function of the model, and no units)"
            )
        if hasattr(measure, "check_units"):
            measure.check_units(units)
        threshold = float(self.threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {self.threshold!r}")
        object.__setattr__(self, "threshold", threshold)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'above' or 'below', got {self.direction!r}")
        for name in ("formation", "held_out"):
            if not isinstance(getattr(self, name), Split):
                raise TypeError(f"{name} must be a Split, got {type(getattr(self, name)).__name__}")
        check_disjoint(self.formation, self.held_out)
        if self.baseline is not None:
            object.__setattr__(self, "baseline", float(self.baseline))
        check_positive("n_baseline", self.n_baseline)
        check_positive("n_boot", self.n_boot)
        check_fraction("confidence", self.confidence)

    # ------------------------------------------------------------------ testing
    def check(self, model: ModelHandle, data: Examples | torch.Tensor | None = None) -> None:
        """Raise a ValueError now if ``model`` lacks a unit or ``data`` lacks an example."""
        for unit in self.units:
            try:
                check_unit(model, unit=unit)
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"the hypothesis names {unit}, which {model.name} lacks: {err}"
                ) from err
        if data is not None:
            n = len(as_examples(data))
            self.formation.check_within(n)
            self.held_out.check_within(n)

    def test(self, model: ModelHandle, data: Examples | torch.Tensor) -> Verdict:
        """Judge the claim on the held-out split of ``data`` and return the verdict."""
        examples = as_examples(data)
        self.check(model, examples)
        held = examples.subset(self.held_out)
        try:
            with torch.no_grad():
                evidence = self.measure.evaluate(model, held, self.units)
                value, low, high = bootstrap_interval(
                    evidence, n_boot=self.n_boot, confidence=self.confidence, seed=self.seed
                )
                baseline, source, unit_sets, values = self._baseline(model, held)
        except MeasureUnavailable as err:
            return Verdict.unavailable(self, str(err), model, len(held))
        return Verdict(
            hypothesis_id=self.id,
            claim=self.claim,
            status=decide(low, high, self.threshold, self.direction),
            value=value,
            ci_low=low,
            ci_high=high,
            confidence=self.confidence,
            threshold=self.threshold,
            direction=self.direction,
            measure=measured(self.measure, self.units),
            baseline=baseline,
            baseline_source=source,
            baseline_units=unit_sets,
            baseline_values=values,
            n_examples=len(held),
            split=self.held_out.describe(),
            model_name=model.name,
            model_fingerprint=model.fingerprint(),
            n_boot=self.n_boot,
            seed=self.seed,
            details=evidence.details,
        )

    def _baseline(
        self, model: ModelHandle, held: Examples
    ) -> tuple[float | None, str, tuple[tuple[str, ...], ...], tuple[float, ...]]:
        if self.baseline is not None:
            return self.baseline, "given", (), ()
        if not self.units:
            if not hasattr(self.measure, "baseline_evidence"):
                return None, "no units to compare with random ones: give baseline=", (), ()
            source, names, evidences = self.measure.baseline_evidence(
                model, held, self.n_baseline, self.seed
            )
            if not evidences:
                return None, "no other placement to compare with", (), ()
            values = tuple(
                float(statistic(ev, torch.ones(1, len(ev), dtype=torch.float64))[0])
                for ev in evidences
            )
            return sum(values) / len(values), source, names, values
        seq_len = held.inputs.shape[1] if model.is_transformer else None
        unit_sets = random_unit_sets(model, self.units, self.n_baseline, self.seed, seq_len)
        if not unit_sets:
            return None, "no other units of the same kind", (), ()
        evidences = self.measure.evaluate_many(model, held, unit_sets)
        values = tuple(
            float(statistic(ev, torch.ones(1, len(ev), dtype=torch.float64))[0]) for ev in evidences
        )
        kind = type(self.units[0]).__name__.lower()
        source = f"mean of {len(unit_sets)} random {kind} sets"
        names = tuple(tuple(map(str, s)) for s in unit_sets)
        return sum(values) / len(values), source, names, values

    # --------------------------------------------------------------- editing
    def replace(self, **changes: Any) -> Hypothesis:
        """A copy with some fields changed (same id)."""
        return dataclasses.replace(self, **changes)

    def with_function(self, fn: Callable[..., Any]) -> Hypothesis:
        """Rebind the user function of a reloaded hypothesis whose function was not importable."""
        statistic_name = getattr(self.measure, "statistic", "mean")
        return self.replace(measure=UserFunction.of(fn, statistic=statistic_name))

    @property
    def rerunnable(self) -> bool:
        """Whether ``from_dict(to_dict())`` can run the test again (user functions must import)."""
        return (
            getattr(self.measure, "rerunnable", True)
            or getattr(self.measure, "fn", None) is not None
        )

    # ----------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION_TEXT,
            "id": self.id,
            "claim": self.claim,
            "units": [str(u) for u in self.units],
            "measure": self.measure.to_dict(),
            "threshold": self.threshold,
            "direction": self.direction,
            "formation": self.formation.to_dict(),
            "held_out": self.held_out.to_dict(),
            "baseline": self.baseline,
            "n_baseline": self.n_baseline,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "seed": self.seed,
            "dataset": self.dataset,
            "budget_spent": (
                dict(zip(("forward", "backward", "examples"), self.budget_spent))
                if self.budget_spent is not None
                else None
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        """Rebuild from ``to_dict`` output; a malformed record raises ``ValueError`` naming why."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = known_fields(data, known, "hypothesis")
        check_record_numbers(data, "hypothesis record")
        missing = sorted(
            {"claim", "units", "measure", "threshold", "formation", "held_out"} - set(data)
        )
        if missing:
            raise ValueError(f"the hypothesis record lacks {missing}")
        try:
            return cls._from_fields(data)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"malformed hypothesis record: {type(err).__name__}: {err}") from None

    @classmethod
    def _from_fields(cls, data: dict[str, Any]) -> Hypothesis:
        data["measure"] = measure_from_dict(data["measure"])
        data["formation"] = Split.from_dict(data["formation"])
        data["held_out"] = Split.from_dict(data["held_out"])
        data["units"] = tuple(parse_unit(u) for u in data["units"])
        spent = data.get("budget_spent")
        if isinstance(spent, dict):
            data["budget_spent"] = tuple(spent[k] for k in ("forward", "backward", "examples"))
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Hypothesis:
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        side = ">" if self.direction == "above" else "<"
        return f"{self.claim} [{measured(self.measure, self.units)} {side} {self.threshold:g}]"


def measured(measure: Measure, units: Sequence[Unit]) -> str:
    """What a verdict says was measured: the measure, and of which units (if any)."""
    if not units:
        return measure.describe()
    return f"{measure.describe()} of {', '.join(map(str, units))}"


def _budget(value: Any) -> tuple[int, int, int] | None:
    """``budget_spent`` as ``(forward, backward, examples)``: read from a handle (or its
    ``spent``) at the moment the hypothesis is written, or given as three counts."""
    if value is None:
        return None
    spent = getattr(value, "spent", value)
    if hasattr(spent, "snapshot"):
        return tuple(int(v) for v in spent.snapshot())  # type: ignore[return-value]
    if isinstance(value, (tuple, list)) and len(value) == 3:
        counts = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                break
            counts.append(v)
        else:
            return (counts[0], counts[1], counts[2])
    raise ValueError(
        "budget_spent must be the model handle (its passes so far are read) or "
        f"(forward, backward, examples) as counts >= 0, got {value!r}"
    )


def _candidates(model: ModelHandle, unit: Unit, seq_len: int | None, anywhere: bool) -> list[Unit]:
    layers = range(model.n_layers) if anywhere else [unit.layer]
    if isinstance(unit, Head):
        return [Head(l, h, unit.pos) for l in layers for h in range(model.n_heads or 0)]
    if isinstance(unit, Neuron):
        widths = model.layer_widths
        return [Neuron(l, n, unit.pos) for l in layers for n in range(widths[l])]
    n_pos = seq_len or model.n_ctx or 0
    return [ResidPosition(l, p) for l in layers for p in range(n_pos)]


def random_unit_sets(
    model: ModelHandle,
    units: Sequence[Unit],
    n_sets: int,
    seed: int = 0,
    seq_len: int | None = None,
) -> tuple[tuple[Unit, ...], ...]:
    """Up to ``n_sets`` distinct sets of random units, one per target, of the same kind.

    Each replacement is drawn from the target's own layer (and keeps its position), never
    a target itself; if a layer has no other unit of the kind, from any layer.
    """
    targets = set(units)
    pools = []
    for unit in units:
        pool = [u for u in _candidates(model, unit, seq_len, False) if u not in targets]
        if not pool:
            pool = [u for u in _candidates(model, unit, seq_len, True) if u not in targets]
        if not pool:
            return ()
        pools.append(pool)
    total = math.prod(len(p) for p in pools)
    rng = random.Random(seed)
    found: dict[frozenset[Unit], tuple[Unit, ...]] = {}
    if total <= 4 * n_sets:
        candidates = list(itertools.product(*pools))
        rng.shuffle(candidates)
    else:
        candidates = (tuple(rng.choice(p) for p in pools) for _ in range(50 * n_sets))
    for choice in candidates:
        if len(set(choice)) == len(choice):
            found.setdefault(frozenset(choice), choice)
        if len(found) == n_sets:
            break
    return tuple(found.values())
