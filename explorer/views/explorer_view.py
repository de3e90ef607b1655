"""``Explorer`` and ``show``: every view of a model in one tabbed widget, selections linked.

The views a model supports are built on the same data and their selection traits are
joined with ``traitlets.link``: selecting head 1.2 in the sweep heatmap or the patching
grid selects it in the attention view, and a neuron picked anywhere is the neuron shown.
"""

from __future__ import annotations

from typing import Any

import ipywidgets
import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.metrics import Metric
from explorer.models.handle import ModelHandle
from explorer.views._inputs import as_metrics, check_model, default_metrics, split_data
from explorer.views.attention_view import AttentionView
from explorer.views.intervention_panel import InterventionPanel
from explorer.views.neuron_view import NeuronView
from explorer.views.patching_view import PatchingView


class Explorer(ipywidgets.Tab):
    """Tabs of the views ``model`` supports, with linked ``layer``/``head``/``neuron``.

    Attributes ``attention``, ``neurons``, ``intervention`` and ``patching`` hold the views
    (None where the model has no such thing: an MLP has no heads, an attention-only
    transformer no neurons).

    Args:
        model: any handle.
        inputs: inputs and optionally labels (see ``NeuronView``), or text: a prompt or a
            list of prompts of equal token length, tokenized by the model's tokenizer.
        metric: for the intervention panel and patching: a function or ``{name: fn}``.
        corrupted: inputs (or text) patched into; default: ``inputs`` with its rows rotated
            by one (each example paired with another example).
        n_prompts: rows of token data the attention view and the patching view use.
    """

    @renamed_arguments(data="inputs")
    def __init__(
        self,
        model: ModelHandle,
        inputs: Any,
        *,
        metric: Metric | dict[str, Metric] | None = None,
        corrupted: Any = None,
        n_prompts: int = 8,
        max_examples: int = 64,
    ) -> None:
        check_model(model, "show")
        inputs, labels = split_data(inputs)
        inputs = model.check_inputs(inputs)
        metrics = as_metrics(metric, fallback={}) or default_metrics(
            model, inputs[:max_examples], labels[:max_examples] if labels is not None else None
        )
        self.attention = AttentionView(model, inputs[:n_prompts]) if model.is_transformer else None
        self.neurons = NeuronView(model, inputs) if model.has_mlp else None
        self.intervention = InterventionPanel(
            model,
            (inputs, labels) if labels is not None else inputs,
            metric=metrics,
            max_examples=max_examples,
        )
        self.patching = self._patching_view(model, inputs, labels, metric, corrupted, n_prompts)
        views = {
            "Attention": self.attention,
            "Neurons": self.neurons,
            "Intervene": self.intervention,
            "Patching": self.patching,
        }
        shown = {title: view for title, view in views.items() if view is not None}
        super().__init__(children=list(shown.values()), titles=list(shown))
        self.links = self._link_selections()

    @staticmethod
    def _patching_view(
        model: ModelHandle,
        inputs: torch.Tensor,
        labels: torch.Tensor | None,
        metric: Metric | dict[str, Metric] | None,
        corrupted: Any,
        n_prompts: int,
    ) -> PatchingView | None:
        if len(inputs) < 2 and corrupted is None:
            return None
        clean = inputs[:n_prompts]
        corrupted = clean.roll(1, dims=0) if corrupted is None else model.check_inputs(corrupted)
        # The metric scores the corrupted run against the clean answers: rebuild the defaults
        # for the clean rows (a user's metric must already be written that way).
        fallback = default_metrics(model, clean, labels[:n_prompts] if labels is not None else None)
        patch_metric = next(iter(as_metrics(metric, fallback=fallback).values()))
        return PatchingView(model, clean, corrupted=corrupted[: len(clean)], metric=patch_metric)

    def _link_selections(self) -> list[traitlets.link]:
        views = [v for v in (self.attention, self.neurons, self.intervention, self.patching) if v]
        links = []
        for name in ("layer", "head", "neuron"):
            having = [v for v in views if v.has_trait(name)]
            if name == "head" and self.attention is None:
                continue
            links += [traitlets.link((having[0], name), (v, name)) for v in having[1:]]
        return links


@renamed_arguments(data="inputs")
def show(
    model: ModelHandle,
    inputs: Any,
    *,
    metric: Metric | dict[str, Metric] | None = None,
    corrupted: Any = None,
    **kwargs: Any,
) -> Explorer:
    """Open every view of ``model`` on ``inputs``; leave it last in a cell to display it.

    >>> import torch
    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
    >>> ex = show(m, repeated_tokens(8, 6, 20))
    >>> [ex.get_title(i) for i in range(len(ex.children))]
    ['Attention', 'Intervene', 'Patching']
    >>> ex.intervention.select(1, 2)
    >>> ex.attention.layer, ex.attention.head
    (1, 2)
    """
    return Explorer(model, inputs, metric=metric, corrupted=corrupted, **kwargs)
