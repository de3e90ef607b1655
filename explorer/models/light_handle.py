"""``LightHandle``: the handle protocol's backend for explorer's light transformer.

``light.LightTransformer`` computes what transformer-lens would for the toy configs it
covers, with the same hook names and weight attributes, without importing it. Its passes
start mid-model (``start_at_layer``) as a ``HookedTransformer``'s do.

>>> from explorer.models import TransformerConfig, builders
>>> cfg = TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
>>> m = builders.transformer(cfg, light=True)
>>> type(m).__name__, m.runs_from_layer
('LightHandle', True)
"""

from __future__ import annotations

from explorer.models import light
from explorer.models.handle import ModelHandle

__all__ = ["LightHandle"]


class LightHandle(ModelHandle, accepts=light.is_light):
    """A ``light.LightTransformer`` with the facts explorer needs about it."""

    @property
    def runs_from_layer(self) -> bool:
        return True
