"""Confusions of image classifiers, per-unit error attribution, and weight edits of chosen units.

``confusion`` counts which classes the model mistakes for which. ``error_attribution``
scores each unit of a layer by how much it pushes the class's hard examples toward the
wrong answer (activation x gradient of the margin, the first-order effect of removing the
unit). ``scale_units`` multiplies chosen units' weights by a factor (0 = ablation written
into the weights). The experiment that edits the attributed units against equal-size
random sets is a recipe: ``explorer.studies.editing.targeted_edit``.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> conf = confusion(model, torch.rand(20, 1, 28, 28), labels=torch.arange(20) % 10)
>>> tuple(conf.matrix.shape), int(conf.matrix.sum())
((10, 10), 20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isfinite
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import nn

from explorer._checks import (
    check_choice,
    check_index,
    check_model,
    check_positive,
    check_tensor,
)
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, long_frame
from explorer.analysis.units import Neuron, units_of_type

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "Confusion",
    "confusion",
    "error_attribution",
    "predict",
    "scale_units",
]


# ------------------------------------------------------------------ confusion
@dataclass(frozen=True, repr=False)
class Confusion(Shown):
    """``matrix[true, predicted]`` counts and the predictions they came from."""

    matrix: Int[torch.Tensor, "true pred"]
    predictions: Int[torch.Tensor, " n"]
    labels: Int[torch.Tensor, " n"]

    @property
    def per_class_accuracy(self) -> Float[torch.Tensor, " cls"]:
        totals = self.matrix.sum(1).clamp_min(1)
        return self.matrix.diagonal().float() / totals

    @property
    def accuracy(self) -> float:
        return float(self.matrix.diagonal().sum()) / max(1, int(self.matrix.sum()))

    @property
    def most_confused_class(self) -> int:
        """The class with the lowest accuracy (ties: the one with most errors)."""
        errors = self.matrix.sum(1) - self.matrix.diagonal()
        order = sorted(
            range(len(errors)), key=lambda c: (float(self.per_class_accuracy[c]), -int(errors[c]))
        )
        return order[0]

    @renamed_arguments(k="n")
    def top_confusions(self, n: int = 5) -> list[tuple[int, int, int]]:
        """``(true, predicted, count)`` for the ``n`` most frequent mistakes."""
        off = self.matrix.clone()
        off.fill_diagonal_(0)
        values, flat = off.flatten().topk(min(n, off.numel()))
        width = off.shape[1]
        return [(int(i) // width, int(i) % width, int(v)) for v, i in zip(values, flat) if v > 0]

    def misclassified(self, true: int | None = None) -> Int[torch.Tensor, " m"]:
        """Indices of wrong predictions (of class ``true`` only, if given)."""
        wrong = self.predictions != self.labels
        if true is not None:
            wrong &= self.labels == true
        return wrong.nonzero().flatten()

    def to_dataframe(self) -> Any:
        """One row per (true, predicted) pair of classes: ``true``, ``predicted``, ``count``.
        The matrix: ``frame.pivot(index="true", columns="predicted", values="count")``."""
        return long_frame(self.matrix.long(), ("true", "predicted"), "count")

    def _summary(self) -> str:
        return (
            f"{self.matrix.shape[0]} classes, {len(self.labels)} examples, accuracy "
            f"{self.accuracy:.3g}; least accurate class {self.most_confused_class}"
        )

    def _top(self) -> list[str]:
        return [f"{t} as {p} x{n}" for t, p, n in self.top_confusions(3)]

    def _table(self) -> tuple:
        rows = []
        for c in range(min(self.matrix.shape[0], MAX_ROWS)):
            wrong = self.matrix[c].clone()
            wrong[c] = 0
            often = f"{int(wrong.argmax())} (x{int(wrong.max())})" if wrong.sum() else ""
            rows.append(
                (f"class {c}", int(self.matrix[c].sum()), float(self.per_class_accuracy[c]), often)
            )
        header = ("true class", "examples", "accuracy", "most often taken for")
        return (
            "Confusion",
            header,
            rows,
            f"accuracy {self.accuracy:.3g}; to_dataframe() has the matrix",
        )


@torch.no_grad()
def predict(model: ModelHandle, inputs: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
    """The model's predicted class per input (argmax of the logits), in batches."""
    inputs = check_model(model, "predict").check_inputs(inputs)
    check_positive("batch_size", batch_size)
    return torch.cat(
        [model(inputs[i : i + batch_size]).argmax(-1) for i in range(0, len(inputs), batch_size)]
    )


def confusion(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor,
    n_classes: int | None = None,
) -> Confusion:
    """Confusion matrix of ``model`` on labelled inputs."""
    inputs = check_model(model, "confusion").check_inputs(inputs)
    if labels is None:
        raise TypeError("confusion needs labels=: the true class id of every input")
    labels = check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True).long()
    if labels.shape[0] != inputs.shape[0]:
        raise ValueError(f"{inputs.shape[0]} inputs but {labels.shape[0]} labels")
    if n_classes is not None:
        check_positive("n_classes", n_classes)
    n = n_classes or model.n_outputs or int(labels.max()) + 1
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n:
        raise ValueError(
            f"labels must be class ids in 0..{n - 1} ({n} classes"
            + (" given by n_classes" if n_classes else f" of {model.name}'s outputs")
            + f"), got range {lo}..{hi}"
        )
    preds = predict(model, inputs)
    if int(preds.max()) >= n:
        raise ValueError(
            f"n_classes={n} but {model.name} predicts classes up to {int(preds.max())}: "
            f"give n_classes >= {int(preds.max()) + 1}"
        )
    matrix = torch.bincount(labels * n + preds, minlength=n * n).reshape(n, n)
    return Confusion(matrix, preds, labels)


# ------------------------------------------------------------ unit selection
def _hard_examples(
    model: ModelHandle, images: torch.Tensor, labels: torch.Tensor, target: int, n_hard: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target class's examples with the lowest margin (errors first), and the runner-up."""
    idx = (labels == target).nonzero().flatten()
    if idx.numel() == 0:
        raise ValueError(f"no examples of class {target} to learn from")
    with torch.no_grad():
        logits = model(images[idx])
    others = logits.clone()
    others[:, target] = -torch.inf
    runner_up = others.argmax(-1)
    margin = logits[:, target] - others.max(-1).values
    keep = margin.argsort()[: min(n_hard, idx.numel())]
    return idx[keep], runner_up[keep]


@renamed_arguments(target_class="target")
def error_attribution(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor,
    target: int,
    layer: int,
    n_hard: int = 64,
) -> Float[torch.Tensor, " unit"]:
    """Per unit of ``layer``: mean over the class's hardest examples of
    ``-activation x d(margin)/d(activation)``, where margin = logit(target) - logit(runner-up).

    Positive scores mark units whose removal would (to first order) raise the margin: the
    units that push these examples toward the wrong class.
    """
    images = model.check_inputs(inputs)
    labels = torch.as_tensor(labels).long()
    check_index("target", target, model.n_outputs or 0)
    check_positive("n_hard", n_hard)
    idx, runner_up = _hard_examples(model, images, labels, target, n_hard)
    name = model.check_hook(f"blocks.{model.check_layer(layer)}.mlp.hook_post")
    store: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook: object) -> None:
        act.retain_grad()
        store["act"] = act

    with model.hooks([(name, keep)]):
        logits = model(images[idx])
    rows = torch.arange(len(idx))
    margin = logits[rows, target] - logits[rows, runner_up]
    margin.sum().backward()
    act = store["act"]
    score = -(act * act.grad)  # type: ignore[operator]
    model.zero_grad()
    if score.ndim > 2:  # conv: sum over positions
        score = score.flatten(2).sum(2)
    return score.mean(0).detach()


# ----------------------------------------------------------------- editing
WEIGHTS = ("outgoing", "incoming", "both")


def unit_weight_masks(
    model: ModelHandle,
    *,
    units: Neuron | str | Sequence[Neuron | str],
    weights: str = "outgoing",
) -> dict[nn.Parameter, torch.Tensor]:
    """For each of ``model``'s parameters that holds weights of ``units``, a mask of the same
    shape (1 on the units' own entries): their incoming weights and bias (``"incoming"``),
    the next layer's weights that read them (``"outgoing"``), or both.

    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(4,))
    >>> masks = unit_weight_masks(m, units="neuron 0.1")
    >>> [int(mask.sum()) for mask in masks.values()]  # 10 logits read neuron 1
    [10]
    """
    if model.is_transformer:
        raise ValueError("weight edits here are for plain image models (MLP / CNN)")
    check_choice("weights", weights, WEIGHTS)
    by_layer: dict[int, list[int]] = {}
    for unit in units_of_type(model, units=units, cls=Neuron, what="units"):
        by_layer.setdefault(unit.layer, []).append(unit.neuron)
    masks: dict[nn.Parameter, torch.Tensor] = {}
    for layer, chosen in by_layer.items():
        for param, mask in model.unit_weight_masks(layer, chosen, weights).items():
            masks[param] = torch.maximum(masks[param], mask) if param in masks else mask
    return masks


def scale_units(
    model: ModelHandle,
    *,
    units: Neuron | str | Sequence[Neuron | str],
    factor: float = 0.5,
    weights: str = "outgoing",
) -> ModelHandle:
    """A copy of ``model`` with the ``units``' weights multiplied by ``factor``.

    With ``weights="outgoing"`` (default) the next layer reads the units ``factor`` times as
    strongly: 0 removes them (a zero ablation written into the weights), 1 changes nothing.

    >>> from explorer.models import zoo
    >>> from explorer.analysis.units import Neuron
    >>> m = zoo.mnist_mlp(hidden=(4,))
    >>> damped = scale_units(m, units=[Neuron(0, 1)], factor=0.5)
    >>> w0, w1 = m.unit_weights(0, 1, "outgoing"), damped.unit_weights(0, 1, "outgoing")
    >>> v0, v1 = m.unit_weights(0, 0, "outgoing"), damped.unit_weights(0, 0, "outgoing")
    >>> bool((w1 == 0.5 * w0).all()), bool((v1 == v0).all())
    (True, True)
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not isfinite(factor):
        raise ValueError(f"factor must be a finite number, got {factor!r}")
    edited = model.copy()
    with torch.no_grad():
        for p, m in unit_weight_masks(edited, units=units, weights=weights).items():
            p.mul_(1 - m * (1 - factor))
    return edited
