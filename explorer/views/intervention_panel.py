"""``InterventionPanel``: ablate units with a click and see the metric before and after.

Pick heads, neurons or positions (``units``) and an ``ablation``; the panel runs
``explorer.analysis.ablate`` on its inputs and shows the metric per example and on
average. ``sweep()`` (the Sweep button) ablates every head or every neuron on its own,
batched, and draws the effects as a heatmap; clicking a cell selects that unit
(``layer``/``head``/``neuron``, linkable to the other views) and ablates it.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.ablation import ABLATIONS, ablate, ablation_sweep
from explorer.analysis.metrics import Metric, lower_is_better
from explorer.analysis.units import Head, Neuron, check_unit, parse_unit
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget, check_range
from explorer.views._inputs import as_metrics, default_metrics, split_data
from explorer.views._renamed import keyword_only_now, renamed_trait
from explorer.views._reporting import page_request, reports_errors
from explorer.views._request_queue import in_queue
from explorer.views.serialize import Tensor, esm


class InterventionPanel(ExplorerWidget):
    """Ablate heads, neurons or positions of ``model`` on ``inputs`` and compare a metric.

    Args:
        model: any handle.
        inputs: inputs (and labels): see ``NeuronView``; at most ``max_examples`` are used.
        metric: ``fn(logits) -> Tensor[batch]`` or ``{name: fn}``; default: accuracy and
            log-prob of the label when labels are known, next-token loss for token data.
        reference: inputs whose activations ``mean``/``resample`` ablation uses (default:
            the inputs themselves).

    >>> import torch
    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(8,))
    >>> panel = InterventionPanel(m, (torch.rand(20, 1, 28, 28), torch.randint(0, 10, (20,))))
    >>> panel.units = ["neuron 0.3"]
    >>> panel.before["shape"], panel.hooks
    ([20], ['blocks.0.mlp.hook_post'])
    """

    _esm = esm("intervention_panel.js")

    units = traitlets.List(traitlets.Unicode(), help="units ablated together, e.g. 'head 1.2'").tag(
        sync=True
    )
    ablation = traitlets.Enum(ABLATIONS, "zero", help="zero, mean or resample").tag(sync=True)
    kind = renamed_trait("kind", "ablation")
    metric_name = traitlets.Unicode("", help="the metric shown (one of metric_names)").tag(
        sync=True
    )
    worse_when = traitlets.Enum(
        ("up", "down"),
        "down",
        help="which way the shown metric moves when the model gets worse (up: a loss)",
    ).tag(sync=True)
    metric_names = traitlets.List(traitlets.Unicode(), help="metrics on offer").tag(sync=True)
    granularity = traitlets.Enum(("head", "neuron"), "head", help="what the sweep ablates").tag(
        sync=True
    )
    unit_type = renamed_trait("unit_type", "granularity")

    layer = traitlets.Int(0, help="layer of the selected unit").tag(sync=True)
    head = traitlets.Int(0, help="selected head (linkable to AttentionView)").tag(sync=True)
    neuron = traitlets.Int(0, help="selected neuron (linkable to NeuronView)").tag(sync=True)

    n_layers = traitlets.Int(0).tag(sync=True)
    n_heads = traitlets.Int(0).tag(sync=True)
    widths = traitlets.List(traitlets.Int(), help="neurons per layer").tag(sync=True)
    n_examples = traitlets.Int(0).tag(sync=True)

    before = Tensor("float32", help="payload [batch]: metric per example, unablated").tag(sync=True)
    after = Tensor("float32", help="payload [batch]: metric per example, ablated").tag(sync=True)
    before_mean = traitlets.Float(None, allow_none=True, help="mean metric before").tag(sync=True)
    after_mean = traitlets.Float(None, allow_none=True, help="mean metric after").tag(sync=True)
    hooks = traitlets.List(traitlets.Unicode(), help="hooks that fired in the ablation").tag(
        sync=True
    )
    sweep_effects = Tensor(
        "float32", help="payload [layer, unit]: after - before for each unit ablated alone"
    ).tag(sync=True)
    sweep_before = traitlets.Float(
        None, allow_none=True, help="mean metric the sweep compares to"
    ).tag(sync=True)
    sweep_info = traitlets.Unicode("", help="what the sweep shows").tag(sync=True)

    @keyword_only_now("metric")
    @renamed_arguments(data="inputs", kind="ablation", unit_type="granularity")
    def __init__(
        self,
        model: ModelHandle,
        inputs: Any,
        *,
        metric: Metric | dict[str, Metric] | None = None,
        reference: torch.Tensor | None = None,
        max_examples: int = 64,
        **kwargs: Any,
    ) -> None:
        inputs, labels = split_data(inputs)
        inputs = model.check_inputs(inputs)[:max_examples]
        labels = labels[:max_examples] if labels is not None else None
        self.model = model
        self.inputs = inputs
        self.reference = reference
        self._metrics = as_metrics(metric, fallback={})
        if not self._metrics:
            self._metrics = default_metrics(model, inputs, labels)
        self._last_key: tuple[Any, ...] | None = None
        super().__init__(
            n_layers=model.n_layers,
            n_heads=model.n_heads or 0,
            widths=list(model.layer_widths),
            n_examples=len(inputs),
            metric_names=list(self._metrics),
            metric_name=next(iter(self._metrics)),
            granularity="head" if model.is_transformer else "neuron",
            before=None,
            after=None,
            sweep_effects=None,
            **kwargs,
        )
        self._metric_direction()

    # ------------------------------------------------------------------ validation
    @traitlets.validate("units")
    def _valid_units(self, proposal: dict[str, Any]) -> list[str]:
        out = []
        for text in proposal["value"]:
            try:
                out.append(str(check_unit(self.model, unit=parse_unit(text))))
            except (ValueError, TypeError) as exc:
                raise traitlets.TraitError(str(exc)) from exc
        return list(dict.fromkeys(out))  # unique, in order

    @traitlets.validate("metric_name")
    def _valid_metric(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in self._metrics:
            raise traitlets.TraitError(
                f"unknown metric {proposal['value']!r}: choose one of {', '.join(self._metrics)}"
            )
        return proposal["value"]

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    # ------------------------------------------------------------------ actions
    @property
    def metric(self) -> Metric:
        return self._metrics[self.metric_name]

    @traitlets.observe("metric_name")
    def _metric_direction(self, _change: dict[str, Any] | None = None) -> None:
        self.worse_when = "up" if lower_is_better(self.metric, self.metric_name) else "down"

    @traitlets.observe("units", "ablation", "metric_name")
    @reports_errors
    def _run_ablation(self, change: dict[str, Any] | None = None) -> None:
        key = (tuple(self.units), self.ablation, self.metric_name)
        if key == self._last_key:
            return
        if change is not None and change["name"] == "metric_name":
            self.sweep_effects, self.sweep_info = None, ""
        if not self.units:
            self.before, self.after = None, None
            self.before_mean = self.after_mean = None
            self.hooks = []
            self._last_key = key
            return
        result = ablate(
            self.model,
            self.inputs,
            units=self.units,
            metric=self.metric,
            ablation=self.ablation,
            reference=self.reference,
        )
        with self.hold_sync():
            self.before = result.before
            self.after = result.after
            self.before_mean = result.before_mean
            self.after_mean = result.after_mean
            self.hooks = list(result.hooks)
        self._last_key = key

    @reports_errors
    def sweep(self) -> None:
        """Ablate every head (or every neuron, layer by layer) alone; fills ``sweep_effects``."""
        result = ablation_sweep(
            self.model,
            self.inputs,
            metric=self.metric,
            granularity=self.granularity,
            ablation=self.ablation,
            reference=self.reference,
        )
        grid, before = result.grid(), result.before
        with self.hold_sync():
            self.sweep_effects = grid
            self.sweep_before = before
            self.sweep_info = (
                f"{self.ablation} ablation of each {self.granularity} alone: change in mean "
                f"{self.metric_name} (before {before:.4g}); click a cell to select it"
            )

    # a sweep, and every page change that ablates (units, ablation, metric, a sweep cell, a typed
    # unit): passes over the batch, run on the worker thread with Cancel
    @page_request(background=True)
    def _page_sweep(self) -> None:
        self.sweep()

    @page_request(background=True)
    def _page_select(self, layer: int, index: int) -> None:
        self.select(layer, index)

    @page_request(background=True)
    def _page_add_unit(self, text: str) -> None:
        self.add_unit(text)

    @in_queue
    def select(self, layer: int, index: int) -> None:
        """Select unit ``index`` of ``layer`` (a sweep cell) and ablate it alone."""
        layer, index = int(layer), int(index)
        unit = Head(layer, index) if self.granularity == "head" else Neuron(layer, index)
        check_unit(self.model, unit=unit)
        # layer first: a linked NeuronView checks the neuron against the layer it shows;
        # one change, put back whole if cancelled
        which = "head" if self.granularity == "head" else "neuron"
        self._set_from_page(**{"layer": layer, which: index, "units": [str(unit)]})

    @in_queue
    def add_unit(self, text: str) -> None:
        """Add a unit typed in the page (``"head 1.2"``) to those ablated together."""
        unit = check_unit(self.model, unit=parse_unit(text))
        self._set_from_page(units=[*self.units, str(unit)])  # put back if cancelled

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError("InterventionPanel.set_model takes no data: build a new panel")
        self._last_key = None
        self.sweep_effects, self.sweep_info = None, ""
        self._run_ablation()
