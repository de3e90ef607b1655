"""``PatchingView``: activation-patching heatmaps between a clean and a corrupted input.

Each cell is the metric on the corrupted input with one activation patched in from the
clean run, at one of the patching sites of ``analysis.patching`` (a site selector: the
residual stream before or between sublayers, attention and MLP outputs, a head's output,
queries, keys, values or pattern, all positions or by position, or a neuron). Three-axis
grids (by position) are shown with one row per head (``L1H2``) and one column per
position. The ``path`` grid is path patching (``analysis.path_patching``): each upstream
head as a sender to the ``receivers`` (by default the selected head), run on the clean
input. Cells are shown as the fraction of the clean-vs-corrupted gap they recover (path:
the change relative to that gap). Results are cached per setting; a click in the browser
sets ``cell``, and the kernel selects it (``layer``/``position``/``head``/``neuron``,
linkable to the other views). With ``sae=``, the ``feature`` grid patches each of the SAE's
features (``activation_patching(..., grid="feature", sae=)``, one row of ``d_sae`` cells
``F0``, ``F1``, ...); a click on a feature sets ``feature`` and ``selected`` (``"F12"``):
``traitlets.link((view, "selected"), (feature_view, "selected"))`` opens it in a
``FeatureView``.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.color_scales import patching_color_scale, path_patching_color_scale
from explorer.analysis.metrics import Metric
from explorer.analysis.patching import (
    GRIDS,
    PatchingResult,
    activation_patching,
    attribution_patching,
    grid_axes,
    supports,
)
from explorer.analysis.path_patching import PathPatchingResult, path_patching
from explorer.analysis.units import Head
from explorer.features import SparseAutoencoder
from explorer.models.handle import ModelHandle
from explorer.views._base import check_range
from explorer.views._renamed import keyword_only_now
from explorer.views._reporting import reports_errors
from explorer.views.serialize import Tensor, esm
from explorer.views.token_labels import _ShowsTokens, token_label

METHODS = ("activation", "attribution")
VIEW_GRIDS = (*GRIDS, "path", "feature")
_KEYS = {
    "position": "position",
    "head": "head",
    "neuron": "neuron",
    "dest position": "position",
    "feature": "feature",
}


class PatchingView(_ShowsTokens):
    """Patch activations from ``inputs`` (the clean run) into ``corrupted`` and show where the
    metric returns.

    Args:
        model: any handle (every grid but ``neuron`` needs a transformer).
        inputs, corrupted: inputs of the same shape (token ids ``[batch, pos]`` or images);
            ``inputs`` is the clean run.
        metric: ``fn(logits) -> Tensor[batch]`` scoring the corrupted run (e.g. next-token
            loss against the clean tokens, or a logit difference).
        grid: the grid shown first.
        sae: an SAE on ``model`` whose features get a grid (``"feature"``), one cell each.

    ``PatchingView(model, clean, corrupted, metric)`` (by position, or ``clean=``) still
    works until explorer 0.4, with a DeprecationWarning.

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> from explorer.analysis import metrics
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
    >>> clean, corrupted = repeated_tokens(4, 5, 20, seed=0), repeated_tokens(4, 5, 20, seed=1)
    >>> view = PatchingView(
    ...     m, clean, corrupted=corrupted, metric=metrics.next_token_loss(clean), grid="head"
    ... )
    >>> view.values["shape"]
    [2, 4]
    >>> view.grid = "head_by_pos"  # one row per head, one column per position
    >>> view.values["shape"], view.row_labels[:2]
    ([8, 11], ['L0H0', 'L0H1'])
    """

    _esm = esm("patching_view.js")
    _token_traits = (
        "clean_tokens",
        "corrupted_tokens",
    )  # token strings the page labels (token_labels)

    grid = traitlets.Enum(
        VIEW_GRIDS, "resid", help="patching site: resid, head, q, pattern_by_pos, ..., or path"
    ).tag(sync=True)
    method = traitlets.Enum(
        METHODS, "activation", help="exact patching or its gradient estimate (not for path)"
    ).tag(sync=True)
    grids = traitlets.List(traitlets.Unicode(), help="grids this model supports").tag(sync=True)
    receivers = traitlets.List(
        traitlets.Unicode(),
        help="receiver heads of the path grid ('head 2.1'); empty: the selected head",
    ).tag(sync=True)
    receivers_used = traitlets.List(
        traitlets.Unicode(), help="the receiver heads the path grid shows"
    ).tag(sync=True)
    receiver_inputs = traitlets.List(
        traitlets.Unicode(), ["q", "k", "v"], help="which inputs of the receivers the path reaches"
    ).tag(sync=True)
    layer = traitlets.Int(0, help="layer of the selected cell").tag(sync=True)
    position = traitlets.Int(0, help="position of the selected cell").tag(sync=True)
    head = traitlets.Int(0, help="head of the selected cell").tag(sync=True)
    neuron = traitlets.Int(0, help="neuron of the selected cell").tag(sync=True)
    feature = traitlets.Int(0, help="SAE feature of the selected cell (with sae=)").tag(sync=True)
    selected = traitlets.Unicode(
        "", help="label of the selected SAE feature, e.g. F12 (link to FeatureView.selected)"
    ).tag(sync=True)
    cell = traitlets.List(traitlets.Int(), help="[row, col] clicked in the browser").tag(sync=True)
    selected_cell = traitlets.List(
        traitlets.Int(), help="[row, col] of the selection in the shown grid"
    ).tag(sync=True)

    selected_text = traitlets.Unicode("", help="the selected cell in words").tag(sync=True)
    values = Tensor("float32", help="payload [row, col]: mean metric with the cell patched").tag(
        sync=True
    )
    recovery = Tensor("float32", help="payload [row, col]: 0 = corrupted, 1 = clean").tag(sync=True)
    scale_label = traitlets.Unicode("", help="what the colours show").tag(sync=True)
    color_scale = traitlets.Dict(
        help="ColorScale of the shown grid (analysis.color_scales): the same -1..1 for both "
        "methods, what each end means, and a note for an approximation"
    ).tag(sync=True)
    clean_value = traitlets.Float(None, allow_none=True, help="mean metric on the clean input").tag(
        sync=True
    )
    corrupted_value = traitlets.Float(
        None, allow_none=True, help="mean metric on the corrupted input"
    ).tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode(), help="label of each row").tag(sync=True)
    col_labels = traitlets.List(traitlets.Unicode(), help="label of each column").tag(sync=True)
    clean_tokens = traitlets.List(traitlets.Unicode(), help="first clean prompt").tag(sync=True)
    corrupted_tokens = traitlets.List(traitlets.Unicode(), help="first corrupted prompt").tag(
        sync=True
    )

    @keyword_only_now("corrupted", "metric")
    @renamed_arguments(clean="inputs")
    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        corrupted: torch.Tensor,
        metric: Metric,
        grid: str | None = None,
        sae: SparseAutoencoder | None = None,
        **kwargs: Any,
    ) -> None:
        if sae is not None and not isinstance(sae, SparseAutoencoder):
            raise TypeError(f"sae must be a SparseAutoencoder (features.load_sae), got {sae!r}")
        self._sae = sae
        if not callable(metric):
            raise TypeError(f"metric must be a function logits -> Tensor[batch], got {metric!r}")
        self.model = model
        self.inputs = model.check_inputs(inputs)
        self.corrupted = model.check_inputs(corrupted)
        if self.inputs.shape != self.corrupted.shape:
            raise ValueError(
                f"clean and corrupted inputs must have the same shape, got "
                f"{list(self.inputs.shape)} and {list(self.corrupted.shape)}"
            )
        self.metric = metric
        self._pinned: tuple[str, ...] | None = None
        grids = [g for g in VIEW_GRIDS if self._has(g)]
        tokens = model.is_transformer
        super().__init__(
            grids=grids,
            grid=grid or grids[0],
            values=None,
            recovery=None,
            clean_tokens=model.to_str_tokens(self.inputs[0]) if tokens else [],
            corrupted_tokens=model.to_str_tokens(self.corrupted[0]) if tokens else [],
            **kwargs,
        )
        self._feature_label()
        self._show()

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._results.clear()
        self._pinned = None
        self._show()

    @traitlets.validate("grid")
    def _valid_grid(self, proposal: dict[str, Any]) -> str:
        if not self._has(proposal["value"]):
            why = " (the feature grid needs sae=)" if proposal["value"] == "feature" else ""
            raise traitlets.TraitError(
                f"{self.model.name} has no {proposal['value']!r} grid{why}: choose one of "
                f"{', '.join(g for g in VIEW_GRIDS if self._has(g))}"
            )
        return proposal["value"]

    def _has(self, grid: str) -> bool:
        if grid == "feature":
            return self._sae is not None
        return _supports(self.model, grid)

    @traitlets.validate("feature")
    def _valid_feature(self, proposal: dict[str, Any]) -> int:
        if self._sae is None:
            return proposal["value"]
        return check_range("feature", proposal["value"], self._sae.d_sae, f"({self._sae.name})")

    @traitlets.observe("feature")
    def _feature_label(self, change: dict[str, Any] | None = None) -> None:
        if self._sae is not None and self.selected != f"F{self.feature}":
            self.selected = f"F{self.feature}"

    @traitlets.observe("selected")
    @reports_errors
    def _follow_label(self, change: dict[str, Any]) -> None:
        text = self.selected
        if not text or self._sae is None:
            return
        if not (text.startswith("F") and text[1:].isdigit()):
            raise ValueError(f"selected must name a feature like 'F12', got {text!r}")
        self.feature = int(text[1:])

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    def _receivers(self) -> tuple[str, ...]:
        if self.receivers:
            return tuple(self.receivers)
        if self._pinned is not None:  # the head selected when the path grid opened
            return self._pinned
        if self.layer == 0:
            raise ValueError(
                "path patching needs a receiver head after layer 0: select one (click a head "
                "in the head grid) or set receivers=['head 1.0']"
            )
        self._pinned = (str(Head(self.layer, self.head)),)
        return self._pinned

    def result(
        self, grid: str | None = None, method: str | None = None
    ) -> PatchingResult | PathPatchingResult:
        """The (cached) result of a grid and method (path: for the current receivers)."""
        grid = grid or self.grid
        if grid == "path":
            key: tuple = ("path", self._receivers(), tuple(self.receiver_inputs))
            return self._results.get(
                key,
                lambda: path_patching(
                    self.model,
                    self.inputs,
                    corrupted=self.corrupted,
                    receivers=list(key[1]),
                    receiver_inputs=key[2],
                    metric=self.metric,
                ),
            )
        key = (grid, method or self.method)
        run = activation_patching if key[1] == "activation" else attribution_patching
        sae = {"sae": self._sae} if grid == "feature" else {}
        return self._results.get(
            key,
            lambda: run(
                self.model,
                self.inputs,
                corrupted=self.corrupted,
                metric=self.metric,
                grid=grid,
                **sae,
            ),
        )

    @traitlets.observe("grid", "method", "receivers", "receiver_inputs")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        if change is not None and change["name"] == "grid":
            self._pinned = None  # a click in another grid picks the next receiver
        result = self.result()
        if isinstance(result, PathPatchingResult):
            values, shown = result.values, result.change
            scale = path_patching_color_scale(shown)
            self.receivers_used = [str(h) for h in result.receivers]
            rows = [f"L{l}" for l in range(values.shape[0])]
            cols = [f"H{h}" for h in range(values.shape[1])]
        else:
            values, shown = result.values, result.recovery
            scale = patching_color_scale(shown, method=self.method)
            values, shown, rows, cols = self._flatten(result.grid, values, shown)
        with self.hold_sync():
            self.values = values
            self.recovery = shown
            self.scale_label = scale.label
            self.color_scale = scale.to_dict()
            self.clean_value = result.clean_value
            self.corrupted_value = result.corrupted_value
            self.row_labels = rows
            self.col_labels = cols
            self._mark()

    def _flatten(self, grid: str, values: torch.Tensor, shown: torch.Tensor):
        """2-D ``[row, col]`` for display: 3-axis grids get one row per (layer, head)."""
        axes = grid_axes(grid)
        tokens = [f"{i} {token_label(t)}" for i, t in enumerate(self.clean_tokens)]
        names = {"position": tokens, "dest position": tokens}
        if len(axes) == 2:
            n = values.shape[1]
            cols = names.get(axes[1], [f"{axes[1][0].upper()}{i}" for i in range(n)])[:n]
            if grid == "feature" and self._sae is not None:
                return values, shown, [self._sae.hook], cols
            return values, shown, [f"L{l}" for l in range(values.shape[0])], cols
        if axes[1] != "head":  # [layer, position, head] -> [layer, head, position]
            values, shown = values.transpose(1, 2), shown.transpose(1, 2)
        layers, heads, n = values.shape
        rows = [f"L{l}H{h}" for l in range(layers) for h in range(heads)]
        return values.reshape(-1, n), shown.reshape(-1, n), rows, tokens[:n]

    def _axes(self) -> tuple[str, ...]:
        return ("layer", "head") if self.grid == "path" else grid_axes(self.grid)

    @traitlets.observe("layer", "position", "head", "neuron", "feature")
    def _mark(self, change: dict[str, Any] | None = None) -> None:
        axes = self._axes()
        if self.grid == "feature" and self._sae is not None:
            row, col = 0, self.feature
            text = f"feature F{self.feature} of {self._sae.name} at {self._sae.hook}"
        elif len(axes) == 2:
            row, col = self.layer, getattr(self, _KEYS[axes[1]])
            name = "position" if axes[1] == "position" else axes[1]
            label = self.col_labels[col] if col < len(self.col_labels) else str(col)
            text = f"layer {self.layer}, {name} {label}"
        else:
            heads = len(self.row_labels) // max(1, self.model.n_layers)
            row, col = self.layer * heads + self.head, self.position
            label = self.col_labels[col] if col < len(self.col_labels) else str(col)
            text = f"layer {self.layer}, head {self.head}, {axes[2] if axes[1] == 'head' else 'position'} {label}"
        with self.hold_sync():
            self.selected_cell = [row, col]
            self.selected_text = text

    @traitlets.observe("cell")
    @reports_errors
    def _clicked(self, change: dict[str, Any]) -> None:
        if len(self.cell) != 2:
            raise ValueError(f"cell must be [row, col], got {self.cell}")
        self.select_cell(*self.cell)

    def select_cell(self, row: int, col: int) -> None:
        """Select the shown cell (``row``, ``col``) of the current grid."""
        axes = self._axes()
        if self.grid == "feature":  # one row: the SAE's hook
            self.feature = col
            return
        if len(axes) == 2:
            self.select(row, col)
            return
        heads = len(self.row_labels) // max(1, self.model.n_layers)
        with self.hold_trait_notifications():
            self.layer, self.head, self.position = row // heads, row % heads, col

    def select(self, layer: int, index: int) -> None:
        """Select the cell (``layer``, ``index``) of a two-axis grid."""
        self.layer = layer
        setattr(self, _KEYS[self._axes()[1]], index)


def _supports(model: ModelHandle, grid: str) -> bool:
    if grid == "path":
        return model.is_transformer and model.n_layers >= 2
    return supports(model, grid=grid)
