"""Attribution maps for image classifiers, through captum.

``attribute`` gives one map per input with a well-kept library's implementation of
saliency, integrated gradients, gradient x input, SmoothGrad, occlusion and DeepLift
(``CAPTUM_METHODS``: a table from method name to captum class and arguments), plus
``"edge"``, a Sobel filter of the input: a map that ignores the model, kept as the
baseline a sanity check must catch. Scoring methods against each other (deletion and
insertion curves, the weight-randomization check) is the kitchen sink's recipe:
``explorer.studies.attribution_benchmark``.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> maps = attribute(model, torch.rand(2, 1, 28, 28), target=torch.tensor([3, 7]),
...                  method="saliency")
>>> tuple(maps.maps.shape), maps.method
((2, 1, 28, 28), 'saliency')
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from jaxtyping import Float

from explorer._checks import check_choice, check_tensor
from explorer._deprecate import _warn
from explorer._display import MAX_ROWS, Shown, pandas, png_data_url, strongest

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

__all__ = [
    "CAPTUM_METHODS",
    "AttributionMaps",
    "CaptumMethod",
    "attribute",
]


@dataclass(frozen=True, repr=False)
class AttributionMaps(Shown):
    """Maps ``[batch, channel, h, w]`` (signed; saliency and SmoothGrad are magnitudes).

    ``convergence_delta`` (integrated gradients and DeepLift; None otherwise) is captum's
    completeness error per image: ``sum(map) - (F(x) - F(baseline))`` for the target
    logit ``F``. Integrated gradients' shrinks as ``n_steps`` grows.
    """

    maps: Float[torch.Tensor, "batch c h w"]
    method: str
    targets: torch.Tensor
    seconds: float
    convergence_delta: Float[torch.Tensor, " batch"] | None = None

    def to_dataframe(self) -> Any:
        """One row per ``image``: its ``target`` class, the map's ``total`` (its sum) and, for
        integrated gradients and DeepLift, the ``convergence_delta``."""
        columns = {
            "target": self.targets.tolist(),
            "total": self.maps.detach().double().flatten(1).sum(1).numpy(),
        }
        if self.convergence_delta is not None:
            columns["convergence_delta"] = self.convergence_delta.detach().double().numpy()
        return pandas().DataFrame(columns).rename_axis("image").reset_index()

    def _summary(self) -> str:
        n, *pixels = self.maps.shape
        delta = (
            f"; max |delta| {float(self.convergence_delta.abs().max()):.2g}"
            if self.convergence_delta is not None
            else ""
        )
        return f"{self.method}, {n} maps {pixels} in {self.seconds:.2g} s{delta}"

    def _top(self) -> list[str]:
        totals = self.maps.detach().flatten(1).sum(1)
        return [
            f"image {i} (target {int(self.targets[i])}) total {float(totals[i]):+.3g}"
            for i in strongest(totals, 2)
        ]

    def _table(self) -> tuple:
        totals = self.maps.detach().flatten(1).sum(1)
        rows = [
            (f"image {i}", int(self.targets[i]), float(totals[i]))
            for i in range(min(len(self.maps), MAX_ROWS))
        ]
        return f"Attribution maps ({self.method})", ("image", "target", "total"), rows, ""

    def _repr_html_(self) -> str:
        maps = "".join(
            f"<img src='{png_data_url(self.maps[i].sum(0))}' title='image {i}' style='margin:2px'>"
            for i in range(min(len(self.maps), MAX_ROWS))
        )
        return super()._repr_html_() + f"<div>{maps}</div>"


def check_images(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """``images`` checked for an image ``model``: finite floats ``[batch, c, h, w]``."""
    if model.is_transformer:
        raise ValueError(
            f"{model.name} takes tokens; attribution maps here are for image models: "
            "use attribute_tokens(model, inputs, target=...) for per-token scores"
        )
    inputs = model.check_images(check_tensor("images", inputs, ndim=(1, 2, 3, 4), integer=False))
    if not torch.isfinite(inputs).all():
        raise ValueError("images contain NaN or infinite values")
    return inputs


class _ImagesIn(torch.nn.Module):
    """A model that takes flat inputs, run on images ``[batch, C, H, W]`` (captum perturbs
    and maps images; DeepLift hooks the wrapped model's own modules)."""

    def __init__(self, model: ModelHandle) -> None:
        super().__init__()
        self.inner = model.as_torch_module()
        self.input_shape = tuple(model.input_shape or ())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner(images.reshape(images.shape[0], *self.input_shape))


def _on_images(model: ModelHandle) -> torch.nn.Module:
    if model.input_shape is None or model.input_shape == model.image_shape:
        return model.as_torch_module()
    return _ImagesIn(model)


def check_targets(
    targets: torch.Tensor | Sequence[int] | int, n: int, n_classes: int | None
) -> torch.Tensor:
    """One class per image (a single class is repeated), each in ``0..n_classes - 1``."""
    t = torch.as_tensor(targets)
    if t.ndim == 0:
        t = t.expand(n)
    t = check_tensor("targets", t, ndim=1, integer=True)
    if t.shape[0] != n:
        raise ValueError(f"got {t.shape[0]} targets for {n} images: give one class per image")
    if n_classes is not None and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(
            f"targets must lie in 0..{n_classes - 1}, got range {int(t.min())}..{int(t.max())}"
        )
    return t.long()


def sobel_edges(images: Float[torch.Tensor, "batch c h w"]) -> Float[torch.Tensor, "batch c h w"]:
    """Gradient magnitude of each image (Sobel filter): an 'attribution' without a model."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)  # [2, 1, 3, 3]
    b, c, h, w = images.shape
    flat = images.reshape(b * c, 1, h, w)
    grads = F.conv2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), kernels)
    return grads.pow(2).sum(1).sqrt().reshape(b, c, h, w)


def _baseline(images: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """The 'absent' input, ``images``-shaped: a pixel value, or a tensor that broadcasts
    (one image ``[c, h, w]`` for all, or one per image ``[batch, c, h, w]``)."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or not torch.isfinite(value).all():
            raise ValueError("baseline must be a finite floating-point tensor")
        try:
            return torch.broadcast_to(value.to(images), images.shape).clone()
        except RuntimeError:
            raise ValueError(
                f"baseline of shape {list(value.shape)} does not broadcast to the images "
                f"{list(images.shape)}: give one image [c, h, w] or one per image"
            ) from None
    if not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"baseline must be a number or a tensor, got {value!r}")
    return torch.full_like(images, float(value))


@dataclass(frozen=True)
class CaptumMethod:
    """How one method name maps to captum: the class in ``captum.attr`` (wrapped in
    ``NoiseTunnel`` for SmoothGrad) and the arguments its ``attribute`` takes besides the
    inputs and the target, given the baseline and the caller's ``options``."""

    captum_class: str
    arguments: Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], dict[str, Any]]
    noise_tunnel: bool = False
    convergence_delta: bool = False


def _occlusion(x: torch.Tensor, baseline: torch.Tensor, o: dict[str, Any]) -> dict[str, Any]:
    window, stride, c = o.get("occlusion_window", 4), o.get("occlusion_stride", 2), x.shape[1]
    return {
        "sliding_window_shapes": (c, window, window),
        "strides": (c, stride, stride),
        "baselines": baseline,
    }


CAPTUM_METHODS: dict[str, CaptumMethod] = {
    "saliency": CaptumMethod("Saliency", lambda x, b, o: {}),
    "integrated_gradients": CaptumMethod(
        "IntegratedGradients",
        lambda x, b, o: {"baselines": b, "n_steps": o.get("n_steps", 50)},
        convergence_delta=True,
    ),
    "input_x_gradient": CaptumMethod("InputXGradient", lambda x, b, o: {}),
    "smoothgrad": CaptumMethod(
        "Saliency",
        lambda x, b, o: {
            "nt_type": "smoothgrad",
            "nt_samples": o.get("smoothgrad_samples", 16),
            "stdevs": o.get("smoothgrad_std", 0.15),
        },
        noise_tunnel=True,
    ),
    "occlusion": CaptumMethod("Occlusion", _occlusion),
    "deeplift": CaptumMethod("DeepLift", lambda x, b, o: {"baselines": b}, convergence_delta=True),
}
METHODS = tuple(CAPTUM_METHODS)
BASELINES = ("edge",)
ALL_METHODS = METHODS + BASELINES
OPTIONS = (
    "baseline",
    "n_steps",
    "smoothgrad_samples",
    "smoothgrad_std",
    "occlusion_window",
    "occlusion_stride",
)


def _captum_map(
    module: torch.nn.Module,
    method: str,
    images: torch.Tensor,
    targets: torch.Tensor,
    options: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    # lazy: captum pulls in matplotlib (seconds); only the captum methods, not "edge", need it
    from captum import attr

    spec = CAPTUM_METHODS[method]
    algorithm = getattr(attr, spec.captum_class)(module)
    if spec.noise_tunnel:
        algorithm = attr.NoiseTunnel(algorithm)
    x = images.detach().clone().requires_grad_(True)
    baseline = _baseline(images, options.get("baseline", 0.0))
    kwargs = spec.arguments(x, baseline, options)
    if spec.convergence_delta:
        return algorithm.attribute(x, target=targets, return_convergence_delta=True, **kwargs)
    return algorithm.attribute(x, target=targets, **kwargs), None


def attribute(
    model: ModelHandle,
    inputs: Float[torch.Tensor, "batch c h w"],
    *,
    target: torch.Tensor | Sequence[int] | int,
    method: str = "integrated_gradients",
    **options: Any,
) -> AttributionMaps:
    """One attribution map per image for the logit ``F`` of its target class, by captum.

    Integrated gradients: ``(x - x') * integral_0^1 dF(x' + a (x - x'))/dx da`` with ``x'``
    the baseline, on ``n_steps`` points (captum's defaults: 50, Gauss-Legendre); the
    result's ``convergence_delta`` is ``sum(map) - (F(x) - F(x'))`` per image. The captum
    call of every method is listed in docs/scores.md.

    Args:
        model: an image model (``explorer.load`` of a plain PyTorch classifier).
        inputs: images ``[batch, c, h, w]`` (or one image ``[c, h, w]``).
        target: the class explained, one per image (or one for all).
        method: one of ``ALL_METHODS``: a key of ``CAPTUM_METHODS`` or ``"edge"``.
        options: ``baseline`` ('absent' input: a pixel value, 0.0, or a tensor of one image
            ``[c, h, w]`` or one per image), ``n_steps`` (50, captum's name and default),
            ``smoothgrad_samples`` (16), ``smoothgrad_std`` (0.15), ``occlusion_window`` (4),
            ``occlusion_stride`` (2).
    """
    check_choice("method", method, ALL_METHODS)
    if "ig_steps" in options:  # before issue 24: captum's name is n_steps
        if "n_steps" in options:
            raise TypeError("attribute() got both ig_steps= (the old name) and n_steps=")
        _warn("attribute(ig_steps=...)", "attribute(n_steps=...)", stacklevel=3)
        options["n_steps"] = options.pop("ig_steps")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"unknown attribution options {sorted(unknown)}; known: {list(OPTIONS)}")
    images = check_images(model, inputs)
    targets = check_targets(target, images.shape[0], model.n_outputs)
    if method != "edge":
        # lazy: imported here, before the clock starts, so its seconds are not timed as the method's
        import captum.attr  # noqa: F401
    start = time.perf_counter()
    delta = None
    if method == "edge":
        maps = sobel_edges(images)
    else:
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # captum warns about grads it sets itself
                maps, delta = _captum_map(_on_images(model), method, images, targets, options)
        finally:
            model.train(was_training)
    maps = maps.detach().float()
    delta = None if delta is None else delta.detach().float().reshape(-1)
    return AttributionMaps(maps, method, targets, time.perf_counter() - start, delta)
