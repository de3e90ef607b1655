"""Head scores: how much each attention head behaves like a known head type on a batch.

Each score is the attention mass a query puts on its "target" keys, averaged over the
queries that have a target (queries with none are left out rather than counted as 0):

- ``previous_token``: the key just before the query (``j = i - 1``);
- ``duplicate_token``: earlier keys holding the same token (``t[j] == t[i]``, ``j < i``);
- ``prefix_matching``: keys right after an earlier copy of the query token
  (``t[j-1] == t[i]``, ``j <= i``), all such copies (Olsson et al. 2022);
- ``induction``: the key right after the *most recent* earlier copy of the query token.
  On ``[BOS][L][L]`` this is ARENA's induction score: the ``-(L-1)`` diagonal.

transformer-lens's ``detect_head`` ("mul") divides by every query instead:
``ours * n_queries_with_target / seq_len`` equals its score (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int

from explorer._checks import check_choice
from explorer.analysis.cache import run_with_cache
from explorer.analysis.units import layer_table
from explorer.models.handle import ModelHandle

KINDS = ("previous_token", "induction", "duplicate_token", "prefix_matching")


@dataclass(frozen=True)
class HeadScores:
    """``scores[kind, layer, head]`` (or ``[batch, kind, layer, head]`` per example)."""

    scores: torch.Tensor
    kinds: tuple[str, ...]

    def get(self, kind: str) -> torch.Tensor:
        check_choice("head score kind", kind, self.kinds)
        return self.scores[..., self.kinds.index(kind), :, :]

    def top(self, kind: str, n: int = 3) -> list[tuple[int, int, float]]:
        """The ``n`` highest-scoring heads as ``(layer, head, score)`` (batch-averaged)."""
        grid = self.get(kind)
        if grid.ndim == 3:
            grid = grid.mean(0)
        values, flat = grid.flatten().topk(min(n, grid.numel()))
        n_heads = grid.shape[1]
        return [(int(i) // n_heads, int(i) % n_heads, float(v)) for v, i in zip(values, flat)]

    def to_dataframe(self, kind: str) -> Any:
        """One score as a labelled ``layer x head`` table (batch-averaged)."""
        grid = self.get(kind)
        return layer_table(grid.mean(0) if grid.ndim == 3 else grid)

    def __repr__(self) -> str:
        *_, n_layers, n_heads = self.scores.shape
        best = ", ".join(
            f"{kind} {layer}.{head} {value:.2f}"
            for kind in self.kinds
            for layer, head, value in self.top(kind, 1)
        )
        return f"HeadScores({len(self.kinds)} kinds x {n_layers} layers x {n_heads} heads; best: {best})"


def target_mask(
    tokens: Int[torch.Tensor, "batch pos"], kind: str
) -> Bool[torch.Tensor, "batch q k"]:
    """Where each query's targets are, for a head-score ``kind`` (see module docstring)."""
    check_choice("head score kind", kind, KINDS)
    batch, n = tokens.shape
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    if kind == "previous_token":
        return (k == q - 1).expand(batch, n, n).clone()
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, q, k]: t[q] == t[k]
    if kind == "duplicate_token":
        return same & (k < q)
    # after[b, q, j] = t[j-1] == t[q], for j >= 1 and j <= q
    after = torch.zeros_like(same)
    after[:, :, 1:] = same[:, :, :-1]
    after &= (k <= q) & (k >= 1)
    if kind == "prefix_matching":
        return after
    # induction: keep only the latest j for each query (the most recent earlier copy)
    latest = torch.where(after, k.expand_as(after), torch.full_like(after, -1, dtype=torch.long))
    last = latest.max(-1, keepdim=True).values
    return after & (k == last)


def score_pattern(
    pattern: Float[torch.Tensor, "batch head q k"], mask: Bool[torch.Tensor, "batch q k"]
) -> Float[torch.Tensor, "batch head"]:
    """Mean over queries with a target of the attention mass on targets, per example."""
    mass = (pattern * mask[:, None]).sum(-1)  # [b, h, q]
    has = mask.any(-1)[:, None, :].expand_as(mass)  # [b, h, q]
    count = has.sum(-1).clamp(min=1)
    return (mass * has).sum(-1) / count


@torch.no_grad()
def head_scores(
    model: ModelHandle,
    tokens: Int[torch.Tensor, "batch pos"],
    kinds: tuple[str, ...] | list[str] | None = None,
    *,
    per_example: bool = False,
) -> HeadScores:
    """Score every head of ``model`` on ``tokens`` for each kind.

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=30, n_ctx=32)
    >>> s = head_scores(m, repeated_tokens(4, 10, 30))
    >>> tuple(s.get("induction").shape)
    (2, 4)
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads to score")
    kinds = tuple(kinds) if kinds is not None else KINDS
    for kind in kinds:
        check_choice("head score kind", kind, KINDS)
    tokens = model.check_inputs(tokens)
    names = [model.hook_name("pattern", layer) for layer in range(model.n_layers)]
    cache = run_with_cache(model, tokens, names)
    per_kind = []
    for kind in kinds:
        mask = target_mask(tokens, kind)
        if not mask.any():
            raise ValueError(
                f"no query in this batch has a {kind} target (e.g. no repeated token): "
                "use repeated_tokens(...) for induction-style scores"
            )
        layers = [score_pattern(cache[name], mask) for name in names]  # each [b, h]
        per_kind.append(torch.stack(layers, dim=1))  # [b, layer, head]
    scores = torch.stack(per_kind, dim=1)  # [b, kind, layer, head]
    return HeadScores(scores if per_example else scores.mean(0), kinds)
