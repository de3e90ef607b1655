"""SAE features as units: ``Feature(sae, 12)`` is feature 12 of a ``features.SparseAutoencoder``.

A feature is a direction an SAE (or transcoder) found: its activation at a token is
``sae.encode(x)[..., i]`` of the activation ``x`` at the hook the SAE reads, and what it
writes is ``activation * sae.decoder[i]`` at the hook it writes (``sae.hook_out``). Like a
``Neuron`` it takes an optional ``position``. The analyses that take neurons take features
too (``top_k_examples(sae=...)``, ``activation_histogram``, ``example_windows``,
``ablate``, ``ablation_sweep``, ``explain_units``); the SAE is spliced in with its error
term kept (``features.splice_hooks``), so an edit changes only the edited features.

>>> from explorer.features import SparseAutoencoder
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> f = Feature(sae, 3)
>>> str(f), f.layer, len(all_features(sae))
('feature 3 of topk@blocks.0.hook_resid_post', 0, 16)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float

from explorer._checks import check_positive
from explorer.analysis.cache import iter_batches
from explorer.features import SparseAutoencoder, check_hooks_fit

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = ["Feature", "all_features"]


@dataclass(frozen=True)
class Feature:
    """Feature ``feature`` of ``sae`` (at token ``position`` only, when given)."""

    sae: SparseAutoencoder
    feature: int
    position: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sae, SparseAutoencoder):
            raise TypeError(
                f"a Feature names a feature of a features.SparseAutoencoder, got "
                f"{type(self.sae).__name__} (load one with features.load_sae)"
            )
        object.__setattr__(self, "feature", self.sae.check_feature(self.feature))

    @property
    def layer(self) -> int:
        """The block of the hook the SAE reads (0 for a hook outside the blocks)."""
        parts = self.sae.hook.split(".")
        return int(parts[1]) if parts[0] == "blocks" and parts[1].isdigit() else 0

    def hook(self, model: ModelHandle) -> str:
        check_hooks_fit(model, self.sae)
        return self.sae.hook

    def index(self) -> tuple:
        """Index into the SAE's feature activations ``[batch, pos, d_sae]``."""
        pos = slice(None) if self.position is None else self.position
        return (slice(None), pos, self.feature)

    def activations(
        self, model: ModelHandle, inputs: torch.Tensor, *, batch_size: int = 256
    ) -> Float[torch.Tensor, "batch pos"]:
        """This feature's activation at every token of ``inputs``."""
        return feature_activations(model, inputs, sae=self.sae, batch_size=batch_size)[
            ..., self.feature
        ]

    def __str__(self) -> str:
        at = f"@{self.position}" if self.position is not None else ""
        return f"feature {self.feature} of {self.sae.name}{at}"


def sae_of(units: Iterable[Feature]) -> SparseAutoencoder:
    """The one SAE all ``units`` belong to (a ValueError when they mix SAEs)."""
    saes = {id(u.sae): u.sae for u in units}
    if len(saes) != 1:
        names = sorted(s.name for s in saes.values())
        raise ValueError(f"features of one SAE at a time, got features of {names or 'none'}")
    return next(iter(saes.values()))


def all_features(sae: SparseAutoencoder) -> list[Feature]:
    """Every feature of ``sae``, in index order."""
    return [Feature(sae, i) for i in range(sae.d_sae)]


def _stop(model: ModelHandle, hook: str) -> int | None:
    parts = hook.split(".")
    if model.stops_early and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1]) + 1
    return None


@torch.no_grad()
def feature_activations(
    model: ModelHandle,
    inputs: torch.Tensor | Iterable[torch.Tensor],
    *,
    sae: SparseAutoencoder,
    batch_size: int = 256,
) -> Float[torch.Tensor, "batch pos feature"]:
    """Every feature's activation at every token: the model runs up to the SAE's hook
    (no further) and the SAE encodes what it finds there.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
    >>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
    >>> tuple(feature_activations(m, torch.tensor([[1, 2, 3]]), sae=sae).shape)
    (1, 3, 16)
    """
    check_positive("batch_size", batch_size)
    return torch.cat([encode_batch(model, b, sae) for b in iter_batches(inputs, batch_size)])


def encode_batch(
    model: ModelHandle, batch: torch.Tensor, sae: SparseAutoencoder
) -> Float[torch.Tensor, "batch pos feature"]:
    """The SAE's features on one batch, read at its hook (a checked hook: a sentence when
    the model lacks it)."""
    check_hooks_fit(model, sae)
    _, cache = model.cache_pass(batch, names=[sae.hook], stop_at_layer=_stop(model, sae.hook))
    acts = sae.encode(cache.pop(sae.hook)).float()
    if not torch.isfinite(acts).all():
        raise ValueError(f"feature activations of {sae.name} contain NaN or infinite values")
    return acts if acts.ndim == 3 else acts[:, None, :]
