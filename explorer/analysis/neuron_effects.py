"""What one neuron reads from, writes to and changes (what NeuronView shows beside its examples).

- ``output_effect``: for a transformer neuron, its direct effect on the logits through the
  final norm (``analysis.neuron_logit_weights``: ``W_out[neuron]`` centred and scaled by
  the norm's weight, then ``@ W_U``); for a plain MLP/CNN, its outgoing weights to the
  next layer (the classes, after the last hidden layer).
- ``input_image``: for a neuron of a vision model's first layer, its input weights shaped
  like the image (the "weight image").
- ``zero_ablation_effect``: for a vision neuron in any layer, its total effect on the class
  outputs: the mean drop of each output when the neuron is set to zero (one run).
- ``OutputEffect.strongest(n)``: the order a view lists the effects in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import MAX_ROWS, Shown, pandas
from explorer._display import strongest as top_entries
from explorer.analysis.neuron_logits import neuron_logit_weights
from explorer.analysis.units import Neuron, neuron_index
from explorer.models.handle import ModelHandle

__all__ = [
    "OutputEffect",
    "zero_ablation_effect",
]


@dataclass(frozen=True, repr=False)
class OutputEffect(Shown):
    """The effect of one neuron on the next thing it feeds, with a label per target."""

    values: torch.Tensor
    labels: tuple[str, ...]
    title: str

    def strongest(self, n: int) -> torch.Tensor:
        """Indices of the effects worth listing: all of them, largest first, when there
        are at most ``2 n`` (classes); else the ``n`` most positive, then the ``n`` most
        negative (most negative last).

        >>> e = OutputEffect(torch.tensor([0.5, -2.0, 3.0, 0.0, -1.0]), tuple("abcde"), "t")
        >>> e.strongest(3).tolist(), e.strongest(1).tolist()
        ([2, 0, 3, 4, 1], [2, 1])
        """
        if 2 * n >= self.values.shape[0]:
            return self.values.argsort(descending=True)
        top = self.values.topk(n).indices
        bottom = self.values.topk(n, largest=False).indices.flip(0)
        return torch.cat([top, bottom])

    def to_dataframe(self) -> Any:
        """One row per ``target`` (its label): the ``effect``."""
        return pandas().DataFrame(
            {"target": list(self.labels), "effect": self.values.detach().double().numpy()}
        )

    def _summary(self) -> str:
        return f"{self.title}: {len(self.labels)} targets"

    def _top(self) -> list[str]:
        return [f"{self.labels[i]} {float(self.values[i]):+.3g}" for i in top_entries(self.values)]

    def _table(self) -> tuple:
        rows = [
            (self.labels[i], float(self.values[i])) for i in self.strongest(MAX_ROWS // 2).tolist()
        ]
        return self.title, ("target", "effect"), rows, f"{len(rows)} of {len(self.labels)} targets"


@torch.no_grad()
def output_effect(model: ModelHandle, *, unit: Neuron | str) -> OutputEffect:
    """What neuron ``layer.neuron`` writes to (see the module docstring)."""
    layer, neuron = neuron_index(model, unit=unit)
    if model.is_transformer:
        weights = neuron_logit_weights(model, units=[Neuron(layer, neuron)])
        title = "direct effect on the logits (W_out through the final norm · W_U)"
        return OutputEffect(weights.values[0], weights.token_text, title)
    values = model.unit_weights(layer, neuron, "outgoing")
    if layer == model.n_layers - 1:
        labels = tuple(f"class {i}" for i in range(values.shape[0]))
        title = "weights to the output classes"
    else:
        labels = tuple(f"neuron {layer + 1}.{i}" for i in range(values.shape[0]))
        title = f"weights to layer {layer + 1}"
    return OutputEffect(values.detach().float(), labels, title)


@torch.no_grad()
def input_image(model: ModelHandle, *, unit: Neuron | str) -> torch.Tensor | None:
    """The input weights of a first-layer vision neuron as ``[H, W]`` (channels summed).

    None for transformers and for deeper layers (their inputs are not pixels).
    """
    layer, neuron = neuron_index(model, unit=unit)
    if model.is_transformer or layer != 0 or model.image_shape is None:
        return None
    weight = model.unit_weights(0, neuron, "incoming")
    if weight.ndim == 3:  # a conv channel's kernel [c_in, kh, kw]
        return weight.sum(0).float()  # [kh, kw]
    return weight.reshape(model.image_shape).sum(0).float()


@torch.no_grad()
def zero_ablation_effect(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    unit: Neuron | str,
    clean_logits: torch.Tensor | None = None,
) -> OutputEffect:
    """Mean of ``clean - ablated`` outputs over ``inputs`` with neuron ``layer.neuron`` zeroed.

    ``clean`` is ``model(inputs)``; pass it to save that pass when scanning many neurons
    (``class_outputs`` computes it). Positive: the neuron raises that output. A vision
    model's neuron (or conv channel) is index 1 of its activation.
    """
    layer, neuron = neuron_index(model, unit=unit)
    if model.is_transformer:
        raise ValueError("zero_ablation_effect is for vision models; transformers use W_out·W_U")

    def zero(act: torch.Tensor, hook: object) -> torch.Tensor:
        act = act.clone()
        act[:, neuron] = 0.0
        return act

    if clean_logits is None:
        clean_logits = class_outputs(model, inputs)
    ablated = model.run_with_hooks(inputs, [(model.hook_name("post", layer), zero)])
    values = (clean_logits - ablated).float().mean(0)
    labels = tuple(f"class {i}" for i in range(values.shape[0]))
    title = f"effect on the class outputs when zeroed (mean drop over {len(inputs):,} inputs)"
    return OutputEffect(values, labels, title)


@torch.no_grad()
def class_outputs(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """``model(inputs)`` without gradients: the clean outputs ``zero_ablation_effect`` compares to."""
    return model(inputs)
