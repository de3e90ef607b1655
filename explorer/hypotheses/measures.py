"""What a hypothesis measures on each held-out example: the built-in tests and user functions.

A measure turns ``(model, examples, units)`` into ``Evidence`` (per-example numbers and
how they combine). Built-ins:

- ``HeadScore("previous_token")``: the heads' attention score (``analysis.head_scores``).
- ``AblationEffect("accuracy", ablation="zero")``: metric after minus before ablating
  the units together (``analysis.ablate``).
- ``NeuronSelectivity("auroc")``: the neurons' activation as a detector of
  ``Examples.concept`` (AUROC, or precision / recall of "fires above ``fire_threshold``").
- ``PatchingRecovery("logit_diff")``: the fraction of the clean-minus-corrupted metric
  gap recovered by patching the units' clean activations into the corrupted run.
- ``UserFunction(fn)``: any ``fn(model, examples, units) -> Tensor[batch]``.

A hypothesis file is data, never code. Measures and metrics are stored by *name*, and a name
means only what this session's registries say: the built-ins (``METRICS``) and what the
user registered here with ``register_measure(name, fn)`` / ``register_metric(name, fn)``.
Nothing is ever imported because a file named it: a stored ``"os:system"`` is just a name
that is not registered, and testing it gives an ``unavailable`` verdict saying so. A measure
round-trips through ``to_dict`` / ``measure_from_dict`` (JSON, never pickle). The registries
are ``hypotheses.registry``'s (their functions are named here too).

>>> register_measure("always_one", lambda model, examples, units: [1.0] * len(examples))
>>> UserFunction.named("always_one").rerunnable, UserFunction.named("os:system").rerunnable
(True, False)
>>> unregister_measure("always_one")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch

from explorer._checks import check_choice
from explorer.analysis import ablate_sets, head_scores, metrics
from explorer.analysis.feature_units import Feature, encode_batch
from explorer.analysis.units import Head, Neuron, ResidPosition, Unit, unit_slice
from explorer.hypotheses.bootstrap import Evidence
from explorer.hypotheses.examples import Examples
from explorer.hypotheses.registry import (
    _USER_MEASURES,
    METRICS,
    MeasureUnavailable,
    MetricBuilder,
    _check_name,
    _unavailable,
    build_metric,
    check_metric_name,
    register_measure,
    register_metric,
    registered_measures,
    registered_metrics,
    unregister_measure,
    unregister_metric,
)
from explorer.models.handle import ModelHandle

__all__ = [  # the registry's names are named here too, where they used to live
    "BUILT_INS",
    "METRICS",
    "AblationEffect",
    "HeadScore",
    "Measure",
    "MeasureUnavailable",
    "MetricBuilder",
    "NeuronSelectivity",
    "PatchingRecovery",
    "UserFunction",
    "build_metric",
    "check_metric_name",
    "measure_from_dict",
    "register_measure",
    "register_metric",
    "registered_measures",
    "registered_metrics",
    "unregister_measure",
    "unregister_metric",
]


def _run_metric(metric: metrics.Metric, logits: torch.Tensor) -> torch.Tensor:
    return metrics.evaluate(metric, logits, logits.shape[0]).double()


class Measure(Protocol):
    kind: ClassVar[str]
    unit_types: ClassVar[tuple[type, ...]]

    def describe(self) -> str: ...

    def evaluate(
        self, model: ModelHandle, examples: Examples, units: Sequence[Unit]
    ) -> Evidence: ...

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Sequence[Sequence[Unit]]
    ) -> list[Evidence]: ...

    def to_dict(self) -> dict[str, Any]: ...


class _Base:
    """Shared behaviour: unit checks, one evaluation per unit set, JSON form."""

    kind: ClassVar[str] = ""
    unit_types: ClassVar[tuple[type, ...]] = (Head, Neuron, ResidPosition)

    @property
    def rerunnable(self) -> bool:
        """Whether every name this measure uses means something in this session."""
        metric = getattr(self, "metric", None)
        return metric is None or metric in registered_metrics()

    def check_units(self, units: Sequence[Unit]) -> None:
        names = " or ".join(t.__name__.lower() for t in self.unit_types)
        for unit in units:
            if not isinstance(unit, self.unit_types):
                raise ValueError(f"{self.describe()} applies to {names} units, not {unit}")

    def describe(self) -> str:
        raise NotImplementedError

    def evaluate(self, model: ModelHandle, examples: Examples, units: Sequence[Unit]) -> Evidence:
        # a measure defines evaluate, evaluate_many (batched over sets), or both
        return self.evaluate_many(model, examples, [units])[0]

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Sequence[Sequence[Unit]]
    ) -> list[Evidence]:
        return [self.evaluate(model, examples, units) for units in unit_sets]

    def to_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "fn"}
        return {"kind": self.kind, **fields}


@dataclass(frozen=True)
class HeadScore(_Base):
    """Mean attention score of the heads per example (previous_token, induction, ...)."""

    score: str = "previous_token"
    kind: ClassVar[str] = "head_score"
    unit_types: ClassVar[tuple[type, ...]] = (Head,)

    def describe(self) -> str:
        return f"{self.score.replace('_', '-')} score"

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Sequence[Sequence[Unit]]
    ) -> list[Evidence]:
        for units in unit_sets:
            self.check_units(units)
            for unit in units:
                if unit.position is not None:  # type: ignore[union-attr]
                    raise ValueError(
                        f"a head score covers every position: write {Head(unit.layer, unit.head)} without '@pos'"
                    )  # type: ignore[union-attr]
        scores = head_scores(model, examples.inputs, scores=[self.score], per_example=True)
        per_example = scores.get(self.score)  # [batch, layer, head]
        return [
            Evidence(torch.stack([per_example[:, u.layer, u.head] for u in units], 1).mean(1))  # type: ignore[union-attr]
            for units in unit_sets
        ]


@dataclass(frozen=True)
class AblationEffect(_Base):
    """Metric after ablating the units together minus before, per example."""

    metric: str = "accuracy"
    ablation: str = "zero"
    kind: ClassVar[str] = "ablation_effect"
    unit_types: ClassVar[tuple[type, ...]] = (Head, Neuron, ResidPosition, Feature)

    def __post_init__(self) -> None:
        check_choice("ablation", self.ablation, ("zero", "mean", "resample"))
        check_metric_name(self.metric)

    def describe(self) -> str:
        return f"change in {self.metric} under {self.ablation} ablation"

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Sequence[Sequence[Unit]]
    ) -> list[Evidence]:
        """Every set from one clean pass and stacked ablated copies (``ablate_sets``)."""
        for units in unit_sets:
            self.check_units(units)
        metric = build_metric(self.metric, examples)
        results = ablate_sets(
            model,
            examples.inputs,
            unit_sets=[list(u) for u in unit_sets],
            metric=metric,
            ablation=self.ablation,
        )
        return [
            Evidence(
                r.after.double() - r.before.double(),
                details={"before": float(r.before.mean()), "after": float(r.after.mean())},
            )
            for r in results
        ]


@dataclass(frozen=True)
class NeuronSelectivity(_Base):
    """How well the neurons' activation detects ``Examples.concept``.

    ``score`` is ``"auroc"``, ``"precision"`` or ``"recall"`` (of firing above
    ``fire_threshold``). Activations are reduced over positions (or image locations) by
    ``reduce`` ("max" or "mean") unless the unit names a position, then averaged over units.
    """

    score: str = "auroc"
    fire_threshold: float = 0.0
    reduce: str = "max"
    kind: ClassVar[str] = "neuron_selectivity"
    unit_types: ClassVar[tuple[type, ...]] = (Neuron, Feature)

    def __post_init__(self) -> None:
        check_choice("score", self.score, ("auroc", "precision", "recall"))
        check_choice("reduce", self.reduce, ("max", "mean"))

    def describe(self) -> str:
        return f"{self.score} of neuron activation for the concept"

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Sequence[Sequence[Unit]]
    ) -> list[Evidence]:
        """Every set from one pass that caches each hook any set reads."""
        for units in unit_sets:
            self.check_units(units)
        concept = examples.require("concept", "a neuron selectivity test")
        hooks = sorted({u.hook(model) for us in unit_sets for u in us if isinstance(u, Neuron)})
        _, cache = model.cache_pass(examples.inputs, names=hooks)
        saes = {id(u.sae): u.sae for us in unit_sets for u in us if isinstance(u, Feature)}
        encoded = {key: encode_batch(model, examples.inputs, sae) for key, sae in saes.items()}
        out = []
        for units in unit_sets:
            columns = []
            for unit in units:
                act = (
                    encoded[id(unit.sae)] if isinstance(unit, Feature) else cache[unit.hook(model)]
                )
                values = act[unit.index() if isinstance(unit, Feature) else unit_slice(act, unit)]
                values = values.reshape(len(values), -1)
                columns.append(values.amax(1) if self.reduce == "max" else values.mean(1))
            activation = torch.stack(columns, 1).mean(1)
            means = [float(activation[m].mean()) if m.any() else 0.0 for m in (concept, ~concept)]
            details = dict(zip(("concept_mean", "other_mean"), means))
            out.append(
                Evidence(
                    activation,
                    statistic=self.score,
                    positives=concept,
                    fire_threshold=self.fire_threshold,
                    details=details,
                )
            )
        return out


@dataclass(frozen=True)
class PatchingRecovery(_Base):
    """Fraction of the clean-vs-corrupted metric gap recovered by patching the units.

    Runs the corrupted inputs with the units' activations taken from the clean run;
    recovery = sum(patched - corrupted) / sum(clean - corrupted) over examples.
    """

    metric: str = "logit_diff"
    kind: ClassVar[str] = "patching_recovery"

    def __post_init__(self) -> None:
        check_metric_name(self.metric)

    def describe(self) -> str:
        return f"fraction of {self.metric} recovered by patching"

    def evaluate(self, model: ModelHandle, examples: Examples, units: Sequence[Unit]) -> Evidence:
        self.check_units(units)
        corrupted = examples.require("corrupted", "a patching test")
        metric = build_metric(self.metric, examples)
        hooks = sorted({u.hook(model) for u in units})
        clean_logits, cache = model.cache_pass(examples.inputs, names=hooks)
        corrupted_logits = model(corrupted)

        def patch(act: torch.Tensor, hook: Any) -> torch.Tensor:
            act = act.clone()
            for unit in units:
                if unit.hook(model) == hook.name:
                    index = unit_slice(act, unit)
                    act[index] = cache[hook.name][index]
            return act

        patched_logits = model.run_with_hooks(corrupted, [(h, patch) for h in hooks])
        clean = _run_metric(metric, clean_logits)
        dirty = _run_metric(metric, corrupted_logits)
        patched = _run_metric(metric, patched_logits)
        details = {
            "clean": float(clean.mean()),
            "corrupted": float(dirty.mean()),
            "patched": float(patched.mean()),
        }
        return Evidence(
            patched - dirty, statistic="ratio", denominators=clean - dirty, details=details
        )


@dataclass(frozen=True)
class UserFunction(_Base):
    """Any ``fn(model, examples, units) -> Tensor[batch]`` (or ``Evidence``).

    Stored by ``name`` only. In the session that made it, the function itself runs; a
    reloaded hypothesis runs the measure registered under that name in *this* session
    (``register_measure``), or gives an ``unavailable`` verdict if there is none.
    """

    name: str = ""
    statistic: str = "mean"
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "user_function"

    def __post_init__(self) -> None:
        _check_name(self.name, "user measure")
        check_choice("statistic", self.statistic, ("mean", "auroc", "precision", "recall"))

    @classmethod
    def of(cls, fn: Callable[..., Any], statistic: str = "mean") -> UserFunction:
        """Wrap ``fn``; stored under the name it is registered as (else its own name)."""
        if not callable(fn):
            raise TypeError(f"a user test must be callable, got {type(fn).__name__}")
        names = [k for k, v in _USER_MEASURES.items() if v is fn]
        name = names[0] if names else getattr(fn, "__qualname__", type(fn).__name__)
        return cls(name=name, statistic=statistic, fn=fn)

    @classmethod
    def named(cls, name: str, statistic: str = "mean") -> UserFunction:
        """The measure registered as ``name`` (looked up when it runs)."""
        return cls(name=name, statistic=statistic)

    @property
    def rerunnable(self) -> bool:
        """Whether this measure can run here (its function, or one registered by its name)."""
        return self.fn is not None or self.name in _USER_MEASURES

    def describe(self) -> str:
        return f"{self.name or 'user function'} ({self.statistic})"

    def _function(self) -> Callable[..., Any]:
        if self.fn is not None:
            return self.fn
        if self.name in _USER_MEASURES:
            return _USER_MEASURES[self.name]
        raise _unavailable("measure", self.name, "register_measure")

    def evaluate(self, model: ModelHandle, examples: Examples, units: Sequence[Unit]) -> Evidence:
        result = self._function()(model, examples, tuple(units))
        if isinstance(result, Evidence):
            return result
        values = torch.as_tensor(result, dtype=torch.float64)
        if values.shape != (len(examples),):
            raise ValueError(
                f"{self.describe()} must return one value per example (shape [{len(examples)}]), "
                f"got shape {list(values.shape)}"
            )
        positives = examples.concept if self.statistic in ("auroc", "precision", "recall") else None
        return Evidence(values, statistic=self.statistic, positives=positives)


BUILT_INS: dict[str, type] = {
    m.kind: m
    for m in (HeadScore, AblationEffect, NeuronSelectivity, PatchingRecovery, UserFunction)
}


def measure_from_dict(data: dict[str, Any]) -> Measure:
    """Rebuild a measure from ``to_dict`` output (plain data: nothing named is imported)."""
    if not isinstance(data, dict):
        raise ValueError(f"a measure is a JSON object with a 'kind', got {type(data).__name__}")
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in BUILT_INS:
        raise ValueError(f"unknown test kind {kind!r}: known kinds are {', '.join(BUILT_INS)}")
    if kind == "user_function":
        # files written before measures were named kept an import path in "reference"; it is
        # only ever used as a name to look up in this session's registry
        reference = data.pop("reference", None)
        if not data.get("name") or (reference and data.get("name") not in _USER_MEASURES):
            data["name"] = reference or data.get("name") or ""
    cls = BUILT_INS[kind]
    known = {f.name for f in dataclasses.fields(cls)} - {"fn"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fields {unknown} for a {kind} measure; known: {sorted(known)}")
    return cls(**data)  # type: ignore[no-any-return]
