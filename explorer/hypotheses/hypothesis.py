"""``Hypothesis``: a claim about units of a model, and the test that judges it on held-out data.

A hypothesis names its claim in words, its target units, a measure (what to compute per
example), a threshold and a direction, the split it was formed on and the held-out split
it is judged on. ``h.test(model, inputs)`` measures the held-out split only, bootstraps a
confidence interval (seeded), measures the same on >= 20 random unit sets of the same size
and kind (``hypotheses.baseline``), and returns a ``Verdict``: ``supported`` only if the
interval clears both the threshold and the random sets' 95th percentile. ``h.to_dict()`` has
all a re-run needs (features: their SAE's folder); ``h.replace(...)`` is a new version.

>>> from explorer.hypotheses import HeadScore, Split, planted
>>> model, data = planted.previous_token_model(), planted.previous_token_examples(80)
>>> h = Hypothesis(claim="head 0.0 attends to the previous token", units="head 0.0",
...                measure=HeadScore("previous_token"), threshold=0.4,
...                formation=Split(range(40)), held_out=Split(range(40, 80)))
>>> h.test(model, data).status
'supported'
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explorer._checks import check_fraction, check_positive
from explorer._deprecate import renamed_arguments
from explorer.analysis.feature_units import Feature
from explorer.analysis.units import Head, Neuron, ResidPosition, Unit, check_unit, parse_unit
from explorer.hypotheses._feature_records import read_units, unit_fields
from explorer.hypotheses._limits import check_hypothesis_numbers, check_record_numbers
from explorer.hypotheses.baseline import (
    MIN_BASELINE_SETS,
    BaselineDistribution,
    check_n_baseline,
    random_unit_sets,
)
from explorer.hypotheses.bootstrap import TooFewExamples, bootstrap_interval, statistic, too_few
from explorer.hypotheses.examples import Examples, Split, as_examples, check_disjoint
from explorer.hypotheses.input_measures import unit_free
from explorer.hypotheses.measures import (
    Measure,
    MeasureUnavailable,
    UserFunction,
    measure_from_dict,
)
from explorer.hypotheses.verdict import DIRECTIONS, Verdict, judge
from explorer.hypotheses.versioning import VERSION_TEXT, known_fields, parse_version
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
        baseline: a value to compare with; None compares with ``n_baseline`` (>= 20)
            random sets of units of the same size and kind, drawn from every eligible
            unit (``hypotheses.baseline``): the claim must beat their 95th percentile.
        n_boot, confidence, seed: the bootstrap.
        dataset: a name for the data the splits index (the board uses it to re-run).
        id: this version's identity; verdicts are recorded against it.
        parent_id: the id of the version this one was edited from (None for an original).
            ``replace`` makes an edit a new version: a new id, linked to its parent.
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
    n_baseline: int = MIN_BASELINE_SETS
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    dataset: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    budget_spent: tuple[int, int, int] | None = None
    parent_id: str | None = None

    def __post_init__(self) -> None:
        check_hypothesis_numbers(self)
        object.__setattr__(self, "budget_spent", _budget(self.budget_spent))
        if self.parent_id is not None and (
            not isinstance(self.parent_id, str) or not self.parent_id
        ):
            raise ValueError(
                f"parent_id must be a hypothesis id (text) or None, got {self.parent_id!r}"
            )
        if not isinstance(self.claim, str) or not self.claim.strip():
            raise ValueError("a hypothesis needs a claim in words (got an empty claim)")
        units = self.units
        if isinstance(units, (str, Head, Neuron, ResidPosition, Feature)):
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
        check_n_baseline(self.n_baseline)
        check_positive("n_boot", self.n_boot)
        check_fraction("confidence", self.confidence)

    # ------------------------------------------------------------------ testing
    @renamed_arguments(data="inputs")
    def check(self, model: ModelHandle, inputs: Examples | torch.Tensor | None = None) -> None:
        """Raise a ValueError now if ``model`` lacks a unit or ``inputs`` lack an example."""
        for unit in self.units:
            try:
                check_unit(model, unit=unit)
            except (ValueError, TypeError) as err:
                raise ValueError(
                    f"the hypothesis names {unit}, which {model.name} lacks: {err}"
                ) from err
        if inputs is not None:
            n = len(as_examples(inputs))
            self.formation.check_within(n)
            self.held_out.check_within(n)

    @renamed_arguments(data="inputs")
    def test(self, model: ModelHandle, inputs: Examples | torch.Tensor) -> Verdict:
        """Judge the claim on the held-out split of ``inputs`` (``Examples``, or a tensor of
        inputs) and return the verdict."""
        examples = as_examples(inputs)
        self.check(model, examples)
        held = examples.subset(self.held_out)
        try:
            with torch.no_grad():
                evidence = self.measure.evaluate(model, held, self.units)
                value, low, high = bootstrap_interval(
                    evidence, n_boot=self.n_boot, confidence=self.confidence, seed=self.seed
                )
                short = too_few(evidence)  # then the baseline's passes would decide nothing
                baseline, source, unit_sets, values = (
                    (None, "not measured", (), ()) if short else self._baseline(model, held)
                )
        except MeasureUnavailable as err:
            return Verdict.unavailable(self, str(err), model, len(held))
        except TooFewExamples as err:  # none of a class: not even a value
            return Verdict.unavailable(self, str(err), model, len(held), "inconclusive")
        distribution = BaselineDistribution(values, self.direction) if values else None
        cutoff = distribution.cutoff if distribution is not None else baseline
        status, note = judge(low, high, self.threshold, self.direction, cutoff)
        if note.endswith("not the baseline") and distribution is not None:
            note += ": random units do as well"
        if short:
            status, note = "inconclusive", short
        return Verdict(
            hypothesis_id=self.id,
            claim=self.claim,
            status=status,
            note=note,
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
            baseline_p95=cutoff,
            baseline_n_sets=len(values),
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
        kinds = sorted({type(u).__name__.lower() for u in self.units})
        kind = "+".join(kinds)
        source = f"{len(unit_sets)} random {kind} sets"
        if len(unit_sets) < self.n_baseline:
            source = f"all {len(unit_sets)} other {kind} sets"
        names = tuple(tuple(map(str, s)) for s in unit_sets)
        return sum(values) / len(values), source, names, values

    # --------------------------------------------------------------- editing
    def replace(self, **changes: Any) -> Hypothesis:
        """A copy with some fields changed; a changed claim or test is a new version.

        If the copy says or tests something else (any field but ``id``, ``parent_id`` and
        ``budget_spent`` differs), it gets a new id and ``parent_id`` = this id, so the
        verdicts of this version stay with the claim they judged and a store keeps both.
        Passing ``id=`` (or ``parent_id=``) sets them as given.

        >>> from explorer.hypotheses import HeadScore, Split
        >>> h = Hypothesis(claim="head 0.1 copies", units="head 0.1", measure=HeadScore("induction"),
        ...                threshold=0.4, formation=Split(range(8)), held_out=Split(range(8, 16)))
        >>> edited = h.replace(units="head 1.3")
        >>> edited.id != h.id, edited.parent_id == h.id, h.replace(threshold=0.4).id == h.id
        (True, True, True)
        """
        copy = dataclasses.replace(self, **changes)
        if "id" in changes or not self._content_differs(copy):
            return copy
        parent = changes.get("parent_id", self.id)
        return dataclasses.replace(copy, id=uuid.uuid4().hex, parent_id=parent)

    def _content_differs(self, other: Hypothesis) -> bool:
        def content(h: Hypothesis) -> dict[str, Any]:
            data = h.to_dict()
            for name in ("version", "id", "parent_id", "budget_spent"):
                data.pop(name)
            return data

        return content(self) != content(other)

    def with_function(self, fn: Callable[..., Any]) -> Hypothesis:
        """Rebind the user function of a reloaded hypothesis whose function was not importable."""
        statistic_name = getattr(self.measure, "statistic", "mean")
        name = getattr(self.measure, "name", "")  # the same measure, bound: the same claim
        measure = UserFunction(name=name, statistic=statistic_name, fn=fn) if name else None
        return dataclasses.replace(self, measure=measure or UserFunction.of(fn, statistic_name))

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
            **unit_fields(self.units),  # features: "F3" and the SAE's folder + fingerprint
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
            "parent_id": self.parent_id,
            "budget_spent": (
                dict(zip(("forward", "backward", "examples"), self.budget_spent))
                if self.budget_spent is not None
                else None
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        """Rebuild from ``to_dict`` output; a malformed record raises ``ValueError`` naming why.

        A record older than the baseline rule (version < 1.3) with ``n_baseline`` below 20 is
        read with 20: its next test is judged by today's rule.
        """
        known = {f.name for f in dataclasses.fields(cls)} | {"sae"}
        old = isinstance(data, dict) and parse_version(data.get("version")) < (1, 3)
        data = known_fields(data, known, "hypothesis")
        check_record_numbers(data, "hypothesis record")
        if old and isinstance(data.get("n_baseline"), int):
            data["n_baseline"] = max(data["n_baseline"], MIN_BASELINE_SETS)
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
        data["units"] = read_units(data["units"], data.pop("sae", None))
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
