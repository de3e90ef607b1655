"""Head scores: how much each attention head behaves like a known head type on a batch.

Write ``A[q, k]`` for a head's attention pattern on one sequence ``t`` and ``T(q)`` for the
target keys of query ``q``. Every score is the attention mass on the targets, averaged over
the queries that have a target (queries with none are left out rather than counted as 0)::

    score = mean over {q : T(q) non-empty} of  sum_{k in T(q)} A[q, k]

then averaged over the batch. The targets of each score:

- ``previous_token``: ``T(q) = {q - 1}`` (every query but the first).
- ``duplicate_token``: ``T(q) = {k < q : t[k] = t[q]}``, every earlier copy of the token.
- ``prefix_matching``: ``T(q) = {k : 1 <= k <= q, t[k - 1] = t[q]}``, the key right after
  *every* earlier copy (Olsson et al. 2022). This is transformer-lens's
  ``get_induction_head_detection_pattern``: use it for induction on arbitrary text.
- ``induction``: on repeated sequences only: ``[BOS][S][S]`` (length ``2L + 1``) or
  ``[S][S]`` (length ``2L``), ``S`` of length ``L``. The queries are the ``L`` positions
  of the second ``S``, and ``T(q) = {q - L + 1}``: the token after the copy one period
  back, the ``-(L - 1)`` diagonal of ``A``. Other batches raise. This is ARENA's diagonal
  score over the repeated half only; ARENA's own mean also takes two first-half queries
  (conversion below), and the two differ by a few hundredths.

Conversions (all exact, tested in ``tests/reference``):

- transformer-lens ``detect_head(..., error_measure="mul")`` with its default
  ``exclude_bos=False, exclude_current_token=False`` divides the target mass by *every*
  query (``seq_len``), so per sequence ``tl = ours * n_q / seq_len``, ``n_q`` the number
  of queries with a target. Its ``previous_token_head``, ``duplicate_token_head`` and
  ``induction_head`` are our ``previous_token`` (``n_q = seq_len - 1``),
  ``duplicate_token`` and ``prefix_matching``. ``n_q`` per sequence comes from
  ``target_mask(tokens, score).any(-1).sum(-1)``. On a batch of several sequences it
  averages the per-sequence scores, as ``head_scores`` does.
- ARENA (``induction_attn_detector``, ``induction_score_hook``) averages
  ``A.diagonal(1 - L)`` on ``[BOS][L][L]``: ``L + 2`` entries, the ``L`` repeated-half
  queries plus queries ``L - 1`` and ``L`` of the first half (which attend to keys 0 and
  1). So ``arena = (L * ours + A[L - 1, 0] + A[L, 1]) / (L + 2)``. ARENA's
  ``find_induction_circuit`` threshold, 0.4, is used on ``induction``.
- ARENA's previous-token detector averages ``A.diagonal(-1)``, which is ``previous_token``
  exactly; its duplicate-token score on ``[BOS][L][L]`` averages the ``-L`` diagonal,
  which equals ``duplicate_token`` when ``S`` has no repeated token (otherwise ours also
  counts the other earlier copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int

from explorer._checks import check_choice
from explorer._display import MAX_ROWS, Shown, strongest
from explorer.analysis.cache import _last_block, run_with_cache
from explorer.analysis.units import Head, layer_table
from explorer.models.handle import ModelHandle

__all__ = [
    "HeadScores",
    "attention_patterns",
    "head_scores",
]

SCORES = ("previous_token", "induction", "duplicate_token", "prefix_matching")


@dataclass(frozen=True, repr=False)
class HeadScores(Shown):
    """``scores[score, layer, head]`` (or ``[batch, score, layer, head]`` per example), one
    slice per name in ``names``."""

    scores: torch.Tensor
    names: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """``(score, reason)`` for each score asked but not scored (``unscorable="skip"``)."""
    baselines: tuple[float, ...] = ()
    """Per name, the random baseline: the score of a head that attends uniformly to every
    key it can see (``uniform_baseline``), on the same batch. Empty when not computed."""

    def get(self, score: str) -> torch.Tensor:
        check_choice("head score", score, self.names)
        return self.scores[..., self.names.index(score), :, :]

    def top(self, score: str, n: int = 3) -> list[tuple[Head, float]]:
        """The ``n`` highest-scoring heads as ``(Head, score)`` (batch-averaged), best first."""
        grid = self.get(score)
        if grid.ndim == 3:
            grid = grid.mean(0)
        values, flat = grid.flatten().topk(min(n, grid.numel()))
        n_heads = grid.shape[1]
        return [(Head(int(i) // n_heads, int(i) % n_heads), float(v)) for v, i in zip(values, flat)]

    def to_dataframe(self) -> Any:
        """One row per head: ``layer``, ``head`` and a column per score (batch-averaged).
        One score as a ``layer x head`` grid:
        ``frame.pivot(index="layer", columns="head", values="induction")``."""
        grids = self.scores.mean(0) if self.scores.ndim == 4 else self.scores
        frame = layer_table(grids[0]).drop(columns="value")
        for name, grid in zip(self.names, grids):
            frame[name] = grid.detach().double().flatten().numpy()
        return frame

    def _summary(self) -> str:
        *batch, _, n_layers, n_heads = self.scores.shape
        per = f", {batch[0]} examples each" if batch else ""
        return f"{len(self.names)} scores x {n_layers} layers x {n_heads} heads{per}"

    def _best(self, score: str, n: int) -> list[tuple[Head, float]]:
        grid = self.get(score)
        grid = grid.mean(0) if grid.ndim == 3 else grid
        n_heads = grid.shape[1]
        return [
            (Head(i // n_heads, i % n_heads), float(grid.flatten()[i]))
            for i in strongest(grid, n, by_abs=False)
        ]

    def _top(self) -> list[str]:
        return [
            f"{score} {head} {value:.2f}"
            for score in self.names
            for head, value in self._best(score, 1)
        ]

    def _table(self) -> tuple:
        """The best heads of each score (batch-averaged)."""
        per_score = max(1, MAX_ROWS // len(self.names))
        rows = [
            (score, str(head), value)
            for score in self.names
            for head, value in self._best(score, per_score)
        ]
        *_, n_layers, n_heads = self.scores.shape
        note = f"best {per_score} of {n_layers * n_heads} heads per score; to_dataframe() has all"
        if self.baselines:  # what a head attending uniformly would score: read values against it
            note += "; random baseline (uniform attention): " + ", ".join(
                f"{name} {value:.3g}" for name, value in zip(self.names, self.baselines)
            )
        return "Head scores", ("head score", "head", "value"), rows, note


def target_mask(
    tokens: Int[torch.Tensor, "batch pos"], score: str
) -> Bool[torch.Tensor, "batch q k"]:
    """Where each query's targets are, for a head ``score`` (see module docstring).

    >>> target_mask(torch.tensor([[0, 5, 6, 5, 6]]), "induction")[0].nonzero().tolist()
    [[3, 2], [4, 3]]
    """
    check_choice("head score", score, SCORES)
    batch, n = tokens.shape
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    if score == "induction":
        start, half = repeat_period(tokens)
        diagonal = (k == q - half + 1) & (q >= start + half)
        return diagonal.expand(batch, n, n).clone()
    if score == "previous_token":
        return (k == q - 1).expand(batch, n, n).clone()
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, q, k]: t[q] == t[k]
    if score == "duplicate_token":
        return same & (k < q)
    # after[b, q, j] = t[j-1] == t[q], for j >= 1 and j <= q
    after = torch.zeros_like(same)
    after[:, :, 1:] = same[:, :, :-1]
    return after & (k <= q) & (k >= 1)  # prefix_matching


def uniform_baseline(tokens: Int[torch.Tensor, "batch pos"], score: str) -> float:
    """The ``score`` of a head attending uniformly to every key it can see (``1/(q+1)`` on
    keys ``0..q``) on ``tokens``: the random baseline a head score is read against.

    >>> round(uniform_baseline(torch.tensor([[0, 5, 6, 5, 6]]), "induction"), 4)
    0.225
    """
    return float(score_pattern(_uniform(tokens.shape), target_mask(tokens, score)).mean())


def repeat_period(tokens: Int[torch.Tensor, "batch pos"]) -> tuple[int, int]:
    """``(start, L)`` when every sequence is ``[BOS][S][S]`` (start 1) or ``[S][S]`` (start 0).

    >>> repeat_period(torch.tensor([[0, 5, 6, 5, 6]]))
    (1, 2)
    >>> repeat_period(torch.tensor([[5, 6, 7, 5, 6, 7]]))
    (0, 3)
    """
    n = tokens.shape[1]
    start = n % 2  # odd: [BOS][S][S]; even: [S][S]
    half = (n - start) // 2
    if half < 1 or not bool((tokens[:, start : start + half] == tokens[:, start + half :]).all()):
        raise ValueError(
            "the induction score needs repeated sequences, [BOS][S][S] or [S][S] "
            f"(e.g. repeated_tokens(...)); this batch of length {n} is not one. On other "
            "text use 'prefix_matching' (transformer-lens's induction pattern)"
        )
    return start, half


def score_pattern(
    pattern: Float[torch.Tensor, "batch head q k"], mask: Bool[torch.Tensor, "batch q k"]
) -> Float[torch.Tensor, "batch head"]:
    """Mean over queries with a target of the attention mass on targets, per example."""
    mass = (pattern * mask[:, None]).sum(-1)  # [b, h, q]
    has = mask.any(-1)[:, None, :].expand_as(mass)  # [b, h, q]
    count = has.sum(-1).clamp(min=1)
    return (mass * has).sum(-1) / count


@torch.no_grad()
def attention_patterns(
    model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"]
) -> Float[torch.Tensor, "batch layer head q k"]:
    """Every head's attention pattern on the tokens ``inputs`` (one pass, stopping after the
    last block).

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=30, n_ctx=32)
    >>> tuple(attention_patterns(m, torch.tensor([[1, 2, 3]])).shape)
    (1, 2, 4, 3, 3)
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads")
    tokens = model.check_inputs(inputs)
    names = [model.hook_name("pattern", layer) for layer in range(model.n_layers)]
    cache = run_with_cache(model, tokens, hooks=names, logits=False)
    return torch.stack([cache[name] for name in names], dim=1)


@torch.no_grad()
def head_scores(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    scores: str | Sequence[str] | None = None,
    per_example: bool = False,
    unscorable: str = "raise",
) -> HeadScores:
    """Score every head of ``model`` on the tokens ``inputs`` for each of ``scores`` (default:
    all of ``SCORES``): the mean, over queries
    with a target, of the attention mass on the targets (formulas and the conversions to
    transformer-lens and ARENA in the module docstring and docs/scores.md).

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=30, n_ctx=32)
    >>> s = head_scores(m, repeated_tokens(4, 10, 30))
    >>> tuple(s.get("induction").shape)
    (2, 4)

    A batch can lack targets for a score (no repeated half: no induction target). By default
    that raises; ``unscorable="skip"`` computes the other scores in the same single pass and
    names the skipped ones with the reason in ``skipped``:

    >>> s = head_scores(m, torch.tensor([[1, 2, 3, 4, 5]]), unscorable="skip")
    >>> s.names, [name for name, _ in s.skipped]
    (('previous_token',), ['induction', 'duplicate_token', 'prefix_matching'])
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads to score")
    if isinstance(scores, str):  # scores="induction" means one score, not its letters
        scores = (scores,)
    kinds = tuple(scores) if scores is not None else SCORES
    for kind in kinds:
        check_choice("head score", kind, SCORES)
    check_choice("unscorable", unscorable, ("raise", "skip"))
    tokens = model.check_inputs(inputs)
    masks, kept, skipped = [], [], []
    for kind in kinds:  # before the forward pass: a batch that cannot be scored fails fast
        try:
            mask = target_mask(tokens, kind)
            if not mask.any():
                raise ValueError(
                    f"no query in this batch has a {kind} target (e.g. no repeated token): "
                    "use repeated_tokens(...) for induction-style scores"
                )
        except ValueError as exc:
            if unscorable == "raise":
                raise
            skipped.append((kind, str(exc)))
            continue
        masks.append(mask)
        kept.append(kind)
    if not masks:
        empty = torch.zeros(tokens.shape[0], 0, model.n_layers, model.n_heads or 0)
        return HeadScores(empty if per_example else empty[0], (), tuple(skipped))
    names = [model.hook_name("pattern", layer) for layer in range(model.n_layers)]

    def per_head(name: str, pattern: torch.Tensor) -> torch.Tensor:  # [b, kind, head]
        return torch.stack([score_pattern(pattern, mask) for mask in masks], dim=1)

    # scored inside the pass, layer by layer: no pattern is kept (a remote backend sends
    # back [batch, kind, head] per layer), and the pass stops after the last block
    _, cache = model.cache_pass(
        tokens, names=names, select=per_head, stop_at_layer=_last_block(model, names)
    )
    scores = torch.stack([cache[name] for name in names], dim=2)  # [b, kind, layer, head]
    baselines = tuple(float(score_pattern(_uniform(tokens.shape), mask).mean()) for mask in masks)
    return HeadScores(
        scores if per_example else scores.mean(0), tuple(kept), tuple(skipped), baselines
    )


def _uniform(shape: torch.Size) -> torch.Tensor:
    """``[batch, 1, q, k]``: every query attends uniformly to the keys it can see."""
    batch, n = shape
    causal = torch.ones(n, n).tril()
    return (causal / causal.sum(-1, keepdim=True)).expand(batch, 1, n, n)
