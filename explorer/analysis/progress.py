"""Progress measures over training: the sparsity of a spectrum and the weight norm.

Nanda et al. (2023) watch these next to the Fourier measures (``explorer.analysis.fourier``)
to see the generalising circuit of grokking form. The grokking study reads its three phases
off them (``explorer.studies.grokking_phases``); curves are read by
``explorer.analysis.curves``.

>>> import torch
>>> round(gini(torch.tensor([0.0, 0.0, 0.0, 5.0])), 3), gini(torch.ones(4))
(0.75, 0.0)
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from explorer._deprecate import moved_names
from explorer.analysis.curves import detect_phase_change, first_crossing
from explorer.analysis.fourier_accuracy import accuracy_without_frequencies, restricted_accuracy
from explorer.models.handle import ModelHandle

# The progress sub-namespace: measures logged over training (with grokking's Fourier
# accuracies, explorer.analysis.fourier_accuracy) and the readers of their curves.
__all__ = [
    "accuracy_without_frequencies",
    "detect_phase_change",
    "first_crossing",
    "gini",
    "restricted_accuracy",
    "weight_norm",
]


def gini(values: torch.Tensor | Sequence[float]) -> float:
    """Gini coefficient of ``|values|``: 0 when all are equal, ``(n-1)/n`` when one holds all.

    Used as the sparsity of a Fourier spectrum: it rises as the norm concentrates on a few
    key frequencies. Computed as ``(n + 1 - 2 Σ_i C_i / C_n) / n`` with ``C`` the cumulative
    sum of the sorted values.
    """
    x = torch.as_tensor(values, dtype=torch.float64).flatten().abs()
    if x.numel() == 0:
        raise ValueError("gini of an empty vector is undefined")
    if not torch.isfinite(x).all():
        raise ValueError("gini: values contain NaN or infinite entries")
    total = float(x.sum())
    if total == 0:
        return 0.0
    n = x.numel()
    cumulative = torch.sort(x).values.cumsum(0)
    return float((n + 1 - 2 * cumulative.sum() / total) / n)


def weight_norm(model: nn.Module | ModelHandle) -> float:
    """Total L2 norm of every trainable parameter, ``sqrt(Σ w²)`` (accepts a ``ModelHandle``)."""
    if not callable(getattr(model, "parameters", None)):
        raise TypeError(
            f"weight_norm needs an nn.Module or ModelHandle, got {type(model).__name__}"
        )
    squares = [p.detach().float().pow(2).sum() for p in model.parameters() if p.requires_grad]
    return math.sqrt(float(sum(squares))) if squares else 0.0


def _phases() -> Any:
    # lazy: the deprecated names live in the studies layer above this one; importing it at the
    # top would point analysis upward, so it is looked up by name, only when an old name is used
    return importlib.import_module("explorer.studies.grokking_phases")


__getattr__ = moved_names(
    "explorer.analysis.progress",
    {
        "detect_phases": (
            "explorer.studies.grokking_phases.detect_phases",
            lambda: _phases().detect_phases,
        ),
        "Phase": ("explorer.studies.grokking_phases.Phase", lambda: _phases().Phase),
        "Phases": ("explorer.studies.grokking_phases.Phases", lambda: _phases().Phases),
    },
)
