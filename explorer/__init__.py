"""explorer: Jupyter widgets and analysis for the science of deep learning.

>>> import explorer
>>> model = explorer.zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
>>> model.n_layers
2

This module is the facade, the top layer (docs/architecture.md): ``explorer.load`` opens
training runs as well as everything ``explorer.models.load`` opens. Widgets and hypotheses
load on first use (``explorer.show``, ``explorer.Hypothesis``): a lazy import for import
time, so ``import explorer`` stays fast and never pulls a widget library into analysis.
"""

from __future__ import annotations

import importlib
from typing import Any

from explorer._load import load
from explorer.models import (
    CNNConfig,
    MLPConfig,
    ModelHandle,
    TransformerConfig,
    save_checkpoint,
    zoo,
)
from explorer.training.run import Run

__version__ = "0.1.0"

_LAZY = {
    "show": ("explorer.views", "show"),
    "Explorer": ("explorer.views", "Explorer"),
    "Hypothesis": ("explorer.hypotheses", "Hypothesis"),
    "HypothesisStore": ("explorer.hypotheses", "HypothesisStore"),
    "Split": ("explorer.hypotheses", "Split"),
    "Examples": ("explorer.hypotheses", "Examples"),
    "register_measure": ("explorer.hypotheses", "register_measure"),
}

__all__ = [
    "CNNConfig",
    "Examples",
    "Explorer",
    "Hypothesis",
    "HypothesisStore",
    "MLPConfig",
    "ModelHandle",
    "Run",
    "Split",
    "TransformerConfig",
    "load",
    "register_measure",
    "save_checkpoint",
    "show",
    "zoo",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
