"""The names a hypothesis file may use for measures and metrics, and what they mean here.

A hypothesis file is data, never code: a name means only what this session's registries
say, the built-in metrics (``METRICS``) and what the user registered here with
``register_measure(name, fn)`` / ``register_metric(name, fn)``. Nothing is imported because a
file named it; an unknown name raises ``MeasureUnavailable``, which a verdict reports.

>>> register_metric("always_zero", lambda examples: lambda logits: logits[:, 0, 0] * 0)
>>> "always_zero" in registered_metrics()
True
>>> unregister_metric("always_zero")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from explorer.analysis import metrics
from explorer.hypotheses.examples import Examples

__all__ = [
    "METRICS",
    "MeasureUnavailable",
    "MetricBuilder",
    "build_metric",
    "check_metric_name",
    "register_measure",
    "register_metric",
    "registered_measures",
    "registered_metrics",
    "unregister_measure",
    "unregister_metric",
]

MetricBuilder = Callable[[Examples], metrics.Metric]

METRICS: dict[str, MetricBuilder] = {
    "accuracy": lambda ex: metrics.accuracy(ex.require("labels", "the accuracy metric")),
    "neg_cross_entropy": lambda ex: metrics.neg_cross_entropy(
        ex.require("labels", "the neg_cross_entropy metric")
    ),
    "correct_logprob": lambda ex: metrics.correct_logprob(
        ex.require("labels", "the correct_logprob metric")
    ),
    "logit_diff": lambda ex: metrics.logit_diff(
        ex.require("labels", "the logit_diff metric"),
        ex.require("alt_labels", "the logit_diff metric"),
    ),
    "next_token_loss": lambda ex: metrics.next_token_loss(ex.inputs),
    "repeated_half_loss": lambda ex: metrics.repeated_half_loss(ex.inputs),
    "first_half_loss": lambda ex: metrics.first_half_loss(ex.inputs),
}


_USER_MEASURES: dict[str, Callable[..., Any]] = {}
_USER_METRICS: dict[str, MetricBuilder] = {}


class MeasureUnavailable(LookupError):
    """A stored hypothesis names a measure or metric that this session has not registered."""


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {what} needs a non-empty name, got {name!r}")
    return name


def register_measure(name: str, fn: Callable[..., Any]) -> None:
    """Let stored hypotheses use ``fn(model, examples, units) -> Tensor[batch]`` as ``name``.

    Registration lives in this Python session only: a hypothesis file can name a measure,
    but only code the user ran here can define one.
    """
    _check_name(name, "measure")
    if not callable(fn):
        raise TypeError(f"register_measure({name!r}, fn): fn must be callable, got {fn!r}")
    _USER_MEASURES[name] = fn


def register_metric(name: str, builder: MetricBuilder) -> None:
    """Let ``AblationEffect``/``PatchingRecovery`` use ``builder(examples) -> metric`` as ``name``."""
    _check_name(name, "metric")
    if name in METRICS:
        raise ValueError(f"{name!r} is a built-in metric: choose another name")
    if not callable(builder):
        raise TypeError(f"register_metric({name!r}, builder): builder must be callable")
    _USER_METRICS[name] = builder


def unregister_measure(name: str) -> None:
    _USER_MEASURES.pop(name, None)


def unregister_metric(name: str) -> None:
    _USER_METRICS.pop(name, None)


def registered_measures() -> dict[str, Callable[..., Any]]:
    """The measures registered in this session, by name."""
    return dict(_USER_MEASURES)


def registered_metrics() -> tuple[str, ...]:
    """Every metric name usable here: the built-ins, then this session's."""
    return (*METRICS, *_USER_METRICS)


def _unavailable(kind: str, name: str, how: str) -> MeasureUnavailable:
    return MeasureUnavailable(
        f"unavailable: {kind} {name!r} is not registered here; if you trust what it names, "
        f"define it in this session and call explorer.hypotheses.{how}({name!r}, fn)"
    )


def build_metric(name: str, examples: Examples) -> metrics.Metric:
    """The metric called ``name`` (built-in or registered in this session) for these examples."""
    if name in METRICS:
        return METRICS[name](examples)
    if name in _USER_METRICS:
        return _USER_METRICS[name](examples)
    raise _unavailable("metric", name, "register_metric")


def check_metric_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"metric must be a name: one of {', '.join(map(repr, registered_metrics()))}, "
            f"or one registered with register_metric(name, fn); got {name!r}"
        )
