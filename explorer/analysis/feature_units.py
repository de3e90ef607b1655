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
from explorer._display import compact_repr
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
    found = cache.pop(sae.hook)
    width = found.shape[-2] * found.shape[-1] if sae.reshapes_heads else found.shape[-1]
    if width != sae.d_in:
        raise ValueError(
            f"{sae.name} reads {sae.d_in} values per token at {sae.hook!r}, and {model.name} "
            f"has {width} there: use an SAE trained at that hook of a model of this width"
        )
    acts = sae.encode(found).float()
    if not torch.isfinite(acts).all():
        raise ValueError(f"feature activations of {sae.name} contain NaN or infinite values")
    return acts if acts.ndim == 3 else acts[:, None, :]


@dataclass(frozen=True)
class FeatureTable:
    """Every feature's activation at every token, kept sparse (an SAE's features are mostly
    0): ``column(i)`` is feature ``i`` at each of the ``n_tokens`` tokens (example-major),
    in time proportional to the tokens, not to the features."""

    __repr__ = compact_repr

    n_tokens: int
    rows: torch.Tensor  # token of each non-zero, grouped by feature
    values: torch.Tensor  # its activation
    offsets: torch.Tensor  # [d_sae + 1]: feature i's entries are offsets[i]:offsets[i+1]

    def column(self, feature: int) -> Float[torch.Tensor, " token"]:
        out = torch.zeros(self.n_tokens)
        lo, hi = int(self.offsets[feature]), int(self.offsets[feature + 1])
        out[self.rows[lo:hi]] = self.values[lo:hi]
        return out

    def windows(
        self,
        feature: int,
        *,
        n_pos: int,
        examples: torch.Tensor,
        positions: torch.Tensor,
        context: int = 12,
        after: int = 3,
    ) -> tuple[tuple[int, ...], Float[torch.Tensor, "k width"]]:
        """``(starts, acts)``: the feature on a window around each ``(example, position)``,
        as ``neurons.example_windows`` lays them out, read from the table (no pass)."""
        acts = self.column(feature).reshape(-1, n_pos)
        width = min(n_pos, context + 1 + after)
        starts = tuple(min(max(0, int(p) - context), n_pos - width) for p in positions)
        rows = [acts[int(e), s : s + width] for e, s in zip(examples, starts)]
        return starts, torch.stack(rows) if rows else torch.zeros(0, width)


@torch.no_grad()
def feature_table(
    model: ModelHandle, inputs: torch.Tensor, *, sae: SparseAutoencoder, batch_size: int = 256
) -> FeatureTable:
    """Every feature's activation on ``inputs``, streamed and kept sparse.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
    >>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
    >>> t = feature_table(m, torch.tensor([[1, 2, 3]]), sae=sae)
    >>> t.n_tokens, int((t.column(0) != 0).sum()) <= 3
    (3, True)
    """
    rows, cols, values, seen = [], [], [], 0
    for batch in iter_batches(inputs, batch_size):
        acts = encode_batch(model, batch, sae).reshape(-1, sae.d_sae)
        r, c = acts.nonzero(as_tuple=True)
        rows.append(r + seen)
        cols.append(c)
        values.append(acts[r, c])
        seen += acts.shape[0]
    row, col, value = torch.cat(rows), torch.cat(cols), torch.cat(values)
    order = col.argsort(stable=True)
    counts = torch.bincount(col, minlength=sae.d_sae)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return FeatureTable(seen, row[order], value[order], offsets)
