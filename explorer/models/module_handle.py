"""``ModuleHandle``: the handle protocol's backend for any plain PyTorch module.

The module is given hook points by ``hooked_module.wrap_module`` (its hidden layers found
from its traced graph: ``blocks.{i}.mlp.hook_pre`` / ``hook_post`` around each). What
analysis asks of a unit's weights is answered here, from the weighted module that
computes the layer (``incoming``) and the next one, which reads it (``outgoing``):
``unit_weights``, ``unit_weight_masks``, ``set_unit_weights``.

>>> from explorer.models import zoo
>>> m = zoo.mnist_mlp(hidden=(16, 8))
>>> type(m).__name__, m.layer_widths, tuple(m.unit_weights(1, 0, "outgoing").shape)
('ModuleHandle', (16, 8), (10,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from explorer._checks import check_choice
from explorer.models._handle_weights import LayerModules
from explorer.models.handle import ModelHandle
from explorer.models.hooked_module import wrap_module

__all__ = ["DIRECTIONS", "ModuleHandle"]

DIRECTIONS = ("incoming", "outgoing", "both")


def _is_wrapped_module(model: Any) -> bool:
    """Whether ``model`` is a plain module given hook points by ``wrap_module``."""
    return hasattr(model, "found_blocks") and hasattr(model, "unwrapped_copy")


class ModuleHandle(ModelHandle, accepts=_is_wrapped_module):
    """A plain ``nn.Module`` (MLP, CNN, anything ``hooked_module`` finds layers in)."""

    @property
    def n_layers(self) -> int:
        if self.is_transformer:
            return super().n_layers
        return len(self.model.blocks)

    @property
    def layer_widths(self) -> tuple[int, ...]:
        return tuple(b.width for b in self.model.found_blocks)

    @property
    def n_outputs(self) -> int | None:
        found = super().n_outputs
        if found is not None:
            return found
        out = getattr(self.model, "output_layer", None)  # its last Linear
        if out is not None:
            layer = self.model.module.get_submodule(out)
            if isinstance(layer, nn.Linear):
                return int(layer.out_features)
        return None

    def copy(self) -> ModuleHandle:
        """An independent copy (its own weights and hooks)."""
        return self._same(wrap_module(self.model.unwrapped_copy()).eval())  # type: ignore[return-value]

    # -------------------------------------------------------------- unit weights
    def layer_modules(self, layer: int) -> LayerModules:
        """The weighted modules that compute hidden layer ``layer`` and that read it (see
        ``LayerModules``): for code of this layer; analysis asks ``unit_weights``.

        >>> from explorer.models import zoo
        >>> io = zoo.mnist_mlp(hidden=(16, 8)).layer_modules(1)
        >>> io.incoming, io.outgoing, io.width, io.last
        (Linear(in_features=16, out_features=8, bias=True), Linear(in_features=8, out_features=10, bias=True), 8, True)
        """
        layer = self.check_layer(layer)
        named = dict(self.model.module.named_modules())
        blocks = self.model.found_blocks
        last = layer == len(blocks) - 1
        after = self.model.output_layer if last else blocks[layer + 1].pre
        return LayerModules(
            layer=layer,
            incoming=named[blocks[layer].pre],
            outgoing=named[after] if after is not None else None,
            width=int(blocks[layer].width),
            conv=bool(blocks[layer].conv),
            last=last,
        )

    def unit_weights(self, layer: int, neuron: int, direction: str) -> torch.Tensor:
        """One unit's weights, detached. ``"incoming"``: the weights that compute it,
        ``[fan_in]`` (a Linear) or ``[c_in, kh, kw]`` (a conv channel). ``"outgoing"``: how
        strongly each unit of the next weighted layer (the output classes after the last
        hidden layer) reads it, ``[n_next]`` (a next conv's kernel, or the positions of a
        channel flattened into a Linear, summed).
        """
        check_choice("direction", direction, DIRECTIONS[:2])
        layer, neuron = self.check_neuron(layer, neuron)
        io = self.layer_modules(layer)
        if direction == "incoming":
            return io.incoming.weight[neuron].detach()  # type: ignore[index]
        if io.outgoing is None:
            raise ValueError(
                f"{self.name}: no layer found after block {layer} to read weights from"
            )
        weight = io.outgoing.weight  # type: ignore[union-attr]
        if weight.ndim == 4:  # next conv: [out, in, kh, kw]
            values = weight[:, neuron].sum((-1, -2))
        elif io.conv:  # a Linear after flattening channels [c, h, w]
            values = weight.reshape(weight.shape[0], io.width, -1)[:, neuron].sum(-1)
        else:
            values = weight[:, neuron]
        return values.detach()

    def unit_weight_masks(
        self, layer: int, neurons: Sequence[int], weights: str
    ) -> dict[nn.Parameter, torch.Tensor]:
        """For each parameter holding weights of ``neurons`` of ``layer``, a mask of its
        shape (1 on their own entries): their incoming weights and bias (``"incoming"``),
        the next layer's weights that read them (``"outgoing"``), or both."""
        check_choice("weights", weights, DIRECTIONS)
        io = self.layer_modules(layer)
        units = torch.tensor(sorted(set(neurons)), dtype=torch.long)
        incoming, outgoing = io.incoming, io.outgoing
        masks: dict[nn.Parameter, torch.Tensor] = {}
        w = incoming.weight  # type: ignore[union-attr]
        if weights in ("incoming", "both"):
            m = torch.zeros_like(w)
            m[units] = 1
            masks[w] = m  # type: ignore[index]
            if getattr(incoming, "bias", None) is not None:
                b = torch.zeros_like(incoming.bias)  # type: ignore[union-attr, arg-type]
                b[units] = 1
                masks[incoming.bias] = b  # type: ignore[index]
        if outgoing is not None and weights in ("outgoing", "both"):
            w2 = outgoing.weight  # type: ignore[union-attr]
            m2 = torch.zeros_like(w2)
            n_units = w.shape[0]
            if isinstance(outgoing, nn.Linear) and w2.shape[1] != n_units:
                # a conv layer flattened into a Linear: each channel owns a block of columns
                per = w2.shape[1] // n_units
                m2.view(w2.shape[0], n_units, per)[:, units] = 1
            else:
                m2[:, units] = 1
            masks[w2] = m2  # type: ignore[index]
        return masks

    def set_unit_weights(
        self,
        layer: int,
        neuron: int,
        *,
        incoming: torch.Tensor | None = None,
        bias: float | None = None,
        outgoing: torch.Tensor | None = None,
    ) -> None:
        """Write one unit's weights in place: ``incoming`` (as ``unit_weights`` reads it),
        its ``bias``, and ``outgoing`` (one weight per unit of the next layer; Linear
        readers only): how planted models are built by hand.

        >>> from explorer.models import zoo
        >>> m = zoo.mnist_mlp(hidden=(4,))
        >>> m.set_unit_weights(0, 1, outgoing=torch.arange(10.0))
        >>> m.unit_weights(0, 1, "outgoing")[:3].tolist()
        [0.0, 1.0, 2.0]
        """
        layer, neuron = self.check_neuron(layer, neuron)
        io = self.layer_modules(layer)
        with torch.no_grad():
            if incoming is not None:
                io.incoming.weight[neuron] = incoming  # type: ignore[index]
            if bias is not None:
                if getattr(io.incoming, "bias", None) is None:
                    raise ValueError(f"layer {layer} of {self.name} has no bias")
                io.incoming.bias[neuron] = bias  # type: ignore[index]
            if outgoing is not None:
                reader = io.outgoing
                if not isinstance(reader, nn.Linear) or reader.in_features != io.width:
                    raise ValueError(
                        f"the weights that read layer {layer} of {self.name} are not one "
                        "nn.Linear over its units: outgoing weights cannot be set per unit"
                    )
                reader.weight[:, neuron] = outgoing
