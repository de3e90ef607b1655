"""Head detection against a pattern: how closely each head attends where a pattern says.

transformer-lens's ``detect_head`` semantics, for a batch of token sequences. A detection
pattern ``D[q, k]`` (lower triangular, 1 where a head of that type attends) is compared
with each head's attention pattern ``P[q, k]``:

- ``error_measure="mul"``: ``sum(P' * D) / sum(P')`` where ``P'`` is ``P`` with the BOS
  column (``exclude_bos``) and/or the diagonal (``exclude_current_token``) set to zero:
  the share of the remaining attention that lands on the pattern;
- ``error_measure="abs"``: ``1 - sum(|P - D|) / pos`` with the same entries of ``|P - D|``
  zeroed (transformer-lens also rounds this to 3 decimals; we do not).

Scores are averaged over the batch, as ``detect_head`` averages over a list of prompts.
Built-in patterns: ``"previous_token_head"`` (``k = q - 1``), ``"duplicate_token_head"``
(earlier copies of the query token), ``"induction_head"`` (the keys right after earlier
copies, ``t[k-1] == t[q]``, ``1 <= k <= q``). A custom pattern is a ``[pos, pos]`` or
``[batch, pos, pos]`` tensor, or a function ``tokens [batch, pos] -> [batch, pos, pos]``.
``head_scores`` (same package) holds explorer's own scores with their definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._checks import check_choice
from explorer._display import Shown, pandas
from explorer.analysis.cache import _last_block
from explorer.analysis.units import Head
from explorer.models.handle import ModelHandle

__all__ = [
    "HeadDetection",
    "detect_heads",
]

PATTERNS = ("previous_token_head", "duplicate_token_head", "induction_head")
ERROR_MEASURES = ("mul", "abs")
Pattern = str | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


def detection_pattern(
    tokens: Int[torch.Tensor, "batch pos"], name: str
) -> Float[torch.Tensor, "batch pos pos"]:
    """A built-in detection pattern for each sequence of ``tokens``."""
    check_choice("detection pattern", name, PATTERNS)
    batch, n = tokens.shape
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    if name == "previous_token_head":
        return (k == q - 1).float().expand(batch, n, n).clone()
    duplicate = (tokens[:, :, None] == tokens[:, None, :]) & (k < q)
    if name == "duplicate_token_head":
        return duplicate.float()
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]
    return (induction & (k <= q)).float()


@dataclass(frozen=True, repr=False)
class HeadDetection(Shown):
    """``scores[layer, head]`` (batch mean) and ``per_example[batch, layer, head]``."""

    scores: Float[torch.Tensor, "layer head"]
    per_example: Float[torch.Tensor, "batch layer head"]
    pattern: str
    exclude_bos: bool
    exclude_current_token: bool
    error_measure: str

    def top(self, n: int = 3) -> list[tuple[Head, float]]:
        """The ``n`` best-matching heads as ``(Head, score)``, best first."""
        values, flat = self.scores.flatten().topk(min(n, self.scores.numel()))
        heads = self.scores.shape[1]
        return [(Head(int(i) // heads, int(i) % heads), float(v)) for v, i in zip(values, flat)]

    def to_dataframe(self) -> Any:
        """One row per head: ``layer``, ``head`` and its ``score``."""
        pd = pandas()
        layers, heads = self.scores.shape
        return pd.DataFrame(
            {
                "layer": [l for l in range(layers) for _ in range(heads)],
                "head": [h for _ in range(layers) for h in range(heads)],
                "score": self.scores.flatten().numpy(),
            }
        )

    def _options(self) -> str:
        parts = [self.error_measure]
        parts += ["no BOS"] if self.exclude_bos else []
        parts += ["no current token"] if self.exclude_current_token else []
        return ", ".join(parts)

    def _summary(self) -> str:
        return f"{self.pattern}, {self._options()}, {tuple(self.scores.shape)} heads"

    def _top(self) -> list[str]:
        return [f"L{h.layer}H{h.head} {v:.3f}" for h, v in self.top(3)]

    def _table(self) -> tuple:
        rows = [(f"L{h.layer}H{h.head}", v) for h, v in self.top(10)]
        return f"Head detection: {self.pattern}", ("head", "score"), rows, self._options()


def _pattern_tensor(pattern: Pattern, tokens: torch.Tensor) -> tuple[torch.Tensor, str]:
    batch, n = tokens.shape
    if isinstance(pattern, str):
        return detection_pattern(tokens, pattern), pattern
    if callable(pattern) and not isinstance(pattern, torch.Tensor):
        values, name = pattern(tokens), getattr(pattern, "__name__", "custom")
    else:
        values, name = pattern, "custom"
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"a detection pattern must be a tensor, got {type(values).__name__}")
    values = values.float()
    if values.ndim == 2:
        values = values.expand(batch, -1, -1)
    if tuple(values.shape) != (batch, n, n):
        raise ValueError(
            f"the detection pattern must be [pos, pos] or [batch, pos, pos] = [{batch}, {n}, {n}], "
            f"got {list(values.shape)}"
        )
    if (values.triu(1) != 0).any():
        raise ValueError(
            "the detection pattern must be lower triangular (a query sees no later key)"
        )
    return values, name


@torch.no_grad()
def detect_heads(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    pattern: Pattern,
    exclude_bos: bool = False,
    exclude_current_token: bool = False,
    error_measure: str = "mul",
) -> HeadDetection:
    """Score every head against ``pattern`` (see the module docstring).

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)
    >>> d = detect_heads(m, repeated_tokens(3, 5, 20), pattern="induction_head", exclude_bos=True)
    >>> tuple(d.scores.shape), d.pattern
    ((2, 4), 'induction_head')
    """
    if not model.is_transformer:
        raise ValueError(f"{model.name} has no attention heads")
    check_choice("error_measure", error_measure, ERROR_MEASURES)
    tokens = model.check_inputs(inputs)
    if tokens.shape[1] < 2:
        raise ValueError("head detection needs sequences of at least 2 tokens")
    target, name = _pattern_tensor(pattern, tokens)
    names = [model.hook_name("pattern", layer) for layer in range(model.n_layers)]
    n = tokens.shape[1]
    keep = torch.ones(n, n)
    if exclude_bos:
        keep[:, 0] = 0
    if exclude_current_token:
        keep.fill_diagonal_(0)
    mul = error_measure == "mul"

    def score(name: str, pattern: torch.Tensor) -> torch.Tensor:  # [b, h]
        attn = pattern.float()  # [b, h, q, k]
        keep_, target_ = keep.to(attn.device), target.to(attn.device)
        if mul:
            kept = attn * keep_
            return (kept * target_[:, None]).sum((-1, -2)) / kept.sum((-1, -2))
        diff = (attn - target_[:, None]).abs() * keep_
        return 1 - diff.sum((-1, -2)) / n

    # scored inside the pass: no pattern is kept (a remote backend sends back [b, h] per
    # layer), and the pass stops after the last block
    _, cache = model.cache_pass(
        tokens, names=names, select=score, stop_at_layer=_last_block(model, names)
    )
    layers = [cache[hook] for hook in names]
    per_example = torch.stack(layers, dim=1)  # [b, layer, head]
    return HeadDetection(
        per_example.mean(0), per_example, name, exclude_bos, exclude_current_token, error_measure
    )
