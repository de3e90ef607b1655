"""Metrics: functions ``logits -> Tensor[batch]`` (one number per example, higher = more).

Every intervention reports a metric before and after; metrics are per example so that
bootstrap intervals and per-example views are possible. Builders close over the labels:

>>> import torch
>>> m = accuracy(torch.tensor([1, 0]))
>>> m(torch.tensor([[0.0, 2.0], [0.0, 1.0]])).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from explorer._checks import check_tensor

Metric = Callable[[torch.Tensor], torch.Tensor]


def _last(logits: torch.Tensor) -> torch.Tensor:
    """Classifier logits ``[batch, classes]`` or the last position of ``[batch, pos, vocab]``."""
    return logits[:, -1] if logits.ndim == 3 else logits


def _labels(labels: torch.Tensor) -> torch.Tensor:
    return check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True)


def accuracy(labels: torch.Tensor) -> Metric:
    """1.0 where the argmax (at the last position for sequences) equals the label."""
    labels = _labels(labels)
    return lambda logits: (_last(logits).argmax(-1) == labels).float()


def neg_cross_entropy(labels: torch.Tensor) -> Metric:
    """Minus the cross-entropy of the label (at the last position for sequences)."""
    labels = _labels(labels)
    return lambda logits: -F.cross_entropy(_last(logits).float(), labels, reduction="none")


def correct_logprob(labels: torch.Tensor) -> Metric:
    """Log-probability of the label (same as ``neg_cross_entropy``, kept for readability)."""
    return neg_cross_entropy(labels)


def logit_diff(correct: torch.Tensor, wrong: torch.Tensor) -> Metric:
    """Logit of ``correct`` minus logit of ``wrong`` (at the last position for sequences)."""
    correct, wrong = _labels(correct), _labels(wrong)
    return lambda logits: (
        _last(logits).gather(-1, correct[:, None]) - _last(logits).gather(-1, wrong[:, None])
    ).squeeze(-1)


def next_token_loss(tokens: torch.Tensor, positions: slice | None = None) -> Metric:
    """Mean next-token cross-entropy per example over ``positions`` (of the predictions).

    Prediction ``i`` (logits at position ``i``) is scored on ``tokens[:, i + 1]``. Lower is
    better, so interventions that hurt the model raise it.
    """
    tokens = check_tensor("tokens", torch.as_tensor(tokens), ndim=2, integer=True)
    targets = tokens[:, 1:]
    sel = positions if positions is not None else slice(None)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        logprobs = logits[:, :-1].float().log_softmax(-1)
        loss = -logprobs.gather(-1, targets[..., None]).squeeze(-1)
        return loss[:, sel].mean(-1)

    return metric


def repeated_half_loss(tokens: torch.Tensor) -> Metric:
    """Next-token loss on the second half of ``[BOS][L][L]`` (what induction lowers)."""
    half = (tokens.shape[1] - 1) // 2
    return next_token_loss(tokens, slice(half + 1, None))


def first_half_loss(tokens: torch.Tensor) -> Metric:
    """Next-token loss on the first (random, unpredictable) half of ``[BOS][L][L]``."""
    half = (tokens.shape[1] - 1) // 2
    return next_token_loss(tokens, slice(0, half))


def evaluate(metric: Metric, logits: torch.Tensor, batch: int) -> torch.Tensor:
    """Apply ``metric`` and check it returned one finite number per example."""
    value = metric(logits)
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float32)
    if value.ndim == 0:
        value = value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(
            f"a metric must return one value per example (shape [{batch}]), got {list(value.shape)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError("the metric returned NaN or infinite values")
    return value.detach().float()
