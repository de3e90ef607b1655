"""Linear probes: how well a linear read-out of a layer predicts a label, on held-out data.

A probe is a multinomial logistic regression fitted on one hook's activations (flattened,
standardised with the training split's statistics) and scored on a held-out split. High
accuracy says the label is linearly decodable there, not that the model uses it; compare
with the input layer (what is decodable before the network does anything) and ``chance``.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> x, y = torch.rand(40, 1, 28, 28), torch.arange(40) % 2
>>> probes = linear_probes(model, x[:30], labels=y[:30], test_inputs=x[30:], test_labels=y[30:], max_iter=5)
>>> probes.hooks
('hook_input', 'blocks.0.mlp.hook_post', 'hook_logits')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from jaxtyping import Float

from explorer._checks import check_positive, check_tensor
from explorer._display import MAX_ROWS, Shown, num, pandas, strongest

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "Probe",
    "ProbeResults",
    "linear_probes",
]


@dataclass(frozen=True, repr=False)
class Probe:
    """A fitted probe: ``logits = ((features - mean) / std) @ weight.T + bias``."""

    weight: Float[torch.Tensor, "cls feature"]
    bias: Float[torch.Tensor, " cls"]
    mean: Float[torch.Tensor, " feature"]
    std: Float[torch.Tensor, " feature"]

    @torch.no_grad()
    def predict(self, features: Float[torch.Tensor, "n feature"]) -> torch.Tensor:
        return (((features.flatten(1) - self.mean) / self.std) @ self.weight.T + self.bias).argmax(
            -1
        )

    def __repr__(self) -> str:
        n_classes, n_features = self.weight.shape
        return f"Probe({n_classes} classes x {n_features} features)"


@dataclass(frozen=True, repr=False)
class ProbeResults(Shown):
    """Held-out accuracy of one linear probe per hook (rows follow ``hooks``)."""

    hooks: tuple[str, ...]
    train_accuracy: Float[torch.Tensor, " hook"]
    test_accuracy: Float[torch.Tensor, " hook"]
    n_features: tuple[int, ...]
    chance: float
    probes: tuple[Probe, ...]

    def rows(self) -> list[dict[str, float | str | int]]:
        return [
            {
                "hook": h,
                "features": self.n_features[i],
                "train accuracy": float(self.train_accuracy[i]),
                "held-out accuracy": float(self.test_accuracy[i]),
                "chance": self.chance,
            }
            for i, h in enumerate(self.hooks)
        ]

    def to_dataframe(self) -> Any:
        """``rows()`` as a table: one row per ``hook``."""
        return pandas().DataFrame.from_records(self.rows())

    def _summary(self) -> str:
        return f"{len(self.hooks)} hooks, chance {num(self.chance)}"

    def _top(self) -> list[str]:
        return [
            f"{self.hooks[i]} held-out {float(self.test_accuracy[i]):.3g}"
            for i in strongest(self.test_accuracy, 2, by_abs=False)
        ]

    def _table(self) -> tuple:
        rows = [
            (row["hook"], row["features"], row["train accuracy"], row["held-out accuracy"])
            for row in self.rows()[:MAX_ROWS]
        ]
        header = ("hook", "features", "train accuracy", "held-out accuracy")
        return "Linear probes", header, rows, f"chance {num(self.chance)}"


def fit_probe(
    train_features: Float[torch.Tensor, "n ..."],
    train_labels: torch.Tensor,
    *,
    n_classes: int | None = None,
    weight_decay: float = 1e-3,
    max_iter: int = 100,
) -> Probe:
    """Fit a multinomial logistic regression with L-BFGS (full batch, L2 penalty)."""
    x = check_tensor("train_features", train_features, integer=False).detach().flatten(1).float()
    y = check_tensor("train_labels", torch.as_tensor(train_labels), ndim=1, integer=True).long()
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows but {y.shape[0]} labels")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    check_positive("max_iter", max_iter)
    n_classes = n_classes if n_classes is not None else int(y.max()) + 1
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    mean = x.mean(0)
    std = x.std(0).clamp_min(1e-6)  # constant features (dead units, blank pixels) stay 0
    z = (x - mean) / std
    weight = torch.zeros(n_classes, z.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe", history_size=20
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, y) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return Probe(weight.detach(), bias.detach(), mean, std)


def default_probe_hooks(model: ModelHandle) -> tuple[str, ...]:
    """The input, each hidden layer's post-activation, and the logits."""
    hooks = ["hook_input"] + [f"blocks.{i}.mlp.hook_post" for i in range(model.n_layers)]
    if "hook_logits" in model.hook_names:
        hooks.append("hook_logits")
    return tuple(model.check_hook(h) for h in hooks)


@torch.no_grad()
def _features(
    model: ModelHandle, images: torch.Tensor, hooks: Sequence[str], batch_size: int
) -> dict[str, torch.Tensor]:
    parts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    for start in range(0, images.shape[0], batch_size):
        _, cache = model.cache_pass(images[start : start + batch_size], list(hooks))
        for h in hooks:
            parts[h].append(cache[h].flatten(1).float())
    return {h: torch.cat(v) for h, v in parts.items()}


def linear_probes(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor,
    test_inputs: torch.Tensor,
    test_labels: torch.Tensor,
    hooks: Sequence[str] | None = None,
    weight_decay: float = 1e-3,
    max_iter: int = 100,
    batch_size: int = 512,
) -> ProbeResults:
    """Fit one probe per hook on the training split and score it on the held-out split.

    Args:
        model: an image model (its hook names come from ``explorer.load``).
        train_images, train_labels: the split the probes are fitted on.
        test_images, test_labels: the held-out split they are scored on.
        hooks: hook names; default ``default_probe_hooks(model)``.
        weight_decay: L2 penalty on the probe weights (features are standardised).
        max_iter: L-BFGS iterations.
        batch_size: examples per forward pass when collecting activations.
    """
    inputs = model.check_inputs(inputs)
    test_inputs = model.check_inputs(test_inputs)
    y_train = check_tensor("train_labels", torch.as_tensor(labels), ndim=1, integer=True)
    y_test = check_tensor("test_labels", torch.as_tensor(test_labels), ndim=1, integer=True)
    for what, x, y in (("train", inputs, y_train), ("test", test_inputs, y_test)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{what}: {x.shape[0]} images but {y.shape[0]} labels")
    check_positive("batch_size", batch_size)
    hooks = tuple(model.check_hook(h) for h in hooks) if hooks else default_probe_hooks(model)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    train_f = _features(model, inputs, hooks, batch_size)
    test_f = _features(model, test_inputs, hooks, batch_size)
    probes, train_acc, test_acc = [], [], []
    for h in hooks:
        probe = fit_probe(
            train_f[h], y_train, n_classes=n_classes, weight_decay=weight_decay, max_iter=max_iter
        )
        probes.append(probe)
        train_acc.append((probe.predict(train_f[h]) == y_train).float().mean())
        test_acc.append((probe.predict(test_f[h]) == y_test).float().mean())
    chance = float(torch.bincount(y_test, minlength=n_classes).max()) / y_test.shape[0]
    return ProbeResults(
        hooks=hooks,
        train_accuracy=torch.stack(train_acc),
        test_accuracy=torch.stack(test_acc),
        n_features=tuple(int(train_f[h].shape[1]) for h in hooks),
        chance=chance,
        probes=tuple(probes),
    )
