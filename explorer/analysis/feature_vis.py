"""Feature visualisation: images optimised to excite one unit (activation maximisation).

Plain gradient ascent on pixels finds high-frequency noise that a neuron happens to like;
the regularisers of Olah et al. 2017 ("Feature Visualization", Distill) keep the image
natural enough to read: random jitter (a shift each step, so the image must work
wherever it lands), an L2 penalty on the pixels, a total-variation penalty (neighbouring
pixels alike), and a Gaussian blur of the image every few steps. Pixels stay in 0..1
through a sigmoid parametrisation. Everything is seeded: the same call gives the same image.

>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> vis = maximize_activation(model, unit="neuron 0.3", n_steps=64)
>>> tuple(vis.images.shape), bool(vis.final_activation > vis.trajectory[0])
((1, 1, 28, 28), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from jaxtyping import Float

from explorer._checks import check_index, check_positive
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas, png_data_url, strongest
from explorer.analysis.units import Neuron, neuron_index

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "FeatureVisualization",
    "Regularization",
    "maximize_activation",
]

HOOKS = ("post", "pre")
OBJECTIVES = ("unit", "class_vs_rest")


@dataclass(frozen=True)
class Regularization:
    """Weights and settings of the regularisers (all off: ``Regularization.none()``).

    Weights are relative to the ascent direction, which is scaled to unit RMS per pixel,
    so they do not depend on the size of the unit's activations.
    """

    jitter: int = 2
    l2: float = 1.0
    total_variation: float = 0.3
    blur_every: int = 4
    blur_sigma: float = 0.5

    def __post_init__(self) -> None:
        for name in ("jitter", "l2", "total_variation", "blur_every", "blur_sigma"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    @classmethod
    def none(cls) -> Regularization:
        return cls(jitter=0, l2=0.0, total_variation=0.0, blur_every=0, blur_sigma=0.0)


@dataclass(frozen=True, repr=False)
class FeatureVisualization(Shown):
    """Optimised images for one unit, their final activations and the ascent's trajectory."""

    images: Float[torch.Tensor, "n c h w"]
    activations: Float[torch.Tensor, " n"]
    trajectory: Float[torch.Tensor, " step"]
    layer: int | str
    unit: int
    hook: str
    seed: int
    regularization: Regularization
    objective: str = "unit"
    diversity: float = 0.0

    @property
    def final_activation(self) -> float:
        return float(self.activations.mean())

    @property
    def similarity(self) -> float:
        """Mean cosine similarity of the images' centred pixels over pairs (0 for one
        image): near 1 when ``n`` images came out alike, near 0 when they differ."""
        return mean_pairwise_cosine(self.images)

    def to_dataframe(self) -> Any:
        """One row per ``image``: the unit's final ``activation`` on it."""
        frame = pandas().DataFrame({"activation": self.activations.detach().double().numpy()})
        return frame.rename_axis("image").reset_index()

    def _summary(self) -> str:
        n, *pixels = self.images.shape
        return (
            f"unit {self.unit} of layer {self.layer} ({self.objective}): {n} images {pixels} "
            f"after {len(self.trajectory)} steps, similarity {self.similarity:.2f}"
        )

    def _top(self) -> list[str]:
        return [
            f"image {i} {float(self.activations[i]):.3g}"
            for i in strongest(self.activations, 3, by_abs=False)
        ]

    def _table(self) -> tuple:
        order = strongest(self.activations, MAX_ROWS, by_abs=False)
        rows = [(f"image {i}", float(self.activations[i])) for i in order]
        title = f"Feature visualization: unit {self.unit} of layer {self.layer} ({self.hook})"
        return title, ("image", "activation"), rows, f"objective {self.objective}, seed {self.seed}"

    def _repr_html_(self) -> str:
        images = "".join(
            f"<img src='{png_data_url(self.images[i])}' title='image {i}' style='margin:2px'>"
            for i in range(min(len(self.images), MAX_ROWS))
        )
        return super()._repr_html_() + f"<div>{images}</div>"


def pairwise_cosine(images: Float[torch.Tensor, "n c h w"]) -> Float[torch.Tensor, "n n"]:
    """Cosine similarity between every two images, each centred on its own mean pixel (so
    two dark images are not alike merely for being dark).

    >>> x = torch.rand(3, 1, 4, 4)
    >>> torch.allclose(pairwise_cosine(x).diagonal(), torch.ones(3))
    True
    """
    flat = images.flatten(1)
    flat = flat - flat.mean(1, keepdim=True)
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def mean_pairwise_cosine(images: Float[torch.Tensor, "n c h w"]) -> float:
    """The mean of ``pairwise_cosine`` off the diagonal (0 for a single image)."""
    n = images.shape[0]
    if n < 2:
        return 0.0
    sim = pairwise_cosine(images)
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def total_variation(images: Float[torch.Tensor, "n c h w"]) -> Float[torch.Tensor, " n"]:
    """Mean absolute difference between neighbouring pixels, per image."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (3 sigma radius, reflect padding)."""
    if sigma <= 0:
        return images
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    n, c, h, w = images.shape
    flat = images.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def _unit_hook(model: ModelHandle, layer: int | str, unit: int, hook: str) -> str:
    if layer == "logits":
        n_out = model.n_outputs
        check_index("class", unit, n_out or 0, f"({model.name} has {n_out} outputs)")
        return "hook_logits"
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r}: choose 'post' or 'pre'")
    if not isinstance(layer, int):
        raise TypeError(f"layer must be an int or 'logits', got {layer!r}")
    model.check_neuron(layer, unit)
    return model.check_hook(f"blocks.{layer}.mlp.hook_{hook}")


@renamed_arguments(logit="target", steps="n_steps", hook="hooks")
def maximize_activation(
    model: ModelHandle,
    *,
    unit: Neuron | str | None = None,
    target: int | None = None,
    n: int = 1,
    n_steps: int = 256,
    lr: float = 0.05,
    hooks: str = "post",
    regularization: Regularization | None = None,
    init_logit: float = -2.0,
    leak: float = 1.0,
    seed: int = 0,
    objective: str = "unit",
    diversity: float | None = None,
) -> FeatureVisualization:
    """Optimise ``n`` images (from seeded noise) to maximise one unit's activation.

    Args:
        model: an image model.
        unit: the neuron (MLP) or channel (CNN; its mean over positions) to excite, as a
            ``Neuron`` or its text (``"neuron 1.7"``); or
        target: the class whose logit to raise instead.
        n: images optimised together (different starting noise).
        n_steps, lr: Adam steps and learning rate on the sigmoid's logits.
        hooks: the unit's hook: ``"post"`` (after the activation function) or ``"pre"``.
        regularization: ``Regularization()`` by default; ``Regularization.none()`` for plain
            gradient ascent.
        init_logit: the start image is ``sigmoid(init_logit + noise)`` (-2: nearly black).
        leak: slope of the objective where a ReLU unit is off (it has no gradient there).
        seed: seeds the starting noise and the jitter.
        objective: ``"unit"`` (the unit's activation, or the class's raw logit) or, with
            ``target=``, ``"class_vs_rest"``: the class's logit minus the
            logsumexp of the other logits, i.e. its log-odds ``log p / (1 - p)`` under the
            softmax. A raw logit can grow while every logit grows with it; the log-odds
            grows only as the class wins against the others.
        diversity: weight of the diversity term for ``n > 1`` (default 1.0; 0 turns it
            off): each image is pushed away from the others, along the gradient of its
            mean cosine similarity to them (centred pixels), scaled like the ascent
            direction and by that similarity, so the push fades as the images part. Olah
            et al. 2017 ("Feature Visualization") penalise the cosine similarity of the
            images' Gram matrices at a layer; pixels are what every image model has.
            ``result.similarity`` reports the final mean pairwise cosine.

    Returns:
        ``activations``: per image, the unit's activation, the class's logit, or for
        ``"class_vs_rest"`` its log-odds.
    """
    if model.is_transformer or model.image_shape is None:
        raise ValueError(
            f"{model.name} does not take images of a known shape: pass "
            "image_shape=(channels, height, width) to explorer.load"
        )
    if (unit is None) == (target is None):
        raise ValueError(
            "give one of unit=Neuron(layer, index) (or its text, 'neuron 1.7') and target=<class>"
        )
    if target is not None:
        layer: int | str = "logits"
        index = target
    else:
        layer, index = neuron_index(model, unit=unit)
    name = _unit_hook(model, layer, index, hooks)
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if objective == "class_vs_rest" and layer != "logits":
        raise ValueError(
            "objective='class_vs_rest' compares a class's logit with the other classes': "
            "pass layer='logits'"
        )
    diversity = (1.0 if n > 1 else 0.0) if diversity is None else float(diversity)
    if not diversity >= 0:
        raise ValueError(f"diversity must be >= 0, got {diversity}")
    check_positive("n", n)
    check_positive("n_steps", n_steps)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    reg = regularization if regularization is not None else Regularization()
    gen = torch.Generator().manual_seed(seed)
    # start near a blank (dark) image with faint noise, as digits are strokes on black
    start = init_logit + 0.5 * torch.randn((n, *model.image_shape), generator=gen)
    logits = start.requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=lr)
    # A ReLU unit that is off on the start image has zero gradient. Where it is off we ascend
    # its pre-activation instead (times ``leak``): the surrogate is monotone in the unit's
    # input, never flat, and equals the activation wherever the unit is on. Without it, units
    # silent on a dark image stay black under the regularisers.
    pre_name = name[: -len("post")] + "pre" if hooks == "post" and layer != "logits" else None
    names = [name] if pre_name is None else [name, pre_name]
    store: dict[str, torch.Tensor] = {}

    def grab(act: torch.Tensor, hook: object) -> None:
        store[hook.name] = act  # type: ignore[attr-defined]

    def spatial_mean(a: torch.Tensor) -> torch.Tensor:
        return a.flatten(1).mean(1) if a.ndim > 1 else a

    def unit_activations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with model.hooks([(n_, grab) for n_ in names]):
            model(model.to_inputs(images))
        if objective == "class_vs_rest":
            out = store.pop(name)
            rest = torch.cat([out[:, :index], out[:, index + 1 :]], dim=1)
            odds = out[:, index] - rest.logsumexp(1)
            return odds, odds
        act = store.pop(name)[:, index]
        if pre_name is None:
            return spatial_mean(act), spatial_mean(act)
        pre = store.pop(pre_name)[:, index]
        surrogate = torch.where(pre > 0, act, leak * pre)
        return spatial_mean(act), spatial_mean(surrogate)

    was_training = model.training
    model.eval()
    trajectory = []
    pixels = logits[0].numel()
    try:
        for step in range(n_steps):
            images = torch.sigmoid(logits)
            if reg.jitter:
                dy, dx = torch.randint(-reg.jitter, reg.jitter + 1, (2,), generator=gen).tolist()
                images = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
            act, target = unit_activations(images)
            # The ascent direction is scaled to unit RMS per image, so the regularisers'
            # weights mean the same for a unit whose gradients are tiny (an untrained net)
            # and for one whose gradients are large.
            (ascent,) = torch.autograd.grad(-target.sum(), logits, retain_graph=True)
            rms = ascent.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
            grad = ascent / rms.view(-1, *[1] * (ascent.ndim - 1))
            if diversity and n > 1:
                grad = grad + diversity * _diversity_push(images, logits)
            penalty = torch.zeros(())
            if reg.l2:
                penalty = penalty + reg.l2 * images.pow(2).sum()
            if reg.total_variation:
                penalty = penalty + reg.total_variation * total_variation(images).sum() * pixels
            if penalty.requires_grad:
                grad = grad + torch.autograd.grad(penalty, logits)[0]
            optimiser.zero_grad()
            logits.grad = grad
            optimiser.step()
            trajectory.append(float(act.detach().mean()))
            if reg.blur_every and reg.blur_sigma and (step + 1) % reg.blur_every == 0:
                with torch.no_grad():
                    blurred = gaussian_blur(torch.sigmoid(logits), reg.blur_sigma)
                    logits.copy_(torch.logit(blurred.clamp(1e-4, 1 - 1e-4)))
        with torch.no_grad():
            final = torch.sigmoid(logits)
            activations = unit_activations(final)[0]
    finally:
        model.train(was_training)
    return FeatureVisualization(
        images=final.detach(),
        activations=activations.detach(),
        trajectory=torch.tensor(trajectory),
        layer=layer,
        unit=int(index),
        hook="logits" if layer == "logits" else hooks,
        seed=seed,
        regularization=reg,
        objective=objective,
        diversity=diversity,
    )


def _diversity_push(images: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per image, the gradient (descent direction for ``logits``) of its mean cosine
    similarity to the other images, scaled to unit RMS and then by that similarity (>= 0)."""
    n = images.shape[0]
    sim = pairwise_cosine(images)
    own = (sim.sum(1) - sim.diagonal()) / (n - 1)  # [n]: each image's mean similarity
    (push,) = torch.autograd.grad(own.sum(), logits, retain_graph=True)
    rms = push.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
    scale = own.detach().clamp_min(0) / rms
    return push * scale.view(-1, *[1] * (push.ndim - 1))
