"""Attribution maps for image classifiers (through captum) and a benchmark that scores them.

``attribute`` gives one map per input with a well-kept library's implementation of
saliency, integrated gradients, gradient x input, SmoothGrad, occlusion and DeepLift, plus
``"edge"``, a Sobel filter of the input: a map that ignores the model, kept as the
baseline a sanity check must catch. ``benchmark_attributions`` scores methods without
looking at the maps: deletion and insertion curves (Petsiuk et al. 2018; remove / add
pixels in attribution order and watch the class probability, against a random order), the
model-parameter randomisation check of Adebayo et al. 2018 (Spearman rank correlation
between a method's maps on the trained model and on a re-initialised copy: a method that
explains the model must change; the edge baseline scores 1 by construction), and run time.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.mnist_mlp(hidden=(16,))
>>> maps = attribute(model, torch.rand(2, 1, 28, 28), torch.tensor([3, 7]), "saliency")
>>> tuple(maps.maps.shape), maps.method
((2, 1, 28, 28), 'saliency')
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from jaxtyping import Float

from explorer._checks import check_choice, check_positive, check_tensor
from explorer._repr import compact_repr

if TYPE_CHECKING:
    from explorer.models.handle import ModelHandle

METHODS = (
    "saliency",
    "integrated_gradients",
    "input_x_gradient",
    "smoothgrad",
    "occlusion",
    "deeplift",
)
BASELINES = ("edge",)
ALL_METHODS = METHODS + BASELINES


@dataclass(frozen=True)
class AttributionMaps:
    """Maps ``[batch, channel, h, w]`` (signed; saliency and SmoothGrad are magnitudes).

    ``convergence_delta`` (integrated gradients and DeepLift; None otherwise) is captum's
    completeness error per image: ``sum(map) - (F(x) - F(baseline))`` for the target
    logit ``F``. Integrated gradients' shrinks as ``ig_steps`` grows.
    """

    __repr__ = compact_repr

    maps: Float[torch.Tensor, "batch c h w"]
    method: str
    targets: torch.Tensor
    seconds: float
    convergence_delta: Float[torch.Tensor, " batch"] | None = None


@dataclass(frozen=True)
class AttributionBenchmark:
    """Scores per method (rows follow ``methods``).

    Deletion AUC: mean target probability while pixels are removed most-attributed first
    (lower is better). Insertion AUC: the same while pixels are added to a blank image
    (higher is better). ``random_*`` are the same curves in a random pixel order (mean over
    ``n_random`` orders). ``randomisation_spearman``: mean rank correlation of |map| between
    the trained and the re-initialised model (lower = the method depends on the weights);
    ``randomisation_spearman_foreground`` is the same over pixels that differ from the
    baseline only (methods that multiply by the input tie at zero on the background, which
    alone makes their whole-image correlation high).
    """

    __repr__ = compact_repr

    methods: tuple[str, ...]
    deletion_auc: Float[torch.Tensor, " method"]
    insertion_auc: Float[torch.Tensor, " method"]
    random_deletion_auc: float
    random_insertion_auc: float
    randomisation_spearman: Float[torch.Tensor, " method"]
    randomisation_spearman_foreground: Float[torch.Tensor, " method"]
    seconds_per_image: Float[torch.Tensor, " method"]
    fractions: Float[torch.Tensor, " step"]
    deletion_curves: Float[torch.Tensor, "method step"]
    insertion_curves: Float[torch.Tensor, "method step"]
    random_deletion_curve: Float[torch.Tensor, " step"]
    random_insertion_curve: Float[torch.Tensor, " step"]
    n_images: int
    settings: dict[str, Any] = field(default_factory=dict)

    def index(self, method: str) -> int:
        check_choice("method", method, self.methods)
        return self.methods.index(method)

    def rows(self) -> list[dict[str, float | str]]:
        """One dict per method, for a table (e.g. ``pandas.DataFrame(bench.rows())``)."""
        return [
            {
                "method": m,
                "deletion AUC (lower better)": float(self.deletion_auc[i]),
                "random deletion AUC": self.random_deletion_auc,
                "insertion AUC (higher better)": float(self.insertion_auc[i]),
                "random insertion AUC": self.random_insertion_auc,
                "randomisation Spearman (lower better)": float(self.randomisation_spearman[i]),
                "randomisation Spearman, foreground": float(
                    self.randomisation_spearman_foreground[i]
                ),
                "ms per image": 1000 * float(self.seconds_per_image[i]),
            }
            for i, m in enumerate(self.methods)
        ]


def _check_images(model: ModelHandle, images: torch.Tensor) -> torch.Tensor:
    if model.is_transformer:
        raise ValueError(
            f"{model.name} takes tokens; attribution maps here are for image models: "
            "use attribute_tokens(model, tokens, target=...) for per-token scores"
        )
    images = model.check_images(check_tensor("images", images, ndim=(1, 2, 3, 4), integer=False))
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    return images


class _ImagesIn(torch.nn.Module):
    """A model that takes flat inputs, run on images ``[batch, C, H, W]`` (captum perturbs
    and maps images; DeepLift hooks the wrapped model's own modules)."""

    def __init__(self, model: ModelHandle) -> None:
        super().__init__()
        self.inner = model.model
        self.input_shape = tuple(model.input_shape or ())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner(images.reshape(images.shape[0], *self.input_shape))


def _on_images(model: ModelHandle) -> torch.nn.Module:
    if model.input_shape is None or model.input_shape == model.image_shape:
        return model.model
    return _ImagesIn(model)


def _check_targets(targets: torch.Tensor | Sequence[int] | int, n: int, n_classes: int | None):
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


def _captum_map(
    module: torch.nn.Module,
    method: str,
    images: torch.Tensor,
    targets: torch.Tensor,
    options: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    # captum is imported lazily: it pulls in matplotlib and costs seconds at import.
    from captum import attr

    x = images.detach().clone().requires_grad_(True)
    baseline = _baseline(images, options.get("baseline", 0.0))
    if method == "integrated_gradients":
        return attr.IntegratedGradients(module).attribute(
            x,
            baselines=baseline,
            target=targets,
            n_steps=options.get("ig_steps", 50),
            return_convergence_delta=True,
        )
    if method == "deeplift":
        return attr.DeepLift(module).attribute(
            x, baselines=baseline, target=targets, return_convergence_delta=True
        )
    return _captum_plain(attr, module, method, x, targets, baseline, options), None


def _captum_plain(attr, module, method, x, targets, baseline, options) -> torch.Tensor:
    if method == "saliency":
        return attr.Saliency(module).attribute(x, target=targets)
    if method == "input_x_gradient":
        return attr.InputXGradient(module).attribute(x, target=targets)
    if method == "smoothgrad":
        return attr.NoiseTunnel(attr.Saliency(module)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=options.get("smoothgrad_samples", 16),
            stdevs=options.get("smoothgrad_std", 0.15),
            target=targets,
        )
    if method == "occlusion":
        window = options.get("occlusion_window", 4)
        stride = options.get("occlusion_stride", 2)
        c = x.shape[1]
        return attr.Occlusion(module).attribute(
            x,
            sliding_window_shapes=(c, window, window),
            strides=(c, stride, stride),
            baselines=baseline,
            target=targets,
        )
    raise AssertionError(method)


def attribute(
    model: ModelHandle,
    images: Float[torch.Tensor, "batch c h w"],
    targets: torch.Tensor | Sequence[int] | int,
    method: str = "integrated_gradients",
    **options: Any,
) -> AttributionMaps:
    """One attribution map per image for the logit ``F`` of its target class, by captum.

    Integrated gradients: ``(x - x') * integral_0^1 dF(x' + a (x - x'))/dx da`` with ``x'``
    the baseline, on ``ig_steps`` points (captum's defaults: 50, Gauss-Legendre); the
    result's ``convergence_delta`` is ``sum(map) - (F(x) - F(x'))`` per image. The captum
    call of every method is listed in docs/scores.md.

    Args:
        model: an image model (``explorer.load`` of a plain PyTorch classifier).
        images: ``[batch, c, h, w]`` (or one image ``[c, h, w]``).
        targets: the class explained, one per image (or one for all).
        method: one of ``ALL_METHODS``.
        options: ``baseline`` ('absent' input: a pixel value, 0.0, or a tensor of one image
            ``[c, h, w]`` or one per image), ``ig_steps`` (50, captum's default),
            ``smoothgrad_samples`` (16), ``smoothgrad_std`` (0.15), ``occlusion_window`` (4),
            ``occlusion_stride`` (2).
    """
    check_choice("method", method, ALL_METHODS)
    unknown = set(options) - {
        "baseline",
        "ig_steps",
        "smoothgrad_samples",
        "smoothgrad_std",
        "occlusion_window",
        "occlusion_stride",
    }
    if unknown:
        raise ValueError(f"unknown attribution options {sorted(unknown)}")
    images = _check_images(model, images)
    targets = _check_targets(targets, images.shape[0], model.n_outputs)
    if method != "edge":
        import captum.attr  # noqa: F401  (imported before the clock starts: seconds, once)
    start = time.perf_counter()
    delta = None
    if method == "edge":
        maps = sobel_edges(images)
    else:
        was_training = model.model.training
        model.model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # captum warns about grads it sets itself
                maps, delta = _captum_map(_on_images(model), method, images, targets, options)
        finally:
            model.model.train(was_training)
    maps = maps.detach().float()
    delta = None if delta is None else delta.detach().float().reshape(-1)
    return AttributionMaps(maps, method, targets, time.perf_counter() - start, delta)


# ------------------------------------------------------------------ benchmark
@torch.no_grad()
def _target_probability(
    model: ModelHandle, images: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    probs = model.model(model.to_inputs(images)).softmax(-1)
    return probs.gather(-1, targets[:, None]).squeeze(-1)


@torch.no_grad()
def perturbation_curves(
    model: ModelHandle,
    images: Float[torch.Tensor, "batch c h w"],
    targets: torch.Tensor,
    order_scores: Float[torch.Tensor, "batch h w"],
    n_steps: int = 20,
    baseline: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves ``[batch, n_steps + 1]`` for one pixel order per image.

    Pixels (all channels of a location together) are ranked by ``order_scores``, highest
    first. Step ``s`` removes (deletion) or reveals (insertion) the top ``s / n_steps``.
    Returns ``(fractions, deletion, insertion)``; curves hold the target probability.
    """
    b, c, h, w = images.shape
    n_pix = h * w
    ranks = order_scores.reshape(b, n_pix).argsort(dim=1, descending=True).argsort(dim=1)
    fractions = torch.linspace(0, 1, n_steps + 1)
    counts = (fractions * n_pix).round().long()
    # mask[s, i, p] is True where pixel p of image i is among the first counts[s] in its order
    mask = (ranks[None] < counts[:, None, None]).reshape(n_steps + 1, b, 1, h, w)
    blank = torch.full_like(images, baseline)
    deleted = torch.where(mask, blank[None], images[None])
    inserted = torch.where(mask, images[None], blank[None])
    flat_t = targets.repeat(n_steps + 1)
    deletion = _target_probability(model, deleted.reshape(-1, c, h, w), flat_t)
    insertion = _target_probability(model, inserted.reshape(-1, c, h, w), flat_t)
    return (
        fractions,
        deletion.reshape(n_steps + 1, b).T.contiguous(),
        insertion.reshape(n_steps + 1, b).T.contiguous(),
    )


def _auc(curve: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(curve, fractions, dim=-1)


def randomise_weights(model: ModelHandle, seed: int = 0) -> ModelHandle:
    """An independent copy of ``model`` with every layer re-initialised (seeded)."""
    copy = model.copy()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in copy.model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and any(True for _ in module.parameters(recurse=False)):
                reset()
    copy.model.eval()
    return copy


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    # equal values share the mean of their positions (MNIST maps have many exact zeros)
    sorted_x, order = x.sort()
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    mean_pos = (torch.cumsum(counts, 0) - counts).float() + (counts.float() - 1) / 2
    out = torch.empty(x.shape[0], dtype=torch.float32)
    out[order] = mean_pos[inverse]
    return out


def spearman(
    a: Float[torch.Tensor, "batch n"],
    b: Float[torch.Tensor, "batch n"],
    mask: torch.Tensor | None = None,
) -> Float[torch.Tensor, " batch"]:
    """Spearman rank correlation per row (ties get average ranks), over ``mask`` if given.

    A row with fewer than two selected entries or a constant side scores 0.
    """
    out = torch.zeros(a.shape[0])
    for i in range(a.shape[0]):
        keep = mask[i] if mask is not None else slice(None)
        x, y = a[i][keep].float(), b[i][keep].float()
        if x.numel() < 2:
            continue
        rx, ry = _average_ranks(x), _average_ranks(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        denom = float(rx.norm() * ry.norm())
        if denom > 0:
            out[i] = (rx * ry).sum() / denom
    return out.clamp(-1.0, 1.0)  # float32 rounding can land a hair outside


def benchmark_attributions(
    model: ModelHandle,
    images: Float[torch.Tensor, "batch c h w"],
    labels: torch.Tensor | Sequence[int],
    methods: Sequence[str] = ALL_METHODS,
    *,
    n_steps: int = 20,
    n_random: int = 3,
    baseline: float = 0.0,
    seed: int = 0,
    randomised: ModelHandle | None = None,
    **options: Any,
) -> AttributionBenchmark:
    """Score attribution methods on ``model`` with deletion/insertion AUC, the randomisation
    sanity check and run time.

    Args:
        model: the trained image classifier.
        images, labels: the examples explained (the label is the explained class).
        methods: names from ``ALL_METHODS`` (``"edge"`` is the model-free baseline).
        n_steps: points on each deletion/insertion curve (besides the start).
        n_random: random pixel orders averaged for the reference curves.
        baseline: pixel value used for 'removed' (0.0, the MNIST background).
        seed: seeds the random orders and the re-initialisation.
        randomised: the model with re-initialised weights (default ``randomise_weights``).
        options: passed to ``attribute``.

    >>> import torch
    >>> from explorer.models import zoo
    >>> model = zoo.mnist_mlp(hidden=(16,))
    >>> bench = benchmark_attributions(model, torch.rand(4, 1, 28, 28), [0, 1, 2, 3],
    ...                                methods=["saliency", "edge"], n_steps=4)
    >>> bench.methods, float(bench.randomisation_spearman[1])
    (('saliency', 'edge'), 1.0)
    """
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"give at least one method from {ALL_METHODS}")
    for m in methods:
        check_choice("method", m, ALL_METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods repeat: {methods}")
    check_positive("n_steps", n_steps)
    check_positive("n_random", n_random)
    images = _check_images(model, images)
    targets = _check_targets(labels, images.shape[0], model.n_outputs)
    b, _, h, w = images.shape
    options = {"baseline": baseline, **options}
    random_model = randomised if randomised is not None else randomise_weights(model, seed)

    gen = torch.Generator().manual_seed(seed)
    rand_del, rand_ins = [], []
    for _ in range(n_random):
        order = torch.rand(b, h, w, generator=gen)
        fractions, d, i = perturbation_curves(model, images, targets, order, n_steps, baseline)
        rand_del.append(d.mean(0))
        rand_ins.append(i.mean(0))
    random_deletion = torch.stack(rand_del).mean(0)
    random_insertion = torch.stack(rand_ins).mean(0)

    foreground = (images != baseline).any(1).reshape(b, -1)
    del_curves, ins_curves, rho, rho_fg, seconds = [], [], [], [], []
    for method in methods:
        trained = attribute(model, images, targets, method, **options)
        scores = trained.maps.sum(1)  # a location's evidence over channels
        _, d, i = perturbation_curves(model, images, targets, scores, n_steps, baseline)
        del_curves.append(d.mean(0))
        ins_curves.append(i.mean(0))
        shuffled = attribute(random_model, images, targets, method, **options)
        a, r = trained.maps.abs().sum(1).reshape(b, -1), shuffled.maps.abs().sum(1).reshape(b, -1)
        rho.append(spearman(a, r).mean())
        rho_fg.append(spearman(a, r, foreground).mean())
        seconds.append(trained.seconds / b)
    deletion = torch.stack(del_curves)
    insertion = torch.stack(ins_curves)
    return AttributionBenchmark(
        methods=methods,
        deletion_auc=_auc(deletion, fractions),
        insertion_auc=_auc(insertion, fractions),
        random_deletion_auc=float(_auc(random_deletion, fractions)),
        random_insertion_auc=float(_auc(random_insertion, fractions)),
        randomisation_spearman=torch.stack(rho),
        randomisation_spearman_foreground=torch.stack(rho_fg),
        seconds_per_image=torch.tensor(seconds),
        fractions=fractions,
        deletion_curves=deletion,
        insertion_curves=insertion,
        random_deletion_curve=random_deletion,
        random_insertion_curve=random_insertion,
        n_images=b,
        settings={"n_steps": n_steps, "n_random": n_random, "seed": seed, **options},
    )
