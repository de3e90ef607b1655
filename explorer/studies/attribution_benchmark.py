"""The kitchen sink's attribution benchmark: score attribution methods without looking at them.

``benchmark_attributions`` scores methods by deletion and insertion curves (Petsiuk et al.
2018; remove / add pixels in attribution order and watch the class probability, against a
random order), the model-parameter randomization check of Adebayo et al. 2018 (Spearman rank
correlation between a method's maps on the trained model and on a re-initialized copy: a
method that explains the model must change; the edge baseline scores 1 by construction), and
run time. The maps themselves come from ``explorer.analysis.attribution.attribute``; the
curves, the re-initialized model and the rank correlation from
``explorer.analysis.attribution_checks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_choice, check_positive
from explorer._deprecate import moved_names
from explorer._display import MAX_ROWS, Shown, pandas, strongest
from explorer.analysis import attribution_checks
from explorer.analysis.attribution import (
    ALL_METHODS,
    attribute,
    check_images,
    check_targets,
)
from explorer.models.handle import ModelHandle


@dataclass(frozen=True, repr=False)
class AttributionBenchmark(Shown):
    """Scores per method (rows follow ``methods``).

    Deletion AUC: mean target probability while pixels are removed most-attributed first
    (lower is better). Insertion AUC: the same while pixels are added to a blank image
    (higher is better). ``random_*`` are the same curves in a random pixel order (mean over
    ``n_random`` orders). ``randomization_spearman``: mean rank correlation of |map| between
    the trained and the re-initialized model (lower = the method depends on the weights);
    ``randomization_spearman_foreground`` is the same over pixels that differ from the
    baseline only (methods that multiply by the input tie at zero on the background, which
    alone makes their whole-image correlation high).
    """

    methods: tuple[str, ...]
    deletion_auc: Float[torch.Tensor, " method"]
    insertion_auc: Float[torch.Tensor, " method"]
    random_deletion_auc: float
    random_insertion_auc: float
    randomization_spearman: Float[torch.Tensor, " method"]
    randomization_spearman_foreground: Float[torch.Tensor, " method"]
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
                "randomization Spearman (lower better)": float(self.randomization_spearman[i]),
                "randomization Spearman, foreground": float(
                    self.randomization_spearman_foreground[i]
                ),
                "ms per image": 1000 * float(self.seconds_per_image[i]),
            }
            for i, m in enumerate(self.methods)
        ]

    def to_dataframe(self) -> Any:
        """``rows()`` as a table: one row per ``method``."""
        return pandas().DataFrame.from_records(self.rows())

    def _summary(self) -> str:
        return (
            f"{len(self.methods)} methods on {self.n_images} images; random order: deletion "
            f"AUC {self.random_deletion_auc:.3g}, insertion AUC {self.random_insertion_auc:.3g}"
        )

    def _top(self) -> list[str]:
        best = strongest(-self.deletion_auc, 2, by_abs=False)  # lowest deletion AUC first
        return [f"{self.methods[i]} deletion AUC {float(self.deletion_auc[i]):.3g}" for i in best]

    def _table(self) -> tuple:
        rows = [
            (
                m,
                float(self.deletion_auc[i]),
                float(self.insertion_auc[i]),
                float(self.randomization_spearman[i]),
            )
            for i, m in enumerate(self.methods[:MAX_ROWS])
        ]
        header = (
            "method",
            "deletion AUC (lower better)",
            "insertion AUC",
            "randomization Spearman",
        )
        return "Attribution benchmark", header, rows, self._summary()


def _auc(curve: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    return torch.trapezoid(curve, fractions, dim=-1)


def benchmark_attributions(
    model: ModelHandle,
    inputs: Float[torch.Tensor, "batch c h w"],
    *,
    labels: torch.Tensor | Sequence[int],
    methods: Sequence[str] = ALL_METHODS,
    n_steps: int = 20,
    n_random: int = 3,
    baseline: float = 0.0,
    seed: int = 0,
    randomized: ModelHandle | None = None,
    **options: Any,
) -> AttributionBenchmark:
    """Score attribution methods on ``model`` with deletion/insertion AUC, the randomization
    sanity check and run time.

    Args:
        model: the trained image classifier.
        inputs, labels: the images explained (the label is the explained class).
        methods: names from ``ALL_METHODS`` (``"edge"`` is the model-free baseline).
        n_steps: points on each deletion/insertion curve (besides the start).
        n_random: random pixel orders averaged for the reference curves.
        baseline: pixel value used for 'removed' (0.0, the MNIST background).
        seed: seeds the random orders and the re-initialisation.
        randomized: the model with re-initialized weights (default
            ``explorer.analysis.attribution_checks.randomize_weights``).
        options: passed to ``attribute``.

    >>> import torch
    >>> from explorer.models import zoo
    >>> model = zoo.mnist_mlp(hidden=(16,))
    >>> bench = benchmark_attributions(model, torch.rand(4, 1, 28, 28), labels=[0, 1, 2, 3],
    ...                                methods=["saliency", "edge"], n_steps=4)
    >>> bench.methods, float(bench.randomization_spearman[1])
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
    images = check_images(model, inputs)
    targets = check_targets(labels, images.shape[0], model.n_outputs)
    b, _, h, w = images.shape
    options = {"baseline": baseline, **options}
    random_model = (
        randomized
        if randomized is not None
        else attribution_checks.randomize_weights(model, seed=seed)
    )

    gen = torch.Generator().manual_seed(seed)
    rand_del, rand_ins = [], []
    for _ in range(n_random):
        order = torch.rand(b, h, w, generator=gen)
        fractions, d, i = attribution_checks.perturbation_curves(
            model, images, target=targets, order=order, n_steps=n_steps, baseline=baseline
        )
        rand_del.append(d.mean(0))
        rand_ins.append(i.mean(0))
    random_deletion = torch.stack(rand_del).mean(0)
    random_insertion = torch.stack(rand_ins).mean(0)

    foreground = (images != baseline).any(1).reshape(b, -1)
    del_curves, ins_curves, rho, rho_fg, seconds = [], [], [], [], []
    for method in methods:
        trained = attribute(model, images, target=targets, method=method, **options)
        scores = trained.maps.sum(1)  # a location's evidence over channels
        _, d, i = attribution_checks.perturbation_curves(
            model, images, target=targets, order=scores, n_steps=n_steps, baseline=baseline
        )
        del_curves.append(d.mean(0))
        ins_curves.append(i.mean(0))
        shuffled = attribute(random_model, images, target=targets, method=method, **options)
        a, r = trained.maps.abs().sum(1).reshape(b, -1), shuffled.maps.abs().sum(1).reshape(b, -1)
        rho.append(attribution_checks.spearman(a, r).mean())
        rho_fg.append(attribution_checks.spearman(a, r, mask=foreground).mean())
        seconds.append(trained.seconds / b)
    deletion = torch.stack(del_curves)
    insertion = torch.stack(ins_curves)
    return AttributionBenchmark(
        methods=methods,
        deletion_auc=_auc(deletion, fractions),
        insertion_auc=_auc(insertion, fractions),
        random_deletion_auc=float(_auc(random_deletion, fractions)),
        random_insertion_auc=float(_auc(random_insertion, fractions)),
        randomization_spearman=torch.stack(rho),
        randomization_spearman_foreground=torch.stack(rho_fg),
        seconds_per_image=torch.tensor(seconds),
        fractions=fractions,
        deletion_curves=deletion,
        insertion_curves=insertion,
        random_deletion_curve=random_deletion,
        random_insertion_curve=random_insertion,
        n_images=b,
        settings={"n_steps": n_steps, "n_random": n_random, "seed": seed, **options},
    )


# Moved to analysis (they are primitives any attribution study uses); these names keep
# working, with a warning, for one release. The module is imported above, not the names, so
# that reading them here goes through the warning.
__getattr__ = moved_names(
    "explorer.studies.attribution_benchmark",
    {
        "perturbation_curves": (
            "explorer.analysis.attribution_checks.perturbation_curves",
            lambda: attribution_checks.perturbation_curves,
        ),
        "randomize_weights": (
            "explorer.analysis.attribution_checks.randomize_weights",
            lambda: attribution_checks.randomize_weights,
        ),
        "spearman": (
            "explorer.analysis.attribution_checks.spearman",
            lambda: attribution_checks.spearman,
        ),
    },
)
