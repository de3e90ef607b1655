"""Confusions and targeted weight edits of image classifiers, measured against random edits.

``confusion`` counts which classes the model mistakes for which. ``error_attribution``
scores each unit of a layer by how much it pushes the class's hard examples toward the
wrong answer (activation x gradient of the margin, the first-order effect of removing the
unit). Two edits touch only chosen units: ``scale_units`` multiplies their weights by a
factor (0 = ablation written into the weights), ``fine_tune_units`` trains only their
weights. ``targeted_edit`` applies one of them to the units the attribution picks and,
identically, to equal-size random sets of units, and reports per-class accuracy on
held-out images, so the edit's effect is measured against chance, not assumed.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> conf = confusion(model, torch.rand(20, 1, 28, 28), torch.arange(20) % 10)
>>> tuple(conf.matrix.shape), int(conf.matrix.sum())
((10, 10), 20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import isfinite
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import nn

from explorer._checks import check_choice, check_index, check_positive, check_tensor
from explorer._repr import compact_repr

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle


# ------------------------------------------------------------------ confusion
@dataclass(frozen=True)
class Confusion:
    """``matrix[true, predicted]`` counts and the predictions they came from."""

    __repr__ = compact_repr

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

    def top_confusions(self, k: int = 5) -> list[tuple[int, int, int]]:
        """``(true, predicted, count)`` for the ``k`` most frequent mistakes."""
        off = self.matrix.clone()
        off.fill_diagonal_(0)
        values, flat = off.flatten().topk(min(k, off.numel()))
        n = off.shape[1]
        return [(int(i) // n, int(i) % n, int(v)) for v, i in zip(values, flat) if v > 0]

    def misclassified(self, true: int | None = None) -> Int[torch.Tensor, " m"]:
        """Indices of wrong predictions (of class ``true`` only, if given)."""
        wrong = self.predictions != self.labels
        if true is not None:
            wrong &= self.labels == true
        return wrong.nonzero().flatten()


@torch.no_grad()
def predict(model: ModelHandle, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's predicted class per image (argmax of the logits), in batches."""
    images = model.check_inputs(images)
    return torch.cat(
        [
            model.model(images[i : i + batch_size]).argmax(-1)
            for i in range(0, len(images), batch_size)
        ]
    )


def confusion(
    model: ModelHandle, images: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None
) -> Confusion:
    """Confusion matrix of ``model`` on labelled images."""
    labels = check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True).long()
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    n = n_classes or model.n_outputs or int(labels.max()) + 1
    preds = predict(model, images)
    matrix = torch.bincount(labels * n + preds, minlength=n * n).reshape(n, n)
    return Confusion(matrix, preds, labels)


# ------------------------------------------------------------ unit selection
def _layer_modules(model: ModelHandle, layer: int) -> tuple[nn.Module, nn.Module | None]:
    """The weighted module that computes ``layer`` and the next weighted module (reads it)."""
    if model.is_transformer:
        raise ValueError("weight edits here are for plain image models (MLP / CNN)")
    layer = model.check_layer(layer)
    wrapped = model.model
    named = dict(wrapped.module.named_modules())  # type: ignore[union-attr]
    blocks = wrapped.found_blocks  # type: ignore[union-attr]
    incoming = named[blocks[layer].pre]
    if layer + 1 < len(blocks):
        outgoing: nn.Module | None = named[blocks[layer + 1].pre]
    else:
        out_name = wrapped.output_layer  # type: ignore[union-attr]
        outgoing = named[out_name] if out_name is not None else None
    return incoming, outgoing


def _hard_examples(
    model: ModelHandle, images: torch.Tensor, labels: torch.Tensor, target: int, n_hard: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target class's examples with the lowest margin (errors first), and the runner-up."""
    idx = (labels == target).nonzero().flatten()
    if idx.numel() == 0:
        raise ValueError(f"no examples of class {target} to learn from")
    with torch.no_grad():
        logits = model.model(images[idx])
    others = logits.clone()
    others[:, target] = -torch.inf
    runner_up = others.argmax(-1)
    margin = logits[:, target] - others.max(-1).values
    keep = margin.argsort()[: min(n_hard, idx.numel())]
    return idx[keep], runner_up[keep]


def error_attribution(
    model: ModelHandle,
    images: torch.Tensor,
    labels: torch.Tensor,
    target_class: int,
    layer: int,
    n_hard: int = 64,
) -> Float[torch.Tensor, " unit"]:
    """Per unit of ``layer``: mean over the class's hardest examples of
    ``-activation x d(margin)/d(activation)``, where margin = logit(target) - logit(runner-up).

    Positive scores mark units whose removal would (to first order) raise the margin: the
    units that push these examples toward the wrong class.
    """
    images = model.check_inputs(images)
    labels = torch.as_tensor(labels).long()
    check_index("target_class", target_class, model.n_outputs or 0)
    check_positive("n_hard", n_hard)
    idx, runner_up = _hard_examples(model, images, labels, target_class, n_hard)
    name = model.check_hook(f"blocks.{model.check_layer(layer)}.mlp.hook_post")
    store: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook: object) -> None:
        act.retain_grad()
        store["act"] = act

    with model.hooks([(name, keep)]):
        logits = model.model(images[idx])
    rows = torch.arange(len(idx))
    margin = logits[rows, target_class] - logits[rows, runner_up]
    margin.sum().backward()
    act = store["act"]
    score = -(act * act.grad)  # type: ignore[operator]
    model.model.zero_grad(set_to_none=True)
    if score.ndim > 2:  # conv: sum over positions
        score = score.flatten(2).sum(2)
    return score.mean(0).detach()


# ----------------------------------------------------------------- editing
WEIGHTS = ("outgoing", "incoming", "both")
EDITS = ("scale", "fine_tune")


def _unit_masks(
    incoming: nn.Module, outgoing: nn.Module | None, units: torch.Tensor, weights: str
) -> dict[nn.Parameter, torch.Tensor]:
    """Masks (1 = the units' own weights) for each parameter the edit may change."""
    masks: dict[nn.Parameter, torch.Tensor] = {}
    w = incoming.weight  # type: ignore[union-attr]
    if weights in ("incoming", "both"):
        m = torch.zeros_like(w)
        m[units] = 1
        masks[w] = m
        if getattr(incoming, "bias", None) is not None:
            b = torch.zeros_like(incoming.bias)  # type: ignore[union-attr, arg-type]
            b[units] = 1
            masks[incoming.bias] = b  # type: ignore[index]
    if outgoing is not None and weights in ("outgoing", "both"):
        w2 = outgoing.weight  # type: ignore[union-attr]
        m2 = torch.zeros_like(w2)
        n_units = w.shape[0]
        if isinstance(outgoing, nn.Linear) and w2.shape[1] != n_units:
            # a conv layer flattened into a Linear: each channel owns a block of columns
            per = w2.shape[1] // n_units
            m2.view(w2.shape[0], n_units, per)[:, units] = 1
        else:
            m2[:, units] = 1
        masks[w2] = m2
    return masks


def _check_units(model: ModelHandle, layer: int, units: Sequence[int] | torch.Tensor):
    units = torch.as_tensor(units, dtype=torch.long).flatten()
    width = model.layer_widths[model.check_layer(layer)]
    if units.numel() == 0:
        raise ValueError("give at least one unit to edit")
    if int(units.min()) < 0 or int(units.max()) >= width:
        raise ValueError(f"units must lie in 0..{width - 1} (layer {layer} has {width})")
    return units


def scale_units(
    model: ModelHandle,
    layer: int,
    units: Sequence[int] | torch.Tensor,
    factor: float = 0.5,
    *,
    weights: str = "outgoing",
) -> ModelHandle:
    """A copy of ``model`` with the ``units``' weights multiplied by ``factor``.

    With ``weights="outgoing"`` (default) the next layer reads the units ``factor`` times as
    strongly: 0 removes them (a zero ablation written into the weights), 1 changes nothing.

    >>> from explorer.models import zoo
    >>> m = zoo.mnist_mlp(hidden=(4,))
    >>> damped = scale_units(m, 0, [1], 0.5)
    >>> w0, w1 = m.model.module[3].weight, damped.model.module[3].weight
    >>> bool((w1[:, 1] == 0.5 * w0[:, 1]).all()), bool((w1[:, 0] == w0[:, 0]).all())
    (True, True)
    """
    units = _check_units(model, layer, units)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not isfinite(factor):
        raise ValueError(f"factor must be a finite number, got {factor!r}")
    edited = model.copy()
    incoming, outgoing = _layer_modules(edited, layer)
    masks = _unit_masks(incoming, outgoing, units, check_choice("weights", weights, WEIGHTS))
    with torch.no_grad():
        for p, m in masks.items():
            p.mul_(1 - m * (1 - factor))
    return edited


def fine_tune_units(
    model: ModelHandle,
    layer: int,
    units: Sequence[int] | torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 100,
    lr: float = 1e-2,
    batch_size: int = 64,
    weights: str = "outgoing",
    seed: int = 0,
) -> ModelHandle:
    """A copy of ``model`` where only ``units`` of ``layer`` (their incoming weights and bias
    and/or their outgoing weights) are trained on ``images, labels`` with Adam; all else is
    frozen. Minibatches are drawn with ``seed``."""
    units = _check_units(model, layer, units)
    check_positive("steps", steps)
    check_positive("batch_size", batch_size)
    images = model.check_inputs(images)
    labels = torch.as_tensor(labels).long()
    edited = model.copy()
    incoming, outgoing = _layer_modules(edited, layer)
    masks = _unit_masks(incoming, outgoing, units, check_choice("weights", weights, WEIGHTS))
    params = list(masks)
    for p in edited.model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    edited.model.train()
    for _ in range(steps):
        batch = torch.randint(
            0, images.shape[0], (min(batch_size, images.shape[0]),), generator=gen
        )
        loss = F.cross_entropy(edited.model(images[batch]), labels[batch])
        optimiser.zero_grad()
        loss.backward()
        for p, m in masks.items():
            p.grad.mul_(m)  # type: ignore[union-attr]
        optimiser.step()
    edited.model.eval()
    for p in edited.model.parameters():
        p.requires_grad_(True)
    return edited


@dataclass(frozen=True)
class EditComparison:
    """Held-out per-class accuracy before and after a targeted and equal-size random edits,
    and the target class's held-out mean margin.

    The margin of an image of class ``c`` is ``logit[c] - max_{j != c} logit[j]`` (> 0 when
    it is classified right); ``margin_*`` average it over the held-out images of the target
    class. Accuracy moves only when an image crosses the boundary, so on ~100 images of a
    class a real but small edit often moves it by 0-3 images; the margin shows the same
    edit's effect on every image.
    """

    __repr__ = compact_repr

    target_class: int
    layer: int
    method: str
    units: tuple[int, ...]
    random_units: tuple[tuple[int, ...], ...]
    accuracy_before: Float[torch.Tensor, " cls"]
    accuracy_targeted: Float[torch.Tensor, " cls"]
    accuracy_random: Float[torch.Tensor, "draw cls"]
    overall_before: float
    overall_targeted: float
    overall_random: Float[torch.Tensor, " draw"]
    margin_before: float = float("nan")
    margin_targeted: float = float("nan")
    margin_random: Float[torch.Tensor, " draw"] | None = None

    @property
    def targeted_margin_gain(self) -> float:
        """Change of the target class's held-out mean margin under the targeted edit."""
        return self.margin_targeted - self.margin_before

    @property
    def random_margin_gains(self) -> Float[torch.Tensor, " draw"]:
        """The same under each random edit."""
        if self.margin_random is None:
            raise ValueError("this comparison was made without margins")
        return self.margin_random - self.margin_before

    @property
    def random_margin_at_least_as_good(self) -> float:
        """Share of random edits whose margin gain reaches the targeted one (a permutation
        p-value with the targeted edit counted as one draw: 1 / (n_random + 1) at best)."""
        gains = self.random_margin_gains
        hits = int((gains >= self.targeted_margin_gain - 1e-9).sum())
        return (hits + 1) / (len(gains) + 1)

    @property
    def targeted_gain(self) -> float:
        """Change of the target class's held-out accuracy under the targeted edit."""
        c = self.target_class
        return float(self.accuracy_targeted[c] - self.accuracy_before[c])

    @property
    def random_gains(self) -> Float[torch.Tensor, " draw"]:
        """The same under each random edit."""
        c = self.target_class
        return self.accuracy_random[:, c] - self.accuracy_before[c]

    @property
    def random_gain(self) -> float:
        """Mean of ``random_gains``."""
        return float(self.random_gains.mean())

    @property
    def random_at_least_as_good(self) -> float:
        """Share of random edits whose gain reaches the targeted one (a permutation p-value
        with the targeted edit counted as one draw)."""
        hits = int((self.random_gains >= self.targeted_gain - 1e-9).sum())
        return (hits + 1) / (len(self.random_gains) + 1)

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {
                "class": c,
                "before": float(self.accuracy_before[c]),
                "targeted edit": float(self.accuracy_targeted[c]),
                "random edit (mean)": float(self.accuracy_random[:, c].mean()),
                "random edit (sd)": float(self.accuracy_random[:, c].std()),
            }
            for c in range(self.accuracy_before.shape[0])
        ]


@torch.no_grad()
def _held_out(
    model: ModelHandle, images: torch.Tensor, labels: torch.Tensor, n: int, target: int
) -> tuple[torch.Tensor, float, float]:
    """Per-class accuracy, overall accuracy and the target class's mean margin."""
    labels = check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True).long()
    images = model.check_inputs(images)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    logits = torch.cat([model.model(images[i : i + 512]) for i in range(0, len(images), 512)])
    conf = Confusion(
        torch.bincount(labels * n + logits.argmax(-1), minlength=n * n).reshape(n, n),
        logits.argmax(-1),
        labels,
    )
    own = logits[labels == target]
    others = own.clone()
    others[:, target] = -torch.inf
    margin = float((own[:, target] - others.max(-1).values).mean()) if len(own) else float("nan")
    return conf.per_class_accuracy, conf.accuracy, margin


def repair_set(
    images: torch.Tensor, labels: torch.Tensor, target_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target class's examples plus as many examples of the other classes (replay, so
    the edit learns a boundary rather than a bias toward the target)."""
    labels = torch.as_tensor(labels).long()
    own = (labels == target_class).nonzero().flatten()
    rest = (labels != target_class).nonzero().flatten()
    gen = torch.Generator().manual_seed(seed)
    rest = rest[torch.randperm(rest.numel(), generator=gen)[: own.numel()]]
    idx = torch.cat([own, rest])
    return images[idx], labels[idx]


def targeted_edit(
    model: ModelHandle,
    edit_images: torch.Tensor,
    edit_labels: torch.Tensor,
    eval_images: torch.Tensor,
    eval_labels: torch.Tensor,
    target_class: int,
    *,
    layer: int | None = None,
    n_units: int = 2,
    n_random: int = 10,
    method: str = "scale",
    factor: float = 0.5,
    steps: int = 150,
    lr: float = 1e-2,
    weights: str = "outgoing",
    n_hard: int = 64,
    seed: int = 0,
) -> EditComparison:
    """Edit the ``n_units`` units that ``error_attribution`` ranks highest for
    ``target_class`` on the edit split, and ``n_random`` equal-size random unit sets the
    same way; score all on the evaluation split: per-class accuracy and the target class's
    mean margin (``EditComparison``).

    Args:
        model: the classifier (left unchanged; edits are made on copies).
        edit_images, edit_labels: the split the units are chosen on (and, for
            ``method="fine_tune"``, tuned on: its ``repair_set``).
        eval_images, eval_labels: held-out images the change is measured on.
        target_class: the class to repair (e.g. ``confusion(...).most_confused_class`` on a
            split other than the evaluation one).
        layer, n_units: where (default: the last hidden layer) and how many units to edit.
        n_random: random unit sets for the baseline.
        method: ``"scale"`` multiplies the units' ``weights`` by ``factor``
            (``scale_units``); ``"fine_tune"`` trains only them (``fine_tune_units`` with
            ``steps``, ``lr``). Targeted and random edits are identical but for the units.
        n_hard: hardest examples of the class the attribution averages over.
        seed: seeds the random unit sets and the fine-tune batches.

    >>> import torch
    >>> from explorer.models import zoo
    >>> m, x, y = zoo.mnist_mlp(hidden=(8,)), torch.rand(40, 1, 28, 28), torch.arange(40) % 10
    >>> result = targeted_edit(m, x, y, x, y, target_class=3, n_units=1, n_random=3)
    >>> len(result.units), len(result.random_units), tuple(result.accuracy_random.shape)
    (1, 3, (3, 10))
    """
    n_classes = model.n_outputs or int(torch.as_tensor(edit_labels).max()) + 1
    check_index("target_class", target_class, n_classes)
    layer = model.n_layers - 1 if layer is None else layer
    width = model.layer_widths[model.check_layer(layer)]
    check_index("n_units - 1", n_units - 1, width, f"(layer {layer} has {width} units)")
    check_positive("n_random", n_random)
    check_choice("method", method, EDITS)
    check_choice("weights", weights, WEIGHTS)
    scores = error_attribution(model, edit_images, edit_labels, target_class, layer, n_hard)
    units = scores.topk(n_units).indices.sort().values
    if method == "fine_tune":
        x, y = repair_set(edit_images, edit_labels, target_class, seed)

        def apply(chosen: torch.Tensor) -> ModelHandle:
            tune = {"steps": steps, "lr": lr, "weights": weights, "seed": seed}
            return fine_tune_units(model, layer, chosen, x, y, **tune)
    else:

        def apply(chosen: torch.Tensor) -> ModelHandle:
            return scale_units(model, layer, chosen, factor, weights=weights)

    held_out = (eval_images, eval_labels, n_classes, target_class)
    before, overall_before, margin_before = _held_out(model, *held_out)
    targeted, overall_targeted, margin_targeted = _held_out(apply(units), *held_out)
    gen = torch.Generator().manual_seed(seed + 1)
    random_sets, random_acc, random_overall, random_margin = [], [], [], []
    for _ in range(n_random):
        chosen = torch.randperm(width, generator=gen)[:n_units].sort().values
        acc, overall, margin = _held_out(apply(chosen), *held_out)
        random_sets.append(tuple(int(u) for u in chosen))
        random_acc.append(acc)
        random_overall.append(overall)
        random_margin.append(margin)
    return EditComparison(
        target_class=int(target_class),
        layer=int(layer),
        method=method,
        units=tuple(int(u) for u in units),
        random_units=tuple(random_sets),
        accuracy_before=before,
        accuracy_targeted=targeted,
        accuracy_random=torch.stack(random_acc),
        overall_before=overall_before,
        overall_targeted=overall_targeted,
        overall_random=torch.tensor(random_overall),
        margin_before=margin_before,
        margin_targeted=margin_targeted,
        margin_random=torch.tensor(random_margin),
    )
