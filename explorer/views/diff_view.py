"""``DiffView``: what changed from model A to model B, unit by unit, side by side.

Four change maps of ``analysis.compare`` in a row (relative weight change, attention
divergence, activation change, DLA change), by head or by neuron; a click on any map
selects that unit (``layer``/``head``/``neuron``, linkable to the other views, as in
``PatchingView``) and shows the selected head's attention pattern in A, in B and their
difference on one prompt (``example``). With a ``metric``, the cross-model patching grid
(``activation_patching(..., other=)``) sits beside them: how much of the behaviour change
each unit carries, B's activation patched into A (``patch_into="model"``) or the way
back; with an SAE too (``sae=``), the same over its features (``grid="feature"``, each
model's error term kept). Every number comes from ``explorer.analysis``; results are cached per setting.

>>> from explorer.models import zoo
>>> from explorer.analysis import metrics
>>> from explorer.data import repeated_tokens
>>> a = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
>>> b = a.copy()
>>> b.set_weight("query", a.weight("query", 1)[3] * 4, 1, head=3)
>>> tokens = repeated_tokens(3, 5, 20, seed=0)
>>> view = DiffView(a, tokens, other=b, metric=metrics.logit_diff(tokens[:, 1], tokens[:, 2]))
>>> view.weights["shape"], (view.layer, view.head)  # the largest change selected first
([2, 4], (1, 3))
>>> view.pattern_a["shape"]  # the selected head's pattern on prompt 0: [query, key]
[11, 11]
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer.analysis.comparison import Comparison, compare
from explorer.analysis.head_scores import attention_patterns
from explorer.analysis.logit_attribution import TokenSpec
from explorer.analysis.metrics import Metric
from explorer.analysis.patching import PatchingResult, activation_patching
from explorer.features import SparseAutoencoder
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget, check_range
from explorer.views._reporting import reports_errors
from explorer.views.serialize import Tensor, esm

GRANULARITIES = ("head", "neuron")
MAPS = ("weights", "attention", "activation_mean", "dla")


class DiffView(ExplorerWidget):
    """Change maps from ``model`` (A) to ``other`` (B), a head's pattern in both, and the
    cross-model patching grid.

    Args:
        model, other: two handles of one architecture (a base and its fine-tune...).
        inputs: token ids ``[batch, pos]`` both models read.
        metric: ``fn(logits) -> Tensor[batch]``, the behaviour whose change is localized
            by cross-model patching; None leaves the patching grid out.
        target, against, position: the DLA direction of ``compare`` (None: no DLA map).
        granularity: ``"head"`` or ``"neuron"``, the maps shown first.
        sae: an SAE at a hook of both models: with ``metric``, the cross-model patching
            grid over its features is shown too (``feature_patching``).
    """

    _esm = esm("diff_view.js")

    granularity = traitlets.Enum(
        GRANULARITIES, "head", help="which units the maps are over: head or neuron"
    ).tag(sync=True)
    granularities = traitlets.List(traitlets.Unicode(), help="granularities both models have").tag(
        sync=True
    )
    model_names = traitlets.List(traitlets.Unicode(), help="[model A's name, model B's name]").tag(
        sync=True
    )
    weights = Tensor("float32", help="payload [layer, unit]: relative weight change").tag(sync=True)
    attention = Tensor("float32", help="payload [layer, head]: Jensen-Shannon divergence").tag(
        sync=True
    )
    activation_mean = Tensor(
        "float32", help="payload [layer, unit]: mean activation change over tokens"
    ).tag(sync=True)
    dla = Tensor("float32", help="payload [layer, unit]: DLA change, B minus A").tag(sync=True)
    summary = traitlets.Unicode("", help="the comparison in one line").tag(sync=True)
    patch_into = traitlets.Enum(
        ("model", "other"),
        "model",
        help="cross-model patching: other's activations into model (model), or back (other)",
    ).tag(sync=True)
    patching = Tensor(
        "float32", help="payload [layer, unit]: recovery, the share of the change a unit carries"
    ).tag(sync=True)
    patching_values = Tensor("float32", help="payload [layer, unit]: metric patched").tag(sync=True)
    feature_patching = Tensor(
        "float32", help="payload [1, feature]: recovery of each SAE feature patched across"
    ).tag(sync=True)
    feature_patching_values = Tensor(
        "float32", help="payload [1, feature]: metric with each SAE feature patched across"
    ).tag(sync=True)
    sae_name = traitlets.Unicode("", help="the SAE whose features are patched").tag(sync=True)
    metric_a = traitlets.Float(None, allow_none=True, help="mean metric of model A").tag(sync=True)
    metric_b = traitlets.Float(None, allow_none=True, help="mean metric of model B").tag(sync=True)
    layer = traitlets.Int(0, help="layer of the selected unit").tag(sync=True)
    head = traitlets.Int(0, help="selected head").tag(sync=True)
    neuron = traitlets.Int(0, help="selected neuron").tag(sync=True)
    cell = traitlets.List(traitlets.Int(), help="[layer, unit] clicked in the browser").tag(
        sync=True
    )
    example = traitlets.Int(0, help="the prompt whose patterns are shown").tag(sync=True)
    prompt = traitlets.List(traitlets.Unicode(), help="token strings of that prompt").tag(sync=True)
    pattern_a = Tensor("float16", help="payload [query, key]: the head's pattern in A").tag(
        sync=True
    )
    pattern_b = Tensor("float16", help="payload [query, key]: the head's pattern in B").tag(
        sync=True
    )

    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        other: ModelHandle,
        metric: Metric | None = None,
        target: TokenSpec | None = None,
        against: TokenSpec | None = None,
        position: int = -1,
        granularity: str | None = None,
        sae: SparseAutoencoder | None = None,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"DiffView needs transformers; {model.name} takes images")
        if metric is not None and not callable(metric):
            raise TypeError(f"metric must be a function logits -> Tensor[batch], got {metric!r}")
        self.model, self.other = model, other
        self.inputs = model.check_inputs(inputs)
        self.metric = metric
        self.sae = sae
        self._options = {"target": target, "against": against, "position": position}
        granularities = [g for g in GRANULARITIES if g == "head" or model.has_mlp]
        super().__init__(
            granularities=granularities,
            granularity=granularity or "head",
            model_names=[model.name, other.name],
            sae_name="" if sae is None else sae.name,
            **kwargs,
        )
        self._show()
        self._select_largest()

    def comparison(self) -> Comparison:
        """The (cached) ``compare`` result of the two models on the inputs."""
        return self._results.get(
            "compare",
            lambda: compare(self.model, self.inputs, other=self.other, **self._options),
        )

    def cross_patching(self, granularity: str | None = None) -> PatchingResult | None:
        """The (cached) cross-model patching grid, in the direction ``patch_into`` says
        (``"feature"``: over the SAE's features, None without ``sae=``)."""
        if self.metric is None:
            return None
        grid = granularity or self.granularity
        if grid == "feature" and self.sae is None:
            return None
        into, source = (
            (self.model, self.other) if self.patch_into == "model" else (self.other, self.model)
        )
        return self._results.get(
            ("patching", grid, self.patch_into),
            lambda: activation_patching(
                into,
                self.inputs,
                other=source,
                metric=self.metric,
                grid=grid,
                sae=self.sae if grid == "feature" else None,
            ),
        )

    def _patterns(self, which: ModelHandle) -> torch.Tensor:
        rows = self.inputs[self.example : self.example + 1]
        key = ("patterns", id(which), self.example)
        return self._results.get(key, lambda: attention_patterns(which, rows))[0]

    @traitlets.validate("granularity")
    def _valid_granularity(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] == "neuron" and not self.model.has_mlp:
            raise traitlets.TraitError(f"{self.model.name} is attention-only: it has no neurons")
        return proposal["value"]

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    @traitlets.validate("example")
    def _valid_example(self, proposal: dict[str, Any]) -> int:
        return check_range("example", proposal["value"], self.inputs.shape[0], "(prompts)")

    @traitlets.observe("granularity", "patch_into")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        result, granularity = self.comparison(), self.granularity
        patched = self.cross_patching()
        features = self.cross_patching("feature")
        dla = result.dla.get(granularity)
        with self.hold_sync():
            self.weights = result.weights[granularity]
            self.attention = result.attention
            self.activation_mean = result.activation_mean[granularity]
            self.dla = dla
            self.summary = repr(result)
            self.patching = None if patched is None else patched.recovery
            self.patching_values = None if patched is None else patched.values
            self.feature_patching = None if features is None else features.recovery
            self.feature_patching_values = None if features is None else features.values
            if patched is not None:
                into_model = self.patch_into == "model"
                self.metric_a = patched.corrupted_value if into_model else patched.clean_value
                self.metric_b = patched.clean_value if into_model else patched.corrupted_value
        self._draw_patterns()

    def _select_largest(self) -> None:
        """Start on the unit whose weights changed most."""
        top = self.comparison().top(1, measure="weights", granularity=self.granularity)
        if top:
            unit = top[0][0]
            self.select(unit.layer, getattr(unit, self.granularity))

    @traitlets.observe("layer", "head", "example")
    @reports_errors
    def _draw_patterns(self, change: dict[str, Any] | None = None) -> None:
        with self.hold_sync():
            self.prompt = self.model.to_str_tokens(self.inputs[self.example])
            self.pattern_a = self._patterns(self.model)[self.layer, self.head]
            self.pattern_b = self._patterns(self.other)[self.layer, self.head]

    @traitlets.observe("cell")
    @reports_errors
    def _clicked(self, change: dict[str, Any]) -> None:
        if len(self.cell) != 2:
            raise ValueError(f"cell must be [layer, unit], got {self.cell}")
        self.select(*self.cell)

    def select(self, layer: int, index: int) -> None:
        """Select unit ``index`` (a head, or a neuron in the neuron maps) of ``layer``."""
        with self.hold_trait_notifications():
            self.layer = layer
            if self.granularity == "head":
                self.head = check_range("head", index, self.model.n_heads or 0, "")
            else:
                self.neuron = check_range("neuron", index, self.model.layer_widths[layer], "")
