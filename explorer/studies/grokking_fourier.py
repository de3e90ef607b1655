"""The grokking study's model helpers: its modulus and the logits of every input pair.

The per-example tests of the Fourier mechanism (accuracy with the key frequencies removed,
and with the logits kept to them) are primitives and live in
``explorer.analysis.fourier_accuracy``; their old names here keep working, with a warning,
for one release.

>>> from explorer.data.modular import modular_arithmetic
>>> from explorer.models import zoo
>>> m = zoo.modular_addition_transformer(p=7)
>>> modulus(m), tuple(all_pair_logits(m, modular_arithmetic(7)).shape)
(7, (49, 7))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from explorer._deprecate import moved_names, renamed_arguments
from explorer.analysis import fourier_accuracy
from explorer.data.modular import ModularData
from explorer.models.handle import ModelHandle
from explorer.training.losses import last_position_logits

__all__ = ["all_pair_logits", "modulus"]


@renamed_arguments(data="inputs")
def all_pair_logits(model: ModelHandle, inputs: ModularData) -> torch.Tensor:
    """Logits at "=" for every pair ``[p * p, p]`` (row ``a * p + b``), without gradients."""
    with torch.no_grad():
        return last_position_logits(model, inputs.tokens).float()


def modulus(model: ModelHandle) -> int:
    """The ``p`` of a modular-arithmetic transformer (its number of outputs)."""
    p = model.n_outputs
    if p is None or not model.is_transformer:
        raise ValueError(f"{model.name} is not a modular-arithmetic transformer")
    return int(p)


def _old_signature(new: Any) -> Any:
    """The moved function under its old call, ``f(model, tokens, labels, frequencies)``."""

    def call(
        model: ModelHandle, tokens: torch.Tensor, labels: Any, frequencies: Sequence[int]
    ) -> torch.Tensor:
        return new(model, tokens, labels=labels, frequencies=frequencies)

    return call


def _moved_accuracy_names(module: str) -> Any:
    """The ``__getattr__`` of a study module that used to hold the Fourier accuracy twins."""
    return moved_names(
        module,
        {
            name: (
                f"explorer.analysis.fourier_accuracy.{name}(model, inputs, *, labels=, "
                "frequencies=)",
                lambda name=name: _old_signature(getattr(fourier_accuracy, name)),
            )
            for name in ("accuracy_without_frequencies", "restricted_accuracy")
        },
    )


__getattr__ = _moved_accuracy_names("explorer.studies.grokking_fourier")
