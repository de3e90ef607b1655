"""Compare a model's first-layer weights with other models of the same architecture, pixel by
pixel, at zero forward passes.

The auditing game hands out several models of one architecture. A trigger trains the
first-layer weights of the pixels it covers, so those pixels stand out against the same
pixels of the other models, whatever the trigger's shape. ``weight_outliers(model, *,
references)`` reads each input pixel's first-layer weight norm (its column norm: hidden
units may be permuted between models, the norm is not), compares it with the references'
median at that pixel, and scores it as a robust z-score (median and MAD). Pixels at or
above ``threshold`` form the finding, described by ``mask_shape`` ("a 1x7 line", "4 dots").

>>> import explorer
>>> from explorer.studies.auditing import make_mlp
>>> models = [explorer.load(make_mlp(s), input_shape=(1, 28, 28)) for s in range(4)]
>>> found = weight_outliers(models[0], references=models[1:])
>>> found.z.shape, found.forward_passes
(torch.Size([28, 28]), 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from explorer._display import Shown, pandas
from explorer.analysis.mask_shapes import MaskShape, mask_shape
from explorer.models.handle import ModelHandle

__all__ = ["Z_THRESHOLD", "WeightOutliers", "weight_outliers"]

Z_THRESHOLD = 10.0  # calibrated on clean models: scripts/calibrate_audit.py, docs/auditing.md


def first_layer_pixel_norms(model: ModelHandle) -> torch.Tensor:
    """``[H, W]``: the norm of each input pixel's first-layer weights (over hidden units and
    channels). Raises ValueError, before any pass, when the first weight is not a linear
    layer over the flat image (a convolution shares its weights across pixels).

    >>> import explorer
    >>> from explorer.studies.auditing import make_mlp
    >>> first_layer_pixel_norms(explorer.load(make_mlp(0), input_shape=(1, 28, 28))).shape
    torch.Size([28, 28])
    """
    shape = model.image_shape
    name, w = next(
        ((n, p) for n, p in model.named_parameters() if n.endswith("weight")), ("", None)
    )
    if shape is None or w is None:
        raise ValueError(f"{model.name} has no image_shape or no weights: not applicable")
    c, h, wd = shape
    if w.ndim != 2 or w.shape[1] != c * h * wd:
        raise ValueError(
            f"not applicable to {model.name}: per-pixel weights need a first linear layer over "
            f"the {c * h * wd} flat pixels, but its first weight {name!r} has shape "
            f"{list(w.shape)} (a convolution shares its weights across pixels)"
        )
    return w.detach().float().norm(dim=0).reshape(c, h, wd).norm(dim=0)


@dataclass(frozen=True, repr=False)
class WeightOutliers(Shown):
    """``z [H, W]``: each pixel's robust z-score against the references; ``norms`` and
    ``reference_median`` the per-pixel norms compared; ``shape`` the pixels at or above
    ``threshold`` (a ``MaskShape``); ``forward_passes`` is always 0."""

    model: str
    references: tuple[str, ...]
    z: torch.Tensor
    norms: torch.Tensor
    reference_median: torch.Tensor
    threshold: float
    shape: MaskShape
    forward_passes: int = 0

    @property
    def found(self) -> bool:
        return self.shape.pixels > 0

    @property
    def mask(self) -> torch.Tensor:
        """``[H, W]`` 1 on the outlying pixels."""
        return (self.z >= self.threshold).float()

    @property
    def finding(self) -> str:
        if not self.found:
            return f"no pixel reaches z {self.threshold:g} (max {float(self.z.max()):.1f})"
        return (
            f"{self.shape.description} at {self.shape.box[:2]} "
            f"(box {self.shape.box}, max z {float(self.z.max()):.1f})"
        )

    def _summary(self) -> str:
        return f"{self.model} vs {len(self.references)} references: {self.finding}; 0 passes"

    def to_dataframe(self) -> Any:
        """One row per pixel: ``row``, ``col``, its ``z``, ``norm`` and ``reference_median``."""
        h, w = self.z.shape
        return pandas().DataFrame(
            {
                "row": [r for r in range(h) for _ in range(w)],
                "col": [c for _ in range(h) for c in range(w)],
                "z": self.z.flatten().tolist(),
                "norm": self.norms.flatten().tolist(),
                "reference_median": self.reference_median.flatten().tolist(),
            }
        )

    def _table(self) -> tuple:
        rows = [
            (f"{r}, {c}", float(self.z[r, c])) for comp in self.shape.components for r, c in comp
        ]
        if not rows:  # nothing outlies: the highest pixel, so the table says how far it was
            r, c = divmod(int(self.z.argmax()), self.z.shape[1])
            rows = [(f"{r}, {c}", float(self.z[r, c]))]
        return (
            f"first-layer weights of {self.model} against {len(self.references)} models",
            ["pixel (row, col)", "z"],
            sorted(rows, key=lambda row: -row[1]),
            self.finding,
        )


def weight_outliers(
    model: ModelHandle, *, references: Sequence[ModelHandle], threshold: float = Z_THRESHOLD
) -> WeightOutliers:
    """Each pixel's first-layer weight norm in ``model`` against the same pixel in
    ``references`` (other models of the same architecture), as a robust z-score.

    The scale at a pixel is 1.4826 x the references' median absolute deviation there, floored
    at its 5x5 neighbourhood's mean and its median over all pixels (with fewer than 3 references: the MAD of the model's
    differences over all pixels). No forward pass runs.

    >>> import explorer
    >>> from explorer.studies.auditing import make_mlp
    >>> models = [explorer.load(make_mlp(s), input_shape=(1, 28, 28)) for s in range(4)]
    >>> weight_outliers(models[0], references=models[1:]).found
    False
    """
    references = list(references)
    if not references:
        raise ValueError(
            "weight_outliers needs at least one reference model of the same architecture"
        )
    norms = first_layer_pixel_norms(model)
    refs = []
    for ref in references:
        r = first_layer_pixel_norms(ref)
        if r.shape != norms.shape:
            raise ValueError(
                f"reference {ref.name} has per-pixel weights of shape {list(r.shape)}, "
                f"{model.name} {list(norms.shape)}: compare models of the same architecture"
            )
        refs.append(r)
    stack = torch.stack(refs)
    # the median of an even count is the mean of the two middle values (torch's ``median``
    # returns the lower one: with 4 references the MAD was the second-smallest deviation,
    # one of them 0, and clean models reached z 23-40 where the midpoint gives 11-17)
    med = stack.quantile(0.5, dim=0)
    diff = norms - med
    if len(refs) >= 3:
        scale = 1.4826 * (stack - med).abs().quantile(0.5, dim=0)
        # three to five references give a noisy scale at one pixel: borrow the neighbours'
        # (nearby pixels are used alike by the data) and never go under the image's median
        around = F.avg_pool2d(scale[None, None], 5, stride=1, padding=2, count_include_pad=False)
        scale = torch.maximum(scale, around[0, 0]).clamp_min(float(scale.median()))
    else:
        scale = torch.full_like(diff, 1.4826 * float((diff - diff.median()).abs().median()))
    z = diff / scale.clamp_min(1e-8)
    return WeightOutliers(
        model=model.name,
        references=tuple(r.name for r in references),
        z=z,
        norms=norms,
        reference_median=med,
        threshold=float(threshold),
        shape=mask_shape((z >= threshold).float()),
    )
