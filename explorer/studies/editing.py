"""The MNIST kitchen sink's editing experiment: edit the units error attribution picks, and
equal-size random unit sets the same way, and compare them on held-out images.

``fine_tune_units`` trains only chosen units' weights. ``targeted_edit`` applies it (or
``explorer.analysis.editing.scale_units``) to the units ``error_attribution`` ranks highest
for a class and, identically, to random unit sets, and reports per-class accuracy and the
class's margin on held-out images (``EditComparison``), so the edit's effect is measured
against chance, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float

from explorer._checks import check_choice, check_index, check_positive, check_tensor
from explorer._deprecate import _warn, renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.editing import (
    WEIGHTS,
    Confusion,
    error_attribution,
    scale_units,
    unit_weight_masks,
)
from explorer.analysis.units import Neuron
from explorer.models.handle import ModelHandle

EDITS = ("scale", "fine_tune")


def fine_tune_units(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor,
    units: Neuron | str | Sequence[Neuron | str],
    steps: int = 100,
    lr: float = 1e-2,
    batch_size: int = 64,
    weights: str = "outgoing",
    seed: int = 0,
) -> ModelHandle:
    """A copy of ``model`` where only ``units`` (their incoming weights and bias and/or their
    outgoing weights, ``unit_weight_masks``) are trained on ``inputs, labels`` with Adam; all
    else is frozen. Minibatches are drawn with ``seed``."""
    check_positive("steps", steps)
    check_positive("batch_size", batch_size)
    images = model.check_inputs(inputs)
    labels = torch.as_tensor(labels).long()
    edited = model.copy()
    masks = unit_weight_masks(edited, units=units, weights=weights)
    params = list(masks)
    for p in edited.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    edited.train()
    for _ in range(steps):
        batch = torch.randint(
            0, images.shape[0], (min(batch_size, images.shape[0]),), generator=gen
        )
        loss = F.cross_entropy(edited(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        for p, m in masks.items():
            p.grad.mul_(m)  # type: ignore[union-attr]
        optimizer.step()
    edited.eval()
    for p in edited.parameters():
        p.requires_grad_(True)
    return edited


@dataclass(frozen=True, repr=False)
class EditComparison(Shown):
    """Held-out per-class accuracy before and after a targeted and equal-size random edits,
    and the target class's held-out mean margin.

    The margin of an image of class ``c`` is ``logit[c] - max_{j != c} logit[j]`` (> 0 when
    it is classified right); ``margin_*`` average it over the held-out images of the target
    class. Accuracy moves only when an image crosses the boundary, so on ~100 images of a
    class a real but small edit often moves it by 0-3 images; the margin shows the same
    edit's effect on every image.
    """

    target: int
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
        c = self.target
        return float(self.accuracy_targeted[c] - self.accuracy_before[c])

    @property
    def random_gains(self) -> Float[torch.Tensor, " draw"]:
        """The same under each random edit."""
        c = self.target
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

    def to_dataframe(self) -> Any:
        """``rows()`` as a table: one row per ``class``."""
        return pandas().DataFrame.from_records(self.rows())

    def _summary(self) -> str:
        return (
            f"{self.method} edit of {len(self.units)} units of layer {self.layer} for class "
            f"{self.target}: accuracy {self.accuracy_before[self.target]:.3g} -> "
            f"{self.accuracy_targeted[self.target]:.3g} ({self.targeted_gain:+.3g}; random "
            f"{self.random_gain:+.3g}, p {self.random_at_least_as_good:.2g}); overall "
            f"{self.overall_before:.3g} -> {self.overall_targeted:.3g}"
        )

    def _table(self) -> tuple:
        rows = [
            (f"class {r['class']}", r["before"], r["targeted edit"], r["random edit (mean)"])
            for r in self.rows()[:MAX_ROWS]
        ]
        header = ("class", "before", "targeted edit", "random edit (mean)")
        return f"Edit for class {self.target}", header, rows, self._summary()


def _old_target_class(self: EditComparison) -> int:
    _warn("EditComparison.target_class", "EditComparison.target", stacklevel=3)
    return self.target


EditComparison.target_class = property(_old_target_class, doc="Deprecated: ``target``.")  # type: ignore[attr-defined]


@torch.no_grad()
def _held_out(
    model: ModelHandle, images: torch.Tensor, labels: torch.Tensor, n: int, target: int
) -> tuple[torch.Tensor, float, float]:
    """Per-class accuracy, overall accuracy and the target class's mean margin."""
    labels = check_tensor("labels", torch.as_tensor(labels), ndim=1, integer=True).long()
    images = model.check_inputs(images)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    logits = torch.cat([model(images[i : i + 512]) for i in range(0, len(images), 512)])
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


@renamed_arguments(target_class="target")
def repair_set(
    images: torch.Tensor, labels: torch.Tensor, *, target: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target class's examples plus as many examples of the other classes (replay, so
    the edit learns a boundary rather than a bias toward the target)."""
    labels = torch.as_tensor(labels).long()
    own = (labels == target).nonzero().flatten()
    rest = (labels != target).nonzero().flatten()
    gen = torch.Generator().manual_seed(seed)
    rest = rest[torch.randperm(rest.numel(), generator=gen)[: own.numel()]]
    idx = torch.cat([own, rest])
    return images[idx], labels[idx]


@renamed_arguments(target_class="target")
def targeted_edit(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor,
    eval_inputs: torch.Tensor,
    eval_labels: torch.Tensor,
    target: int,
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
    ``target`` on the edit split, and ``n_random`` equal-size random unit sets the
    same way; score all on the evaluation split: per-class accuracy and the target class's
    mean margin (``EditComparison``).

    Args:
        model: the classifier (left unchanged; edits are made on copies).
        inputs, labels: the split the units are chosen on (and, for
            ``method="fine_tune"``, tuned on: its ``repair_set``).
        eval_inputs, eval_labels: held-out images the change is measured on.
        target: the class to repair (e.g. ``confusion(...).most_confused_class`` on a
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
    >>> result = targeted_edit(m, x, labels=y, eval_inputs=x, eval_labels=y, target=3,
    ...                        n_units=1, n_random=3)
    >>> len(result.units), len(result.random_units), tuple(result.accuracy_random.shape)
    (1, 3, (3, 10))
    """
    edit_images, edit_labels = inputs, labels
    n_classes = model.n_outputs or int(torch.as_tensor(edit_labels).max()) + 1
    check_index("target", target, n_classes)
    layer = model.n_layers - 1 if layer is None else layer
    width = model.layer_widths[model.check_layer(layer)]
    check_index("n_units - 1", n_units - 1, width, f"(layer {layer} has {width} units)")
    check_positive("n_random", n_random)
    check_choice("method", method, EDITS)
    check_choice("weights", weights, WEIGHTS)
    scores = error_attribution(
        model,
        edit_images,
        labels=edit_labels,
        target=target,
        layer=layer,
        n_hard=n_hard,
    )
    units = scores.topk(n_units).indices.sort().values
    if method == "fine_tune":
        x, y = repair_set(edit_images, edit_labels, target=target, seed=seed)

        def apply(chosen: torch.Tensor) -> ModelHandle:
            units = [Neuron(layer, int(u)) for u in chosen]
            tune = {"steps": steps, "lr": lr, "weights": weights, "seed": seed}
            return fine_tune_units(model, x, labels=y, units=units, **tune)
    else:

        def apply(chosen: torch.Tensor) -> ModelHandle:
            units = [Neuron(layer, int(u)) for u in chosen]
            return scale_units(model, units=units, factor=factor, weights=weights)

    held_out = (eval_inputs, eval_labels, n_classes, target)
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
        target=int(target),
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
