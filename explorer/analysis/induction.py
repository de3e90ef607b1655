"""Induction: in-context learning measures and the induction circuit.

On ``[BOS][random L][same L]`` a model that has learned induction predicts the repeated
half from the first, so its loss there falls far below the loss on the random first half:

- ``induction_progress``: the repeated-half and first-half losses and the head scores in one
  record (the metric factories ``in_context_learning_score`` and ``repeated_half_advantage``
  live in ``analysis.metrics``).
- ``find_induction_circuit``: induction heads (``induction`` score above ARENA's 0.4) and the
  earlier previous-token heads that feed their keys (K-composition above the random
  baseline and a previous-token score above a threshold).

Where a training curve changes most steeply is ``explorer.analysis.curves.detect_phase_change``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int

from explorer._checks import check_fraction
from explorer._deprecate import moved_names
from explorer._display import MAX_ROWS, RecordShown, Shown, pandas
from explorer.analysis import curves
from explorer.analysis import metrics as _metrics
from explorer.analysis.composition import CompositionScores, composition_scores
from explorer.analysis.head_scores import HeadScores, head_scores
from explorer.analysis.metrics import _halves, next_token_loss
from explorer.analysis.units import Head
from explorer.models.handle import ModelHandle

__all__ = [
    "InductionCircuit",
    "InductionProgress",
    "find_induction_circuit",
    "induction_progress",
]


@dataclass(frozen=True, repr=False)
class InductionProgress(RecordShown):
    """What to log at a training step: losses on ``[BOS][L][L]`` and the best head scores."""

    repeated_half_loss: float
    first_half_loss: float
    in_context_learning_score: float
    max_induction_score: float
    max_previous_token_score: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


@torch.no_grad()
def induction_progress(
    model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"]
) -> InductionProgress:
    """Losses and head scores of ``model`` on ``[BOS][L][L]`` token ``inputs`` (one forward
    pass for the losses, one cached pass for the scores).

    Induction is scored on layers >= 1 only (a layer-0 head cannot do induction alone);
    previous-token on every layer.
    """
    tokens = model.check_inputs(inputs)
    first, repeated = _halves(tokens)
    was_training = model.training
    model.eval()
    try:
        logits = model(tokens)
        scores = head_scores(model, tokens, scores=("previous_token", "induction"))
    finally:
        model.train(was_training)
    rep = float(next_token_loss(tokens, repeated)(logits).mean())
    fst = float(next_token_loss(tokens, first)(logits).mean())
    induction = scores.get("induction")[1:] if model.n_layers > 1 else scores.get("induction")
    return InductionProgress(
        repeated_half_loss=rep,
        first_half_loss=fst,
        in_context_learning_score=rep - fst,
        max_induction_score=float(induction.max()),
        max_previous_token_score=float(scores.get("previous_token").max()),
    )


def heads_above(
    scores: HeadScores,
    score: str,
    threshold: float,
    *,
    layers: Sequence[int] | None = None,
) -> list[Head]:
    """Heads whose (batch-averaged) ``score`` exceeds ``threshold``, best first.

    >>> grid = torch.tensor([[[0.1, 0.9], [0.5, 0.2]]])  # [score, layer, head]
    >>> heads_above(HeadScores(grid, ("induction",)), "induction", 0.4)
    [Head(layer=0, head=1, position=None), Head(layer=1, head=0, position=None)]
    """
    grid = scores.get(score)
    if grid.ndim == 3:
        grid = grid.mean(0)
    wanted = set(range(grid.shape[0])) if layers is None else set(layers)
    found = [
        (float(grid[layer, head]), Head(layer, head))
        for layer in range(grid.shape[0])
        for head in range(grid.shape[1])
        if layer in wanted and float(grid[layer, head]) > threshold
    ]
    return [head for _, head in sorted(found, key=lambda x: -x[0])]


@dataclass(frozen=True, repr=False)
class InductionCircuit(Shown):
    """Induction heads, the previous-token heads feeding them, and the evidence."""

    induction_heads: tuple[Head, ...]
    previous_token_heads: tuple[Head, ...]
    pairs: tuple[tuple[Head, Head, float], ...]
    scores: HeadScores
    composition: CompositionScores

    @property
    def heads(self) -> tuple[Head, ...]:
        """Every head of the circuit: previous-token heads first, then induction heads."""
        return self.previous_token_heads + self.induction_heads

    def to_dataframe(self) -> Any:
        """One row per (previous-token head, induction head) pair, strongest K-composition first."""
        return pandas().DataFrame(
            [(str(a), str(b), value) for a, b, value in self.pairs],
            columns=["previous_token_head", "induction_head", "k_composition"],
        )

    def _summary(self) -> str:
        return (
            f"{len(self.induction_heads)} induction heads, {len(self.previous_token_heads)} "
            f"previous-token heads feeding them, {len(self.pairs)} pairs"
        )

    def _top(self) -> list[str]:
        return [f"{a} -> {b} K {value:.3g}" for a, b, value in self.pairs[:3]]

    def _table(self) -> tuple:
        rows = [(f"{a} -> {b}", value) for a, b, value in self.pairs[:MAX_ROWS]]
        note = f"induction heads: {', '.join(map(str, self.induction_heads)) or 'none'}"
        return "Induction circuit", ("pair", "K-composition"), rows, note


def find_induction_circuit(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    induction_threshold: float = 0.4,
    previous_token_threshold: float = 0.3,
    n_std: float = 3.0,
) -> InductionCircuit:
    """Find induction heads and the previous-token heads that feed their keys.

    An induction head is a head of layer >= 1 whose ``induction`` score on ``inputs``
    (``[BOS][L][L]``) exceeds ``induction_threshold``. That score is the mean attention
    from each repeated-half query ``q`` to key ``q - L + 1`` (the ``-(L - 1)`` diagonal):
    ARENA's diagonal score without its two first-half entries, ``arena = (L * induction +
    A[L - 1, 0] + A[L, 1]) / (L + 2)``; 0.4 is the threshold ARENA's
    ``induction_attn_detector`` puts on its own score (docs/scores.md). A previous-token head feeds it when it sits in an earlier
    layer, scores above ``previous_token_threshold`` as a previous-token head, and its
    K-composition into the induction head exceeds the random baseline by ``n_std`` spreads.
    """
    check_fraction("induction_threshold", induction_threshold)
    check_fraction("previous_token_threshold", previous_token_threshold)
    scores = head_scores(model, inputs, scores=("previous_token", "induction"))
    composition = composition_scores(model)
    inductions = heads_above(
        scores, "induction", induction_threshold, layers=range(1, model.n_layers)
    )
    previous = set(heads_above(scores, "previous_token", previous_token_threshold))
    cut = composition.baseline + n_std * composition.baseline_std
    pairs = []
    for ind in inductions:
        for prev in previous:
            if prev.layer < ind.layer:
                value = composition.score("k", prev, ind)
                if value > cut:
                    pairs.append((prev, ind, value))
    pairs.sort(key=lambda p: -p[2])
    feeders = tuple(sorted({p[0] for p in pairs}))
    return InductionCircuit(tuple(inductions), feeders, tuple(pairs), scores, composition)


# The curve reader moved to its own module (it reads any curve, not only induction's), and
# the metric factories to ``analysis.metrics`` (issue 24); the old paths work one release.
__getattr__ = moved_names(
    "explorer.analysis.induction",
    {
        **{
            name: (f"explorer.analysis.curves.{name}", lambda n=name: getattr(curves, n))
            for name in ("PhaseChange", "detect_phase_change")
        },
        **{
            name: (f"explorer.analysis.metrics.{name}", lambda n=name: getattr(_metrics, n))
            for name in ("in_context_learning_score", "repeated_half_advantage")
        },
    },
)
