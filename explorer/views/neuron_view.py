"""``NeuronView``: one neuron across a dataset: top examples, histogram, effect on outputs.

For text the top examples are token windows coloured by the neuron's activation at each
token; for images they are the top images, plus the neuron's input weights as an image
(first layer). The layer's top-k table is computed once per layer (streamed over the
data) and cached, and so are the layer's activations while they fit in
``activation_budget_mb``: changing ``neuron`` is then a slice, one small forward pass over
the k examples and a histogram of one cached column (no pass over the dataset).
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.neuron_effects import (
    OutputEffect,
    class_outputs,
    input_image,
    output_effect,
    zero_ablation_effect,
)
from explorer.analysis.neurons import (
    Histogram,
    TopKExamples,
    activation_histogram,
    example_windows,
    histogram,
    layer_activations,
    top_k_examples,
)
from explorer.analysis.units import Neuron
from explorer.models.handle import ModelHandle
from explorer.views._base import check_range
from explorer.views._inputs import dataset_inputs
from explorer.views._renamed import renamed_trait
from explorer.views._reporting import reports_errors
from explorer.views.serialize import Tensor, esm, images_for_display
from explorer.views.token_labels import _ShowsTokens


class NeuronView(_ShowsTokens):
    """Browse the neurons (or conv channels) of a model over a dataset.

    Args:
        model: any handle with MLP layers.
        inputs: what the neuron is read on: token ids ``[n, pos]`` or images
            ``[n, C, H, W]`` (an ``ImageData`` uses its test split).
        n: top examples shown (``k=`` before explorer 0.4).
        context: tokens shown before the top token of a text example (3 after it).
        n_effects: outputs listed at each end of the effect ranking.
        ablation_examples: inputs the zero-ablation effect on the classes is averaged over
            (vision models; the first ones of ``inputs``).
        bins: histogram bins.
        activation_budget_mb: largest layer activation table kept for fast histograms;
            bigger layers stream over the data on each neuron change instead.

    >>> import torch
    >>> from explorer.models import zoo
    >>> view = NeuronView(zoo.mnist_mlp(hidden=(16,)), torch.rand(40, 1, 28, 28), n=4)
    >>> view.neuron = 3
    >>> view.top_images["shape"]
    [4, 28, 28]
    """

    _esm = esm("neuron_view.js")
    # token strings the page labels (token_labels): the examples, and the output tokens the
    # direct effect names (class names for a vision model)
    _token_traits = ("example_tokens", "effect_labels")

    layer = traitlets.Int(0, help="layer of the selected neuron").tag(sync=True)
    neuron = traitlets.Int(0, help="index of the selected neuron within its layer").tag(sync=True)
    n = traitlets.Int(8, help="top examples shown").tag(sync=True)
    k = renamed_trait("k", "n")

    input_kind = traitlets.Unicode("tokens", help="'tokens' or 'images'").tag(sync=True)
    widths = traitlets.List(traitlets.Int(), help="neurons per layer").tag(sync=True)
    n_examples = traitlets.Int(0, help="examples in the dataset").tag(sync=True)
    fires = traitlets.Bool(
        True, help="False when the selected neuron never fires (> 0) on the data: a dead unit"
    ).tag(sync=True)
    dead_units = traitlets.List(
        traitlets.Int(), help="neurons of the selected layer that never fire on the data"
    ).tag(sync=True)
    top_values = Tensor("float32", help="payload [k]: top activations, best first").tag(sync=True)
    example_ids = traitlets.List(traitlets.Int(), help="dataset index of each top example").tag(
        sync=True
    )
    example_positions = traitlets.List(
        traitlets.Int(), help="token position of each top value"
    ).tag(sync=True)
    example_tokens = traitlets.List(
        traitlets.List(traitlets.Unicode()), help="token window of each top text example"
    ).tag(sync=True)
    example_starts = traitlets.List(traitlets.Int(), help="first position of each window").tag(
        sync=True
    )
    example_acts = Tensor("float16", help="payload [k, window]: activation per token").tag(
        sync=True
    )
    top_images = Tensor("uint8", help="payload [k, H, W]: top images").tag(sync=True)
    weight_image = Tensor("float16", help="payload [H, W]: input weights (first layer)").tag(
        sync=True
    )
    hist_counts = Tensor("int32", help="payload [bins]: activation histogram").tag(sync=True)
    hist_edges = Tensor("float32", help="payload [bins + 1]: histogram bin edges").tag(sync=True)
    effect_title = traitlets.Unicode("", help="what the effect values are").tag(sync=True)
    effect_labels = traitlets.List(traitlets.Unicode(), help="output named by each effect").tag(
        sync=True
    )
    effect_values = Tensor("float32", help="payload: strongest effects, top then bottom").tag(
        sync=True
    )
    ablation_title = traitlets.Unicode(
        "", help="what ablation_values are (vision models: zero-ablation effect on the classes)"
    ).tag(sync=True)
    ablation_labels = traitlets.List(
        traitlets.Unicode(), help="output named by each ablation value"
    ).tag(sync=True)
    ablation_values = Tensor(
        "float32", help="payload: mean drop of each output when the neuron is zeroed, largest first"
    ).tag(sync=True)

    @renamed_arguments(data="inputs", k="n")
    def __init__(
        self,
        model: ModelHandle,
        inputs: Any,
        *,
        n: int = 8,
        context: int = 12,
        n_effects: int = 8,
        ablation_examples: int = 256,
        bins: int = 40,
        activation_budget_mb: float = 64.0,
        **kwargs: Any,
    ) -> None:
        if not model.has_mlp:
            raise ValueError(f"NeuronView needs MLP neurons; {model.name} is attention-only")
        self.model = model
        self.inputs = dataset_inputs(model, inputs)
        self.context = context
        self.n_effects = n_effects
        self.bins = bins
        # vision models: the class outputs of the inputs the ablation effect is read on
        self._ablation_inputs = self.inputs[:ablation_examples]
        self._clean_outputs: torch.Tensor | None = None
        self._top: dict[int, TopKExamples] = {}
        self._budget = activation_budget_mb * 2**20
        self._acts: dict[int, torch.Tensor | None] = {}  # layer -> [values, unit] (or too big)
        self._shown: tuple[int, int, int] | None = None
        super().__init__(
            input_kind=model.kind,
            widths=list(model.layer_widths),
            n_examples=len(self.inputs),
            n=n,
            **{name: None for name in _PAYLOADS},
            **kwargs,
        )
        self._show_neuron()

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._top.clear()
        self._acts.clear()
        self._clean_outputs = None
        self._shown = None
        self._show_neuron()

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    @traitlets.validate("neuron")
    def _valid_neuron(self, proposal: dict[str, Any]) -> int:
        width = self.model.layer_widths[self.layer]
        return check_range("neuron", proposal["value"], width, f"in layer {self.layer}")

    @traitlets.validate("n")
    def _valid_k(self, proposal: dict[str, Any]) -> int:
        if not 1 <= proposal["value"] <= 64:
            raise traitlets.TraitError(f"n must be between 1 and 64, got {proposal['value']}")
        return proposal["value"]

    # ------------------------------------------------------------------ computing
    def top_examples(self, layer: int) -> TopKExamples:
        """The layer's top-k table (cached; recomputed when ``n`` grows)."""
        cached = self._top.get(layer)
        if cached is None or cached.values.shape[1] < self.n:
            cached = top_k_examples(self.model, self.inputs, layer=layer, n=max(self.n, 8))
            self._top[layer] = cached
        return cached

    def histogram(self, layer: int, neuron: int) -> Histogram:
        """``activation_histogram`` of a neuron, from the cached layer table when there is one."""
        acts = self._layer_activations(layer)
        if acts is None:
            return activation_histogram(
                self.model, self.inputs, unit=Neuron(layer, neuron), bins=self.bins
            )
        name = self.model.hook_name("post", layer)
        return histogram(acts[:, neuron], bins=self.bins, hook=name, unit=neuron)

    def _layer_activations(self, layer: int) -> torch.Tensor | None:
        if layer not in self._acts:
            n_pos = self.inputs.shape[1] if self.model.is_transformer else 1
            size = len(self.inputs) * n_pos * self.model.layer_widths[layer] * 4
            fits = size <= self._budget
            self._acts[layer] = (
                layer_activations(self.model, self.inputs, layer=layer) if fits else None
            )
        return self._acts[layer]

    @traitlets.observe("layer", "neuron", "n")
    @reports_errors
    def _show_neuron(self, change: dict[str, Any] | None = None) -> None:
        if self.neuron >= self.model.layer_widths[self.layer]:
            # a layer change to a narrower layer: keep the view valid (this triggers us again)
            self.neuron = self.model.layer_widths[self.layer] - 1
            return
        key = (self.layer, self.neuron, self.n)
        if key == self._shown:
            return
        top = self.top_examples(self.layer)
        fires = top.fires()
        values = top.values[self.neuron, : self.n]
        ids = top.example[self.neuron, : self.n]
        positions = top.position[self.neuron, : self.n]
        # everything is computed before anything is shown: a cancelled change leaves the
        # view showing one neuron, not half of the next
        if self.model.is_transformer:
            examples = self._text_examples(ids, positions)
        else:
            examples = self._images(ids)
        hist = self.histogram(self.layer, self.neuron)
        effect = output_effect(self.model, unit=Neuron(self.layer, self.neuron))
        ablation = self.ablation_effect(self.layer, self.neuron)
        order = effect.strongest(self.n_effects)
        with self.hold_sync():
            for name, value in examples.items():
                setattr(self, name, value)
            self.fires = bool(fires[self.neuron])
            self.dead_units = list(top.dead_units)
            self.top_values = values
            self.example_ids = [int(i) for i in ids]
            self.example_positions = [int(p) for p in positions]
            self.hist_counts = hist.counts
            self.hist_edges = hist.edges
            self.effect_title = effect.title
            self.effect_labels = [effect.labels[int(i)] for i in order]
            self.effect_values = effect.values[order]
            if ablation is not None:
                ranked = ablation.strongest(len(ablation.labels))  # all, largest first
                self.ablation_title = ablation.title
                self.ablation_labels = [ablation.labels[int(i)] for i in ranked]
                self.ablation_values = ablation.values[ranked]
        self._shown = key

    def ablation_effect(self, layer: int, neuron: int) -> OutputEffect | None:
        """Vision models: mean drop of each class output when the neuron is zeroed."""
        if self.model.is_transformer:
            return None
        if self._clean_outputs is None:
            self._clean_outputs = class_outputs(self.model, self._ablation_inputs)
        return zero_ablation_effect(
            self.model,
            self._ablation_inputs,
            unit=Neuron(layer, neuron),
            clean_logits=self._clean_outputs,
        )

    def _text_examples(self, ids: torch.Tensor, positions: torch.Tensor) -> dict[str, Any]:
        windows = example_windows(
            self.model,
            self.inputs,
            unit=Neuron(self.layer, self.neuron),
            examples=ids,
            positions=positions,
            context=self.context,
        )
        width = windows.acts.shape[1]
        tokens = [
            self.model.to_str_tokens(self.inputs[int(e), s : s + width])
            for e, s in zip(ids, windows.starts)
        ]
        return {
            "example_tokens": tokens,
            "example_starts": list(windows.starts),
            "example_acts": windows.acts,
        }

    def _images(self, ids: torch.Tensor) -> dict[str, Any]:
        images = self.model.check_images(self.inputs[ids])  # [k, C, H, W]
        weights = input_image(self.model, unit=Neuron(self.layer, self.neuron))
        return {
            "top_images": images_for_display(images),
            "weight_image": weights if weights is not None else None,
        }


_PAYLOADS = (
    "top_values",
    "example_acts",
    "top_images",
    "weight_image",
    "hist_counts",
    "hist_edges",
    "effect_values",
    "ablation_values",
)
