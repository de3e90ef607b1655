"""Token attribution: how much each input token contributes to one logit (integrated gradients).

captum's ``LayerIntegratedGradients`` on the token-embedding layer: the embeddings of the
input are interpolated from those of a baseline sequence (every token replaced by the
``baseline`` token), and the gradients of the explained logit are integrated along the
path (``n_steps`` points, captum's Gauss-Legendre rule). A token's score is its
attribution summed over ``d_model``. By completeness the scores add up to
``f(input) - f(baseline)``, up to captum's convergence ``delta`` (reported per example:
a large delta says ``n_steps`` is too small). Position embeddings are not attributed (they
are the same in input and baseline).

The explained number ``f`` is the logit of ``target`` at ``position``, or the logit
difference ``target - against``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._checks import check_positive
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.logit_attribution import (
    TokenSpec,
    describe_direction,
    resolve_positions,
    resolve_tokens,
)
from explorer.models.handle import ModelHandle

__all__ = [
    "TokenAttribution",
    "attribute_tokens",
]


@dataclass(frozen=True, repr=False)
class TokenAttribution(Shown):
    """``scores[batch, pos]``: each input token's integrated-gradients attribution."""

    scores: Float[torch.Tensor, "batch pos"]
    delta: Float[torch.Tensor, " batch"]
    value: Float[torch.Tensor, " batch"]
    baseline_value: Float[torch.Tensor, " batch"]
    tokens: tuple[tuple[str, ...], ...]
    direction: str
    positions: Int[torch.Tensor, " batch"]
    n_steps: int

    def top(self, example: int = 0, n: int = 5) -> list[tuple[int, str, float]]:
        """The ``n`` tokens of one example with the largest |score|: ``(pos, token, score)``."""
        row = self.scores[example]
        order = row.abs().argsort(descending=True)[:n].tolist()
        return [(p, self.tokens[example][p], float(row[p])) for p in order]

    def to_dataframe(self) -> Any:
        """One row per example and position: ``example``, ``position``, ``token``, ``score``."""
        pd = pandas()
        return pd.DataFrame.from_records(
            {"example": b, "position": p, "token": text, "score": float(self.scores[b, p])}
            for b, row in enumerate(self.tokens)
            for p, text in enumerate(row)
        )

    def _summary(self) -> str:
        batch, pos = self.scores.shape
        return (
            f"{batch} examples x {pos} tokens, {self.direction}; "
            f"max |delta| {float(self.delta.abs().max()):.2g}"
        )

    def _top(self) -> list[str]:
        return [f"{p}:{t!r} {v:+.3g}" for p, t, v in self.top(0, 3)]

    def _table(self) -> tuple:
        rows = [(p, t, v) for p, t, v in self.top(0, MAX_ROWS)]
        note = (
            f"{len(rows)} of {len(self.tokens[0])} tokens, largest |score| first; "
            f"f(input) {float(self.value[0]):+.4g}, f(baseline) {float(self.baseline_value[0]):+.4g}, "
            f"delta {float(self.delta[0]):+.2g}, {self.n_steps} steps"
        )
        return (
            f"Token attribution (integrated gradients): {self.direction}",
            ("position", "token", "score"),
            rows,
            note,
        )


def attribute_tokens(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    target: TokenSpec,
    against: TokenSpec | None = None,
    position: int | Sequence[int] | torch.Tensor = -1,
    baseline: int | str = 0,
    n_steps: int = 50,
) -> TokenAttribution:
    """Integrated-gradients score of every input token for the logit of ``target`` (minus
    ``against``) at ``position`` (see the module docstring).

    Args:
        baseline: the token every input token is replaced by on the baseline (an id or a
            token string; 0 by default, BOS in the tutorial models).

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
    >>> a = attribute_tokens(m, torch.tensor([[0, 3, 5, 3]]), target="t5", n_steps=20)
    >>> tuple(a.scores.shape), bool(a.delta.abs().max() < 1e-3)
    ((1, 4), True)
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: use attribute(model, images, target=...)")
    check_positive("n_steps", n_steps)
    tokens = model.check_inputs(inputs)
    batch, n_pos = tokens.shape
    positions = resolve_positions(position, batch, n_pos)
    target_ids = resolve_tokens(model, spec=target, batch=batch, what="target")
    against_ids = (
        None
        if against is None
        else resolve_tokens(model, spec=against, batch=batch, what="against")
    )
    base_id = resolve_tokens(model, spec=baseline, batch=1, what="baseline")[0]
    if base_id >= (model.d_vocab or 0):
        raise ValueError(f"baseline token {int(base_id)} is not an input token")
    baselines = torch.full_like(tokens, int(base_id))

    def explained(ids: torch.Tensor) -> torch.Tensor:
        logits = model(ids)  # captum runs copies: [steps * batch, pos, vocab]
        copies = ids.shape[0] // batch
        pick = logits[torch.arange(ids.shape[0]), positions.repeat(copies)]
        value = pick.gather(-1, target_ids.repeat(copies)[:, None])[:, 0]
        if against_ids is not None:
            value = value - pick.gather(-1, against_ids.repeat(copies)[:, None])[:, 0]
        return value

    # lazy: captum imports matplotlib (seconds); only integrated-gradients attribution uses it
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(explained, model.token_embedding())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns about grads it sets itself
        attributions, delta = lig.attribute(
            tokens, baselines=baselines, n_steps=n_steps, return_convergence_delta=True
        )
    with torch.no_grad():
        value, base_value = explained(tokens), explained(baselines)
    return TokenAttribution(
        attributions.sum(-1).detach().float(),
        delta.detach().float(),
        value.float(),
        base_value.float(),
        tuple(tuple(model.to_str_tokens(row)) for row in tokens),
        describe_direction(model, target=target_ids, against=against_ids),
        positions,
        n_steps,
    )
