"""Metrics: functions ``logits -> Tensor[batch]`` (one number per example, higher = more).

Every intervention reports a metric before and after; metrics are per example so that
bootstrap intervals and per-example views are possible. This module is the
``explorer.analysis.metrics`` sub-namespace: everything a ``metric=`` argument is built from
or read with, including ``recovery`` (where a patched value lies between corrupted and clean)
and the in-context-learning metric factories. Builders close over the labels:

>>> import torch
>>> m = accuracy(torch.tensor([1, 0]))
>>> m(torch.tensor([[0.0, 2.0], [0.0, 1.0]])).tolist()
[1.0, 0.0]

Size: about 420 lines, over the usual 400: one namespace of metric builders and readers,
split only by what they read (labels, tokens, a patching span).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from jaxtyping import Int

from explorer._checks import check_tensor
from explorer._deprecate import renamed_arguments

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "accuracy",
    "check_metric",
    "correct_logprob",
    "evaluate",
    "first_half_loss",
    "in_context_learning_score",
    "logit_diff",
    "lower_is_better",
    "neg_cross_entropy",
    "next_token_loss",
    "recovery",
    "repeated_half_advantage",
    "repeated_half_loss",
]

Metric = Callable[[torch.Tensor], torch.Tensor]


class _RowWise:
    """A built-in metric ``fn(logits, *targets)``: each target's first axis is the batch and
    each example's value depends only on its own logits and targets (no batch reduction).

    So copies of the batch stacked along the first axis can be scored in one call with the
    targets repeated (``evaluate_copies``), giving what one call per copy gives; a metric
    written by a user is never called that way.
    """

    __slots__ = ("_fn", "_targets", "lower_is_better")

    def __init__(
        self, fn: Callable[..., torch.Tensor], *targets: torch.Tensor, lower_is_better: bool = False
    ) -> None:
        self._fn = fn
        self._targets = targets
        self.lower_is_better = lower_is_better

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        for target in self._targets:  # else a broadcast error, or a silent broadcast
            if target.ndim and logits.ndim and target.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"the metric holds targets for {target.shape[0]} examples but the batch "
                    f"has {logits.shape[0]}: build it with one label per example of the batch"
                )
        return self._fn(logits, *self._targets)

    def copies(self, logits: torch.Tensor, copies: int, batch: int) -> torch.Tensor | None:
        """``[copies * batch]`` for logits of ``copies`` stacked batches, or None when the
        targets are not for ``batch`` examples (the per-copy call then reports it).
        A 0-d target (one token for every example) applies to every copy as it is."""
        if logits.shape[0] != copies * batch or any(
            t.ndim and t.shape[0] != batch for t in self._targets
        ):
            return None
        repeated = [t.repeat(copies, *([1] * (t.ndim - 1))) if t.ndim else t for t in self._targets]
        return self._fn(logits, *repeated)


def _last(logits: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
    """Classifier logits ``[batch, classes]``, or of ``[batch, pos, vocab]`` the position
    ``position`` (one index, or one per example ``[batch]``; default the last)."""
    if logits.ndim != 3:
        return logits
    if position is None or position.ndim == 0:
        return logits[:, -1 if position is None else int(position)]
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, position.to(logits.device).expand(logits.shape[0])]


def _position(position: Any) -> torch.Tensor:
    """A metric's ``position=``: one index for every example, or one per example."""
    if isinstance(position, bool) or not isinstance(position, (int, torch.Tensor, list, tuple)):
        raise TypeError(
            f"position must be an int or one int per example (a tensor [batch], e.g. "
            f"model.last_positions(tokens)), got {type(position).__name__}"
        )
    return check_tensor("position", torch.as_tensor(position), ndim=(0, 1), integer=True).long()


def _rowwise(fn: Callable[..., torch.Tensor], position: Any, *targets: torch.Tensor) -> _RowWise:
    """A built-in metric read at the last position, or at ``position`` (a target too, so
    that copies stacked for a sweep repeat it with the labels)."""
    if position is None:
        return _RowWise(fn, *targets)

    def at(logits: torch.Tensor, pos: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 3:
            n = logits.shape[1]
            if int(pos.min()) < -n or int(pos.max()) >= n:
                raise ValueError(
                    f"position must lie in {-n}..{n - 1} (the logits have {n} positions), "
                    f"got {pos.tolist()}"
                )
            logits = _last(logits, pos)[:, None]
        return fn(logits, *rest)

    return _RowWise(at, _position(position), *targets)


def _labels(labels: torch.Tensor) -> torch.Tensor:
    return check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True)


def _tokens(what: str, tokens: Any, model: ModelHandle | None) -> torch.Tensor:
    """Label ids ``[batch]``, or one id (0-d, the same for every example) from a token string
    (``" Mary"``, read with ``model``'s tokenizer), an int, or a list of strings."""
    if tokens is None:
        raise TypeError(f"{what} must be ids (a tensor [batch], an int) or token strings, got None")
    if isinstance(tokens, (str, int)) and not isinstance(tokens, bool):
        tokens = [tokens]
        one = True
    else:
        one = False
    if isinstance(tokens, (list, tuple)) and any(isinstance(t, str) for t in tokens):
        if model is None:
            raise ValueError(
                f"{what} {tokens[0]!r} is a token string: pass model=... so its tokenizer can "
                "read it, e.g. logit_diff(' Mary', ' John', model=model)"
            )
        tokens = [model.to_single_token(t) if isinstance(t, str) else t for t in tokens]
    ids = _labels(torch.as_tensor(tokens))
    return ids[0] if one else ids


def _in_range(what: str, ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``ids`` checked to name a class of ``logits`` (else every score would silently be 0)."""
    n = logits.shape[-1]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ValueError(
            f"{what} ids must lie in 0..{n - 1} (the logits have {n} classes), "
            f"got range {int(ids.min())}..{int(ids.max())}"
        )
    return ids


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (_last(logits).argmax(-1) == _in_range("label", labels, logits)).float()


def accuracy(labels: Any, *, model: ModelHandle | None = None, position: Any = None) -> Metric:
    """1.0 where the argmax (at the last position for sequences, or ``position``: see
    ``logit_diff``) equals the label (ids, or token strings read with ``model``'s
    tokenizer, as in ``logit_diff``)."""
    return _rowwise(_accuracy, position, _tokens("label", labels, model))


NARROW = 64  # classes up to which a log-softmax is computed by hand (see below)


def _neg_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = _last(logits).float()
    labels = _in_range("label", labels, logits).expand(logits.shape[0])
    if logits.shape[-1] > NARROW or logits.ndim != 2:
        return -F.cross_entropy(logits, labels, reduction="none")
    # Few classes (10 digits): torch's log-softmax kernel pays per row, ~4x the time of
    # the same arithmetic written out; a sweep scores thousands of rows at once.
    top = logits.amax(-1, keepdim=True)
    shifted = logits - top
    return shifted.gather(-1, labels[:, None])[:, 0] - shifted.exp().sum(-1).log()


def neg_cross_entropy(
    labels: Any, *, model: ModelHandle | None = None, position: Any = None
) -> Metric:
    """Minus the cross-entropy of the label (at the last position for sequences, or
    ``position``: see ``logit_diff``)."""
    return _rowwise(_neg_cross_entropy, position, _tokens("label", labels, model))


def correct_logprob(
    labels: Any, *, model: ModelHandle | None = None, position: Any = None
) -> Metric:
    """Log-probability of the label (same as ``neg_cross_entropy``, kept for readability)."""
    return neg_cross_entropy(labels, model=model, position=position)


def logit_diff(
    correct: torch.Tensor | str | int | Sequence[str],
    wrong: torch.Tensor | str | int | Sequence[str],
    *,
    model: ModelHandle | None = None,
    position: Any = None,
) -> Metric:
    """Logit of ``correct`` minus logit of ``wrong`` (at the last position for sequences).

    Each is a tensor of ids ``[batch]``, one id or token string for every example, or a
    list of token strings (one per example); strings are read with ``model``'s tokenizer:
    ``logit_diff(" Mary", " John", model=model)``. ``position`` reads another position:
    one index, or one per example (``model.last_positions(tokens)`` for a right-padded
    batch; left-padded batches, what ``to_tokens`` gives a decoder, end every prompt at -1).

    >>> m = logit_diff(2, 0)
    >>> m(torch.tensor([[1.0, 0.0, 3.0], [0.0, 0.0, -1.0]])).tolist()
    [2.0, -1.0]
    """
    return _rowwise(
        _logit_diff, position, _tokens("correct", correct, model), _tokens("wrong", wrong, model)
    )


def _logit_diff(logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    last = _last(logits)
    correct, wrong = _in_range("correct", correct, logits), _in_range("wrong", wrong, logits)
    if correct.ndim == 0 and wrong.ndim == 0:
        return last[:, correct] - last[:, wrong]
    correct, wrong = correct.expand(last.shape[0]), wrong.expand(last.shape[0])
    return (last.gather(-1, correct[:, None]) - last.gather(-1, wrong[:, None])).squeeze(-1)


@renamed_arguments(tokens="inputs")
def next_token_loss(inputs: torch.Tensor, positions: slice | None = None) -> Metric:
    """Mean next-token cross-entropy per example over ``positions`` (of the predictions).

    Prediction ``i`` (logits at position ``i``) is scored on ``inputs[:, i + 1]`` (token
    ids). Lower is better, so interventions that hurt the model raise it.
    """
    tokens = check_tensor("inputs", torch.as_tensor(inputs), ndim=2, integer=True)
    sel = positions if positions is not None else slice(None)

    def metric(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logprobs = logits[:, :-1].float().log_softmax(-1)
        loss = -logprobs.gather(-1, targets[..., None]).squeeze(-1)
        return loss[:, sel].mean(-1)

    return _RowWise(metric, tokens[:, 1:], lower_is_better=True)


@renamed_arguments(tokens="inputs")
def repeated_half_loss(inputs: torch.Tensor) -> Metric:
    """Next-token loss on the second half of ``[BOS][L][L]`` (what induction lowers)."""
    half = (inputs.shape[1] - 1) // 2
    return next_token_loss(inputs, slice(half + 1, None))


@renamed_arguments(tokens="inputs")
def first_half_loss(inputs: torch.Tensor) -> Metric:
    """Next-token loss on the first (random, unpredictable) half of ``[BOS][L][L]``."""
    half = (inputs.shape[1] - 1) // 2
    return next_token_loss(inputs, slice(0, half))


def _halves(tokens: torch.Tensor) -> tuple[slice, slice]:
    """Prediction positions of the first and the repeated half of ``[BOS][L][L]``."""
    half = (tokens.shape[1] - 1) // 2
    if half < 1:
        raise ValueError(f"[BOS][L][L] needs L >= 1, got sequences of length {tokens.shape[1]}")
    return slice(0, half), slice(half + 1, None)


@renamed_arguments(tokens="inputs")
def in_context_learning_score(
    inputs: Int[torch.Tensor, "batch pos"],
    early: slice | None = None,
    late: slice | None = None,
) -> Metric:
    """Per example: mean loss on the ``late`` predictions minus on the ``early`` ones.

    Prediction ``i`` scores ``inputs[:, i + 1]``. Defaults: the repeated and first half of
    ``[BOS][L][L]`` (the first prediction of the repeat is left out: nothing predicts it).

    >>> from explorer.data import repeated_tokens
    >>> t = repeated_tokens(2, 5, 20)
    >>> score = in_context_learning_score(t)
    >>> tuple(score(torch.zeros(2, 11, 20)).shape)  # uniform logits: no help from context
    (2,)
    """
    tokens = check_tensor("inputs", torch.as_tensor(inputs), ndim=2, integer=True)
    first, repeated = _halves(tokens)
    early_loss = next_token_loss(tokens, early if early is not None else first)
    late_loss = next_token_loss(tokens, late if late is not None else repeated)
    return lambda logits: late_loss(logits) - early_loss(logits)


@renamed_arguments(tokens="inputs")
def repeated_half_advantage(inputs: Int[torch.Tensor, "batch pos"]) -> Metric:
    """Per example: first-half loss minus repeated-half loss on ``[BOS][L][L]`` (> 0 = induction)."""
    score = in_context_learning_score(inputs)
    return lambda logits: -score(logits)


SAME_METRIC = 1e-12  # a clean-vs-corrupted gap this small is no gap


@renamed_arguments(clean="clean_value", corrupted="corrupted_value")
def recovery(values: torch.Tensor, clean_value: float, corrupted_value: float) -> torch.Tensor:
    """``(values - corrupted_value) / (clean_value - corrupted_value)``: where each patched
    value (a metric) lies between
    the corrupted (0) and the clean (1) metric. NaN everywhere when the clean and corrupted
    inputs give the same metric (the fraction is undefined: there is nothing to recover).

    >>> recovery(torch.tensor([1.0, 2.0, 3.0]), clean_value=3.0, corrupted_value=1.0).tolist()
    [0.0, 0.5, 1.0]
    >>> recovery(torch.tensor([1.0]), clean_value=2.0, corrupted_value=2.0).isnan().all().item()
    True
    """
    span = clean_value - corrupted_value
    if abs(span) < SAME_METRIC:
        return torch.full_like(values, float("nan"), dtype=torch.float32)
    return (values - corrupted_value) / span


LOSS_WORDS = ("loss", "error", "entropy", "perplexity", "nll")


def lower_is_better(metric: Metric, name: str = "") -> bool:
    """Whether a lower value of ``metric`` is better for the model (a loss), so that a view
    can colour "worse for the model" the same way whatever the metric's sign.

    Built-in metrics know; for any other function the name (its ``name`` or ``__name__``)
    decides: a loss, error, entropy, perplexity or NLL is lower-better.

    >>> lower_is_better(next_token_loss(torch.zeros(1, 4, dtype=torch.long)))
    True
    >>> lower_is_better(accuracy(torch.tensor([1])))
    False
    >>> lower_is_better(lambda logits: logits[:, 0], name="my loss")
    True
    """
    known = getattr(metric, "lower_is_better", None)
    if isinstance(known, bool):
        return known
    text = (name or getattr(metric, "__name__", "")).lower()
    return any(word in text for word in LOSS_WORDS)


#: metric builders by name, with what each needs (a metric closes over its targets)
BUILDERS = {
    "accuracy": "accuracy(labels)",
    "neg_cross_entropy": "neg_cross_entropy(labels)",
    "correct_logprob": "correct_logprob(labels)",
    "logit_diff": "logit_diff(correct, wrong)",
    "next_token_loss": "next_token_loss(tokens)",
    "repeated_half_loss": "repeated_half_loss(tokens)",
    "first_half_loss": "first_half_loss(tokens)",
}


def check_metric(metric: object) -> Metric:
    """``metric`` if it is a function ``logits -> Tensor[batch]``, else a TypeError that
    says how to build one (a name such as ``"accuracy"`` needs what it compares against).

    >>> check_metric("accuracy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: metric='accuracy' is a name, not a metric: ... metric=metrics.accuracy(labels) ...
    """
    builder = next((n for n in BUILDERS if metric is globals().get(n)), None)
    if builder is not None:
        raise TypeError(
            f"metric=metrics.{builder} is the builder, not a metric: call it with what it "
            f"compares against, metric=metrics.{BUILDERS[builder]}"
        )
    if callable(metric):
        return metric  # type: ignore[return-value]
    known = ", ".join(f"metrics.{b}" for b in BUILDERS.values())
    if isinstance(metric, str):
        key = metric.strip().lower().replace("-", "_").replace(" ", "_")
        if key in BUILDERS:
            raise TypeError(
                f"metric={metric!r} is a name, not a metric: a metric is a function "
                f"logits -> Tensor[batch] that holds what it compares against; pass "
                f"metric=metrics.{BUILDERS[key]} (from explorer.analysis import metrics)"
            )
        raise TypeError(
            f"metric={metric!r} is not a metric: pass a function logits -> Tensor[batch], "
            f"such as {known}"
        )
    raise TypeError(
        f"metric must be a function logits -> Tensor[batch] (such as {known}), "
        f"got {type(metric).__name__}"
    )


def _per_example(value: object, batch: int) -> torch.Tensor:
    if callable(value) and not isinstance(value, torch.Tensor):
        raise TypeError(
            "the metric returned a function, not values: pass a built metric such as "
            "metrics.accuracy(labels), not the builder metrics.accuracy"
        )
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=torch.float32)
    if value.ndim == 0:
        value = value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(
            f"a metric must return one value per example (shape [{batch}]), got {list(value.shape)}"
        )
    return value


# evaluate and evaluate_copies run inside remote traces (NDIF ships their source): no
# argument shim wraps them, and callers pass batch_size positionally.
def evaluate(metric: Metric, logits: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Apply ``metric`` and check it returned one finite number per example (of the
    ``batch_size`` examples in ``logits``)."""
    value = _per_example(check_metric(metric)(logits), batch_size)
    if not torch.isfinite(value).all():
        raise ValueError("the metric returned NaN or infinite values")
    return value.detach().float()


def evaluate_copies(
    metric: Metric, logits: torch.Tensor, copies: int, batch_size: int
) -> torch.Tensor:
    """``[copies, batch_size]``: the metric of each of ``copies`` batches stacked in
    ``logits``, checked like ``evaluate`` (finiteness once for all copies).

    Built-in metrics score all copies in one call (same values: they are row-wise); any
    other metric is called once per copy on that copy's ``[batch, ...]`` logits.
    """
    batch = batch_size
    check_metric(metric)
    if isinstance(metric, _RowWise):
        value = metric.copies(logits, copies, batch)
        if value is not None:
            out = _per_example(value, copies * batch).reshape(copies, batch)
            if not torch.isfinite(out).all():
                raise ValueError("the metric returned NaN or infinite values")
            return out.detach().float()
    logits = logits.reshape(copies, batch, *logits.shape[1:])
    out = torch.stack([_per_example(metric(logits[c]), batch) for c in range(copies)])
    if not torch.isfinite(out).all():
        raise ValueError("the metric returned NaN or infinite values")
    return out.detach().float()
