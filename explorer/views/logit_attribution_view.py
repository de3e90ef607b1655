"""``LogitAttributionView``: direct logit attribution as a clickable heatmap or bar chart.

Heads are shown as a ``layer x head`` heatmap, neurons as ``layer x neuron``, layers (the
embeddings and each attention and MLP output) as bars. Values are the batch mean of
``analysis.direct_logit_attribution``; results are cached per (granularity, target, against).
A click in the browser sets ``selected`` (``"L1H2"``, ``"L0N7"``, ``"0_attn_out"``), and
the kernel sets the linkable ``layer``/``head``/``neuron`` traits from it; changing
``layer``/``head`` (e.g. linked to an ``AttentionView``) moves the selection. ``target``
and ``against`` are editable token strings (or ids) recomputed in the kernel.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.logit_attribution import LogitAttribution, direct_logit_attribution
from explorer.analysis.units import Head, Neuron
from explorer.features import SparseAutoencoder
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget
from explorer.views._renamed import renamed_trait
from explorer.views._reporting import reports_errors
from explorer.views.serialize import Tensor, esm

UNITS = ("heads", "layers", "neurons", "features")


def read_token(model: ModelHandle, text: str) -> int | str:
    """A token typed in a view: an id when it is digits the vocabulary does not hold as text."""
    stripped = text.strip()
    if stripped.isdigit() and (model.vocab is None or text not in model.vocab):
        return int(stripped)
    return text


PER_PROMPT = "(one per prompt)"


def token_choice(value: Any) -> tuple[str, torch.Tensor | None]:
    """A constructor's ``target``/``against`` as ``(text for the page, ids or None)``: an id
    or a token string is text the page can edit; one id per prompt is kept as ids."""
    if value is None:
        return "", None
    if isinstance(value, (int, str)):
        return str(value), None
    return PER_PROMPT, torch.as_tensor(value)


def direction_args(
    model: ModelHandle, target: str, against: str, per_prompt: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """``target=`` and ``against=`` for the analysis from the texts shown in a view
    (``per_prompt`` holds the ids given one per prompt)."""

    def one(text: str, name: str) -> Any:
        if text == PER_PROMPT and name in per_prompt:
            return per_prompt[name]
        return read_token(model, text) if text or name == "target" else None

    return {"target": one(target, "target"), "against": one(against, "against")}


class LogitAttributionView(ExplorerWidget):
    """Which units write the logit of ``target`` (minus ``against``) directly.

    Args:
        model: a transformer handle.
        inputs: token ids ``[batch, pos]`` (or ``[pos]``).
        target, against: token strings or ids (``against`` optional), or one id per prompt
            (shown as "(one per prompt)"; typing a token in the page replaces them).
        position: the position explained (default: the last).
        granularity: ``"heads"``, ``"layers"`` or ``"neurons"`` first (``units=`` before
            explorer 0.4); ``"features"`` with ``sae=``.
        sae: an SAE whose features get a granularity: one bar each, labelled ``"F12"``;
            ``traitlets.link((view, "selected"), (feature_view, "selected"))`` opens the
            clicked feature in a ``FeatureView``.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> view = LogitAttributionView(m, torch.tensor([[0, 3, 5, 3]]), target="t5")
    >>> view.values["shape"], view.row_labels
    ([2, 4], ['L0', 'L1'])
    >>> view.selected = "L1H2"  # what a click sends
    >>> view.layer, view.head
    (1, 2)
    """

    _esm = esm("logit_attribution_view.js")

    granularity = traitlets.Enum(
        UNITS, "heads", help="heads, layers, neurons or features (of the view's sae)"
    ).tag(sync=True)
    granularities = traitlets.List(
        traitlets.Unicode(), help="the granularities this model has"
    ).tag(sync=True)
    units = renamed_trait("units", "granularity")
    available_units = renamed_trait("available_units", "granularities")
    target = traitlets.Unicode("", help="token whose logit is explained (text or id)").tag(
        sync=True
    )
    against = traitlets.Unicode("", help="token subtracted (logit difference); empty: none").tag(
        sync=True
    )
    selected = traitlets.Unicode("", help="label of the selected unit, e.g. L1H2").tag(sync=True)
    layer = traitlets.Int(0, help="layer of the selected unit").tag(sync=True)
    head = traitlets.Int(0, help="head of the selected unit").tag(sync=True)
    neuron = traitlets.Int(0, help="neuron of the selected unit").tag(sync=True)

    values = Tensor("float32", help="payload [rows, cols] (heads, neurons) or [units]").tag(
        sync=True
    )
    labels = traitlets.List(traitlets.Unicode(), help="label of each unit, row-major").tag(
        sync=True
    )
    row_labels = traitlets.List(traitlets.Unicode(), help="heatmap rows").tag(sync=True)
    direction = traitlets.Unicode("", help="the logit (difference) explained").tag(sync=True)
    logit = traitlets.Float(None, allow_none=True, help="the model's own mean logit (diff)").tag(
        sync=True
    )
    remainder = traitlets.Float(
        None, allow_none=True, help="mean logit not written by the units shown"
    ).tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode(), help="the first prompt").tag(sync=True)
    position = traitlets.Int(-1, help="position explained").tag(sync=True)

    @renamed_arguments(tokens="inputs", units="granularity")
    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        target: int | str | torch.Tensor | list[int],
        against: int | str | torch.Tensor | list[int] | None = None,
        position: int = -1,
        granularity: str = "heads",
        sae: SparseAutoencoder | None = None,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"{model.name} takes images: direct logit attribution needs tokens")
        self.model = model
        self.inputs = model.check_inputs(inputs)
        self._sae = sae  # with an SAE, "features": each feature's DLA, labels "F12"
        available = [
            u
            for u in UNITS
            if (u != "neurons" or model.has_mlp) and (u != "features" or sae is not None)
        ]
        (target_text, target_ids), (against_text, against_ids) = map(
            token_choice, (target, against)
        )
        self._per_prompt = {
            k: v for k, v in (("target", target_ids), ("against", against_ids)) if v is not None
        }
        super().__init__(
            granularities=available,
            granularity=granularity,
            target=target_text,
            against=against_text,
            position=position,
            values=None,
            tokens=model.to_str_tokens(self.inputs[0]),
            **kwargs,
        )
        self._show()

    def result(self) -> LogitAttribution:
        """The (cached) attribution for the current granularity, target and against."""
        key = (self.granularity, self.target, self.against, self.position)
        return self._results.get(
            key,
            lambda: direct_logit_attribution(
                self.model,
                self.inputs,
                **direction_args(self.model, self.target, self.against, self._per_prompt),
                granularity=self.granularity.removesuffix("s"),  # the trait keeps plural values
                position=self.position,
                sae=self._sae if self.granularity == "features" else None,
            ),
        )

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._results.clear()
        self._show()

    @traitlets.observe("granularity", "target", "against", "position")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        result = self.result()
        if self.granularity in ("layers", "features"):
            values, rows = result.mean(), []
        else:
            values = result.grid()
            rows = [f"L{l}" for l in range(values.shape[0])]
        with self.hold_sync():
            self.values = values
            self.labels = list(result.labels)
            self.row_labels = rows
            self.direction = result.direction
            self.logit = result.mean_logit
            self.remainder = result.mean_remainder
            self._follow()

    @traitlets.observe("selected")
    @reports_errors
    def _selected(self, change: dict[str, Any]) -> None:
        label = self.selected
        if not label:
            return
        if label not in self.labels:
            raise ValueError(f"no unit {label!r} in this view: e.g. {self.labels[:4]}")
        unit = self.result().unit(self.labels.index(label))
        with self.hold_trait_notifications():
            if isinstance(unit, Head):
                self.layer, self.head = unit.layer, unit.head
            elif isinstance(unit, Neuron):
                self.layer, self.neuron = unit.layer, unit.neuron
            elif label[0].isdigit():  # "1_attn_out"
                self.layer = int(label.split("_")[0])

    @traitlets.observe("layer", "head", "neuron")
    def _follow(self, change: dict[str, Any] | None = None) -> None:
        """Keep ``selected`` on the unit named by ``layer``/``head``/``neuron``."""
        if self.granularity == "heads":
            label = f"L{self.layer}H{self.head}"
        elif self.granularity == "neurons":
            label = f"L{self.layer}N{self.neuron}"
        else:
            return
        if label in self.labels and label != self.selected:
            self.selected = label
