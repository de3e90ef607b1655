"""Reading what users pass as ``data`` to a view: a tensor, a dataset object, or a pair.

Views accept token ids ``[n, pos]``, text (a prompt or a list of prompts, tokenized by the
model), images ``[n, C, H, W]``, an ``ImageData`` (its test split), a ``ModularData`` (its
test split) or ``(inputs, labels)``; this module turns any
of them into the inputs tensor (checked against the model) and, when known, the labels.
"""

from __future__ import annotations

from typing import Any

import torch

from explorer._checks import check_model
from explorer.analysis import metrics
from explorer.analysis.metrics import Metric
from explorer.data import ImageData, ModularData
from explorer.models.handle import ModelHandle

__all__ = ["as_metrics", "check_model", "dataset_inputs", "default_metrics", "split_data"]


def split_data(data: Any) -> tuple[Any, torch.Tensor | None]:
    """``(inputs, labels or None)`` from any accepted form of ``data`` (text is passed on
    as it is: ``model.check_inputs`` tokenizes it)."""
    if isinstance(data, str) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data)
    ):
        return data, None
    if isinstance(data, ImageData):
        return data.test_images, data.test_labels
    if isinstance(data, ModularData):
        return data.test_tokens, data.test_labels
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return data[0], torch.as_tensor(data[1])
    if isinstance(data, torch.Tensor):
        return data, None
    raise TypeError(
        "data must be a tensor of inputs, text, (inputs, labels), an ImageData or a ModularData; "
        f"got {type(data).__name__}"
    )


def dataset_inputs(model: ModelHandle, data: Any) -> torch.Tensor:
    """The inputs tensor of ``data``, validated for ``model`` (token range, image shape)."""
    inputs, _ = split_data(data)
    return model.check_inputs(inputs)


def default_metrics(
    model: ModelHandle, inputs: torch.Tensor, labels: torch.Tensor | None
) -> dict[str, Metric]:
    """Metrics offered when the user passes none: loss for token data, accuracy with labels."""
    out: dict[str, Metric] = {}
    if labels is not None:
        out["accuracy"] = metrics.accuracy(labels)
        out["log prob of label"] = metrics.neg_cross_entropy(labels)
    elif model.is_transformer and inputs.shape[1] > 1:
        out["next-token loss"] = metrics.next_token_loss(inputs)
    if not out:
        raise ValueError(
            "no default metric for this data: pass metric=fn(logits) -> Tensor[batch] "
            "(see explorer.analysis.metrics) or labels with the data"
        )
    return out


def as_metrics(
    metric: Metric | dict[str, Metric] | None, fallback: dict[str, Metric]
) -> dict[str, Metric]:
    """A user's metric (a function, or names -> functions) as a non-empty dict."""
    if metric is None:
        return fallback
    if isinstance(metric, str):
        metrics.check_metric(metric)  # a name: says what to build
    if callable(metric):
        return {getattr(metric, "__name__", "metric").replace("<lambda>", "metric"): metric}
    if isinstance(metric, dict) and metric and all(callable(m) for m in metric.values()):
        return {str(k): v for k, v in metric.items()}
    raise TypeError(
        "metric must be a function logits -> Tensor[batch] or a non-empty dict of them, "
        f"got {type(metric).__name__}"
    )
