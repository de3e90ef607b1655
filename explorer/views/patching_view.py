"""``PatchingView``: activation-patching heatmaps between a clean and a corrupted input.

Each cell is the metric on the corrupted input with one activation patched in from the
clean run: the residual stream at (layer, position), a head's output (layer, head), or a
neuron (layer, neuron). Cells are shown as the fraction of the clean-vs-corrupted gap they
recover. Results are cached per (grid, method); clicking a cell selects it
(``layer``/``position``/``head``/``neuron``, linkable to the other views).
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer.analysis.metrics import Metric
from explorer.analysis.patching import (
    GRIDS,
    PatchingResult,
    activation_patching,
    attribution_patching,
)
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget, check_range, reports_errors
from explorer.views.serialise import empty, encode, esm

METHODS = ("activation", "attribution")


class PatchingView(ExplorerWidget):
    """Patch activations from ``clean`` into ``corrupted`` and show where the metric returns.

    Args:
        model: any handle (``resid``/``head`` grids need a transformer).
        clean, corrupted: inputs of the same shape (token ids ``[batch, pos]`` or images).
        metric: ``fn(logits) -> Tensor[batch]`` scoring the corrupted run (e.g. next-token
            loss against the clean tokens, or a logit difference).
        grid: the grid shown first.

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> from explorer.analysis import metrics
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
    >>> clean, corrupted = repeated_tokens(4, 5, 20, seed=0), repeated_tokens(4, 5, 20, seed=1)
    >>> view = PatchingView(m, clean, corrupted, metrics.next_token_loss(clean), grid="head")
    >>> view.values["shape"]
    [2, 4]
    """

    _esm = esm("patching_view.js")

    grid = traitlets.Enum(GRIDS, "resid", help="resid (layer x position), head or neuron").tag(
        sync=True
    )
    method = traitlets.Enum(
        METHODS, "activation", help="exact patching or its gradient estimate"
    ).tag(sync=True)
    grids = traitlets.List(traitlets.Unicode(), help="grids this model supports").tag(sync=True)
    layer = traitlets.Int(0, help="layer of the selected cell").tag(sync=True)
    position = traitlets.Int(0, help="position of the selected resid cell").tag(sync=True)
    head = traitlets.Int(0, help="head of the selected head cell").tag(sync=True)
    neuron = traitlets.Int(0, help="neuron of the selected neuron cell").tag(sync=True)

    values = traitlets.Dict(
        help="payload float32 [layer, x]: mean metric with the cell patched"
    ).tag(sync=True)
    recovery = traitlets.Dict(help="payload float32 [layer, x]: 0 = corrupted, 1 = clean").tag(
        sync=True
    )
    clean_value = traitlets.Float(None, allow_none=True, help="mean metric on the clean input").tag(
        sync=True
    )
    corrupted_value = traitlets.Float(
        None, allow_none=True, help="mean metric on the corrupted input"
    ).tag(sync=True)
    col_labels = traitlets.List(traitlets.Unicode(), help="label of each column").tag(sync=True)
    clean_tokens = traitlets.List(traitlets.Unicode(), help="first clean prompt").tag(sync=True)
    corrupted_tokens = traitlets.List(traitlets.Unicode(), help="first corrupted prompt").tag(
        sync=True
    )

    def __init__(
        self,
        model: ModelHandle,
        clean: torch.Tensor,
        corrupted: torch.Tensor,
        metric: Metric,
        *,
        grid: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(metric):
            raise TypeError(f"metric must be a function logits -> Tensor[batch], got {metric!r}")
        self.model = model
        self.clean = model.check_inputs(clean)
        self.corrupted = model.check_inputs(corrupted)
        if self.clean.shape != self.corrupted.shape:
            raise ValueError(
                f"clean and corrupted inputs must have the same shape, got "
                f"{list(self.clean.shape)} and {list(self.corrupted.shape)}"
            )
        self.metric = metric
        self._results: dict[tuple[str, str], PatchingResult] = {}
        grids = [g for g in GRIDS if _supports(model, g)]
        tokens = model.is_transformer
        super().__init__(
            grids=grids,
            grid=grid or grids[0],
            values=empty("float32"),
            recovery=empty("float32"),
            clean_tokens=model.to_str_tokens(self.clean[0]) if tokens else [],
            corrupted_tokens=model.to_str_tokens(self.corrupted[0]) if tokens else [],
            **kwargs,
        )
        self._show()

    @traitlets.validate("grid")
    def _valid_grid(self, proposal: dict[str, Any]) -> str:
        if not _supports(self.model, proposal["value"]):
            raise traitlets.TraitError(
                f"{self.model.name} has no {proposal['value']!r} grid: choose one of "
                f"{', '.join(g for g in GRIDS if _supports(self.model, g))}"
            )
        return proposal["value"]

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    def result(self, grid: str | None = None, method: str | None = None) -> PatchingResult:
        """The (cached) patching result of a grid and method."""
        key = (grid or self.grid, method or self.method)
        if key not in self._results:
            run = activation_patching if key[1] == "activation" else attribution_patching
            self._results[key] = run(self.model, self.clean, self.corrupted, self.metric, key[0])
        return self._results[key]

    @traitlets.observe("grid", "method")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        result = self.result()
        n_cols = result.values.shape[1]
        if self.grid == "resid":
            labels = [f"{i} {t}" for i, t in enumerate(self.clean_tokens)][:n_cols]
        elif self.grid == "head":
            labels = [f"H{i}" for i in range(n_cols)]
        else:
            labels = [f"N{i}" for i in range(n_cols)]
        span = result.clean_value - result.corrupted_value
        recovery = (
            result.recovery if abs(span) > 1e-12 else torch.full_like(result.values, float("nan"))
        )
        with self.hold_sync():
            self.values = encode(result.values, "float32")
            self.recovery = encode(recovery, "float32")
            self.clean_value = result.clean_value
            self.corrupted_value = result.corrupted_value
            self.col_labels = labels

    def select(self, layer: int, index: int) -> None:
        """Select the cell (``layer``, ``index``) of the current grid."""
        self.layer = layer
        setattr(self, {"resid": "position", "head": "head", "neuron": "neuron"}[self.grid], index)


def _supports(model: ModelHandle, grid: str) -> bool:
    if grid == "neuron":
        return model.has_mlp
    return model.is_transformer
