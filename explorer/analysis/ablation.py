"""Ablation: knock out heads, neurons or positions and measure a metric before and after.

``ablation`` is how a unit is knocked out:
- ``"zero"``: its activation set to 0;
- ``"mean"``: set to its mean over a reference batch (per position for sequences);
- ``"resample"``: set to its value on another example of the reference batch (seeded).
Heads act on ``hook_z`` (a head's output before W_O), neurons on ``mlp.hook_post`` (channels
for convs), positions on ``hook_resid_pre``. ``ablation_sweep`` ablates units one at a time
for every unit asked, batched (many units per forward pass); ``ablate_sets`` ablates each of
several unit sets together (a hypothesis's random baseline), many sets per forward pass.

Size: about 470 lines, over the usual 400: the three ablation verbs share one setup pass
and their result types; split apart they would import each other's internals. SAE
features (``Feature(sae, i)``) take the same verbs: ``feature_interventions`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_choice, check_model
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, num, pandas, strongest
from explorer.analysis._batch_size import accepts_max_tokens, token_budget
from explorer.analysis.feature_interventions import ablate_features, sweep_features
from explorer.analysis.feature_units import Feature
from explorer.analysis.interventions import (
    Site,
    _reads_clean,
    run_interventions,
    run_sweep,
    sweep_base_hooks,
)
from explorer.analysis.metrics import Metric, check_metric, evaluate
from explorer.analysis.units import (
    Head,
    Neuron,
    Unit,
    all_heads,
    all_neurons,
    check_unit,
    parse_unit,
)
from explorer.models.handle import ModelHandle

__all__ = [
    "AblationResult",
    "SweepResult",
    "ablate",
    "ablate_sets",
    "ablation_sweep",
]

ABLATIONS = ("zero", "mean", "resample")


class _BeforeAfter(Shown):
    """A result holding a metric per example ``before`` and ``after`` an intervention
    (ablation, steering): the means, the effect and the per-example table."""

    before: Float[torch.Tensor, " batch"]
    after: Float[torch.Tensor, " batch"]

    @property
    def before_mean(self) -> float:
        return float(self.before.mean())

    @property
    def after_mean(self) -> float:
        return float(self.after.mean())

    @property
    def effect(self) -> float:
        """Mean change in the metric (after - before)."""
        return self.after_mean - self.before_mean

    def to_dataframe(self) -> Any:
        """One row per example: the metric before and after, and the change."""
        return (
            pandas()
            .DataFrame(
                {
                    "before": self.before.detach().double().numpy(),
                    "after": self.after.detach().double().numpy(),
                    "change": (self.after - self.before).detach().double().numpy(),
                },
            )
            .rename_axis("example")
            .reset_index()
        )


@dataclass(frozen=True, repr=False)
class AblationResult(_BeforeAfter):
    """The metric per example before and after ablating ``units`` together."""

    before: Float[torch.Tensor, " batch"]
    after: Float[torch.Tensor, " batch"]
    units: tuple[Unit, ...]
    ablation: str
    hooks: tuple[str, ...]

    def _units(self) -> str:
        shown = ", ".join(map(str, self.units[:4]))
        return shown + (f" and {len(self.units) - 4} more" if len(self.units) > 4 else "")

    def _summary(self) -> str:
        return (
            f"{self.ablation} ablation of {len(self.units)} units ({self._units()}) over "
            f"{len(self.before)} examples: metric {num(self.before_mean)} -> "
            f"{num(self.after_mean)}, change {self.effect:+.3g}"
        )

    def _table(self) -> tuple:
        rows = [
            ("metric before", self.before_mean),
            ("metric after", self.after_mean),
            ("change", self.effect),
            ("examples", len(self.before)),
        ]
        return (f"{self.ablation} ablation of {self._units()}", ("", "mean"), rows, "")


@dataclass(frozen=True, repr=False)
class SweepResult(Shown):
    """One ablation per unit: ``after[i]`` is the mean metric with only ``units[i]`` ablated."""

    units: tuple[Unit, ...]
    before: float
    after: Float[torch.Tensor, " unit"]
    after_per_example: Float[torch.Tensor, "unit batch"]
    ablation: str

    @property
    def effect(self) -> Float[torch.Tensor, " unit"]:
        return self.after - self.before

    def grid(self) -> Float[torch.Tensor, "layer unit"]:
        """Effects as ``[layer, index]`` (NaN where a layer has fewer units)."""
        layers = sorted({u.layer for u in self.units})
        width = max(_unit_number(u) for u in self.units) + 1
        out = torch.full((max(layers) + 1, width), float("nan"))
        for unit, value in zip(self.units, self.effect):
            out[unit.layer, _unit_number(unit)] = value
        return out

    def to_dataframe(self) -> Any:
        """One row per unit: ``unit`` (as text), ``layer``, its index in the layer (``head``,
        ``neuron`` or ``position``), ``effect`` and ``after``. The grid of the README is
        ``frame.pivot(index="layer", columns="head", values="effect")``."""
        column = type(self.units[0]).__name__.lower() if self.units else "index"
        return pandas().DataFrame(
            {
                "unit": [str(u) for u in self.units],
                "layer": [u.layer for u in self.units],
                "position" if column == "residposition" else column: [
                    _unit_number(u) for u in self.units
                ],
                "effect": self.effect.detach().double().numpy(),
                "after": self.after.detach().double().numpy(),
            }
        )

    def _summary(self) -> str:
        return (
            f"{self.ablation} ablation of {len(self.units)} units one at a time; metric before "
            f"{num(self.before)}"
        )

    def _top(self) -> list[str]:
        return [f"{self.units[i]} {float(self.effect[i]):+.3g}" for i in strongest(self.effect)]

    def _table(self) -> tuple:
        title = f"{self.ablation} ablation: change in the metric (before {num(self.before)})"
        order = strongest(self.effect, MAX_ROWS)
        rows = [(str(self.units[i]), float(self.effect[i]), float(self.after[i])) for i in order]
        note = f"{len(order)} of {len(self.units)} units, largest change first"
        return title, ("unit", "change", "metric after"), rows, note


def _unit_number(unit: Unit | Feature) -> int:
    if isinstance(unit, Feature):
        return unit.feature
    if isinstance(unit, Head):
        return unit.head
    if isinstance(unit, Neuron):
        return unit.neuron
    return unit.position


def _features(units: Sequence[object]) -> list[Feature]:
    """``units`` when all are SAE features; a ValueError when features mix with others."""
    others = [u for u in units if not isinstance(u, Feature)]
    if others:
        raise ValueError(
            f"features and other units cannot be ablated in one call, got {others[0]} beside "
            "features: ablate each kind on its own"
        )
    return list(units)  # type: ignore[arg-type]


def _check_units(
    model: ModelHandle, units: Sequence[Unit | str]
) -> tuple[list[Unit], dict[tuple[type, int], str]]:
    """Parse and check ``units``; also ``{(unit type, layer): hook}``.

    Units of one type and layer share a hook and a range, so only the smallest and largest
    index of each group (and every unit with a position) go through ``check_unit``: a
    sweep over thousands of neurons does not pay thousands of checks.
    """
    parsed = [parse_unit(u) for u in units]
    extremes: dict[tuple[type, int], list] = {}  # [lowest, its number, highest, its number]
    for unit in parsed:
        if getattr(unit, "position", None) is not None:
            check_unit(model, unit=unit)
        number = _unit_number(unit)
        group = extremes.setdefault((type(unit), unit.layer), [unit, number, unit, number])
        if number < group[1]:
            group[0:2] = unit, number
        if number > group[3]:
            group[2:4] = unit, number
    hook_of = {}
    for key, (low, _, high, _) in extremes.items():
        check_unit(model, unit=low)
        check_unit(model, unit=high)
        hook_of[key] = low.hook(model)
    return parsed, hook_of


def _sites(
    units: Sequence[Unit], hook_of: dict[tuple[type, int], str], act_ndim: dict[str, int]
) -> list[Site]:
    sites = []
    for unit in units:
        hook = hook_of[type(unit), unit.layer]
        index = unit.index(act_ndim[hook]) if isinstance(unit, Neuron) else unit.index()
        sites.append((hook, index))
    return sites


@dataclass(frozen=True)
class _Setup:
    """Everything one clean pass gives: checked inputs, units, sites, sources, and the clean
    activations a sweep reads (``clean``: only those; the others never left the pass)."""

    inputs: torch.Tensor
    units: list[Unit]
    sites: list[Site]
    clean: dict[str, torch.Tensor]
    sources: dict[str, torch.Tensor]
    before: torch.Tensor


def _sources(
    model: ModelHandle,
    inputs: torch.Tensor,
    own: dict[str, torch.Tensor],
    ablation: str,
    reference: torch.Tensor | None,
    seed: int,
) -> dict[str, torch.Tensor]:
    """The replacement activation for each hook, shaped like the activation on ``inputs``.

    ``own[h]`` is what the clean pass kept of hook ``h`` (see ``_kept``): its values, its
    batch mean (``[1, ...]``) or one zero expanded to its shape; its shape after the batch
    dimension is the activation's either way.
    """
    shapes = {h: (inputs.shape[0], *a.shape[1:]) for h, a in own.items()}
    if ablation == "zero":  # one stored zero each: a remote trace ships a number, not a tensor
        return {h: a.new_zeros(()).expand(shapes[h]) for h, a in own.items()}
    if reference is None:
        ref = own
    else:
        reference = model.check_inputs(reference)
        if reference.shape[1:] != inputs.shape[1:]:
            raise ValueError(
                f"reference inputs must match the inputs' shape after the batch dimension: "
                f"{list(reference.shape[1:])} vs {list(inputs.shape[1:])}"
            )
        # mean: only the reference's batch mean leaves the pass
        _, ref = model.cache_pass(
            reference, names=sorted(own), select=_kept(model, set(), ablation, True)
        )
    batch = inputs.shape[0]
    if ablation == "mean":
        return {h: ref[h].mean(0, keepdim=True).expand(shapes[h]) for h in own}
    g = torch.Generator().manual_seed(seed)
    n_ref = next(iter(ref.values())).shape[0]
    if reference is None and n_ref > 1:  # resample from *other* examples of the batch
        pick = (torch.arange(batch) + torch.randint(1, n_ref, (batch,), generator=g)) % n_ref
    else:
        pick = torch.randint(0, n_ref, (batch,), generator=g)
    return {h: ref[h][pick] for h in own}


@torch.no_grad()
def _setup(
    model: ModelHandle,
    inputs: torch.Tensor,
    units: Sequence[Unit | str],
    metric: Metric,
    ablation: str,
    reference: torch.Tensor | None,
    seed: int,
    *,
    sweep: bool = False,
) -> _Setup:
    """Check everything, then one clean pass gives the metric before, shapes and sources
    (and, for a ``sweep``, the residual streams its passes start from)."""
    check_model(model, "ablate")
    check_choice("ablation", ablation, ABLATIONS)
    check_metric(metric)
    inputs = model.check_inputs(inputs)
    parsed, hook_of = _check_units(model, units)
    if not parsed:
        raise ValueError("no units to ablate: pass at least one Head, Neuron or ResidPosition")
    for unit in parsed:
        pos = getattr(unit, "position", None)
        if pos is not None and model.is_transformer and pos >= inputs.shape[1]:
            raise ValueError(
                f"{unit}: position {pos} out of range for inputs of length {inputs.shape[1]}"
            )
    hooks = sorted(set(hook_of.values()))
    bases = [h for h in sweep_base_hooks(model, hooks=hooks) if h not in hooks] if sweep else []
    clean = set(bases) | (_reads_clean(model, hooks) if sweep else set())
    batch = inputs.shape[0]
    before, cache = model.cache_pass(  # the metric, not the logits, leaves the pass
        inputs,
        names=hooks + bases,
        select=_kept(model, clean, ablation, reference is None),
        reduce=lambda logits: evaluate(metric, logits, batch),
    )
    own = {h: cache[h] for h in hooks}
    sites = _sites(parsed, hook_of, {h: a.ndim for h, a in own.items()})
    sources = _sources(model, inputs, own, ablation, reference, seed)
    return _Setup(inputs, parsed, sites, {h: cache[h] for h in clean}, sources, before)


def _kept(
    model: ModelHandle, clean: set[str], ablation: str, own_mean: bool
) -> Callable[[str, torch.Tensor], torch.Tensor]:
    """``select`` for the setup pass: of each ablated hook keep only what its source needs
    (a remote backend computes it in the pass, so only that comes back): for zero ablation
    (or a mean over ``reference``) its shape (the handle's ``shape_only`` stand-in);
    for mean ablation over the batch its batch mean; for resample its values. Hooks in
    ``clean`` (the residual streams a sweep starts from, hooks it reads clean) keep their
    values."""
    keep = "shape"
    shape_only = model.shape_only  # alone in the closure: a remote backend ships it
    if ablation == "resample":
        keep = "values"
    elif ablation == "mean" and own_mean:
        keep = "mean"

    def select(name: str, act: torch.Tensor) -> torch.Tensor:
        if name in clean or keep == "values":
            return act
        if keep == "mean":
            return act.mean(0, keepdim=True)
        return shape_only(act)

    return select


def ablate(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    units: Sequence[Unit | str] | Unit | str,
    metric: Metric,
    ablation: str = "zero",
    reference: torch.Tensor | None = None,
    seed: int = 0,
) -> AblationResult:
    """Ablate ``units`` together and report ``metric`` per example before and after.

    >>> import torch
    >>> from explorer.models import zoo
    >>> from explorer.analysis import metrics
    >>> m = zoo.mnist_mlp(hidden=(8,))
    >>> x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    >>> r = ablate(m, x, units="neuron 0.3", metric=metrics.neg_cross_entropy(y), ablation="mean")
    >>> r.hooks, tuple(r.after.shape)
    (('blocks.0.mlp.hook_post',), (16,))
    """
    if isinstance(units, (str, Head, Neuron)) or not isinstance(units, Sequence):
        units = [units]  # type: ignore[list-item]
    if any(isinstance(u, Feature) for u in units):
        before, after_f, hooks = ablate_features(
            model, inputs, units=_features(units), metric=metric, ablation=ablation,
            reference=reference, seed=seed,
        )  # fmt: skip
        return AblationResult(before, after_f, tuple(units), ablation, hooks)  # type: ignore[arg-type]
    s = _setup(model, inputs, units, metric, ablation, reference, seed)
    fired: set[str] = set()
    after = run_interventions(
        model, s.inputs, interventions=[s.sites], sources=s.sources, metric=metric, fired=fired
    )[0]
    return AblationResult(s.before, after, tuple(s.units), ablation, tuple(sorted(fired)))


@accepts_max_tokens
def ablate_sets(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    unit_sets: Sequence[Sequence[Unit | str]],
    metric: Metric,
    ablation: str = "zero",
    reference: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int | None = None,
) -> tuple[AblationResult, ...]:
    """``ablate`` for each set of ``unit_sets``: one clean pass, the sets as stacked copies.

    Each result equals ``ablate(model, inputs, units=that_set, ...)`` (the mean or resample
    source of a hook does not depend on which units of it are ablated). ``batch_size``
    bounds the inputs (rows) of one forward pass; None lets the library choose.
    """
    if not unit_sets or any(len(units) == 0 for units in unit_sets):
        raise ValueError("unit_sets must hold at least one non-empty set of units")
    union = list(dict.fromkeys(parse_unit(u) for units in unit_sets for u in units))
    if any(isinstance(u, Feature) for u in union):
        sets_f = [_features(units) for units in unit_sets]
        before, after = sweep_features(
            model, inputs, units=_features(union), metric=metric, ablation=ablation,
            reference=reference, seed=seed, max_tokens=token_budget(inputs, batch_size), sets=sets_f,
        )  # fmt: skip
        return tuple(
            AblationResult(before, row, tuple(units), ablation, tuple(units[0].sae.hooks))
            for units, row in zip(sets_f, after)
        )
    s = _setup(model, inputs, union, metric, ablation, reference, seed)
    site_of = dict(zip(s.units, s.sites))
    sets = [[parse_unit(u) for u in units] for units in unit_sets]
    interventions = [[site_of[u] for u in units] for units in sets]
    after = run_interventions(
        model,
        s.inputs,
        interventions=interventions,
        sources=s.sources,
        metric=metric,
        max_tokens=token_budget(s.inputs, batch_size),
    )
    return tuple(
        AblationResult(s.before, row, tuple(units), ablation, tuple(sorted({h for h, _ in sites})))
        for units, sites, row in zip(sets, interventions, after)
    )


@renamed_arguments(unit_type="granularity")
@accepts_max_tokens
def ablation_sweep(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    metric: Metric,
    units: Sequence[Unit | str] | None = None,
    layer: int | None = None,
    granularity: str | None = None,
    ablation: str = "zero",
    reference: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int | None = None,
) -> SweepResult:
    """Ablate each unit on its own, many per forward pass; equal to a per-unit loop.

    The batch runs once up to the units' layer and fans out there (see
    ``interventions``); ``batch_size`` bounds the inputs (rows) of one forward pass (None
    lets the library choose).

    Without ``units``: every head (``granularity="head"``) or every neuron
    (``granularity="neuron"``) of ``layer``, or of every layer when ``layer`` is None;
    ``SweepResult.grid()`` lays them out ``[layer, index]``. Without a granularity it
    sweeps the units the model has: its heads, or the neurons of a model without attention.
    """
    check_model(model, "ablation_sweep")
    if units is None:
        if granularity is None:
            granularity = "head" if model.is_transformer and model.n_heads else "neuron"
        check_choice("granularity", granularity, ("head", "neuron"))
        units = (all_heads if granularity == "head" else all_neurons)(model, layer=layer)
    if any(isinstance(u, Feature) for u in units):
        before, after = sweep_features(
            model, inputs, units=_features(units), metric=metric, ablation=ablation,
            reference=reference, seed=seed, max_tokens=token_budget(inputs, batch_size),
        )  # fmt: skip
        return SweepResult(tuple(units), float(before.mean()), after.mean(1), after, ablation)  # type: ignore[arg-type]
    s = _setup(model, inputs, units, metric, ablation, reference, seed, sweep=True)
    after = run_sweep(
        model,
        s.inputs,
        sites=s.sites,
        sources=s.sources,
        clean_activations=s.clean,
        metric=metric,
        max_tokens=token_budget(s.inputs, batch_size),
    )
    return SweepResult(tuple(s.units), float(s.before.mean()), after.mean(1), after, ablation)
