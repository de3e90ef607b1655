"""Per-example tests of a modular-arithmetic model's Fourier mechanism (Nanda et al. 2023).

If a model adds ``a + b mod p`` with a few key frequencies, two interventions tell: removing
those frequencies from the number embeddings drops accuracy to chance (1/p), and keeping only
the key-frequency part of the logits keeps it. Both return per-example correctness, so a
hypothesis can score them on a held-out split. The frequencies come from
``explorer.analysis.fourier.key_frequencies``.

>>> from explorer.models import zoo
>>> m = zoo.modular_addition_transformer(p=7)
>>> tokens, labels = torch.tensor([[1, 2, 7]]), torch.tensor([3])
>>> accuracy_without_frequencies(m, tokens, labels=labels, frequencies=()).shape
torch.Size([1])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float, Int

from explorer.analysis.fourier import fourier_basis, restricted_logits
from explorer.data.modular import modular_arithmetic
from explorer.models.fast_paths import last_position_logits
from explorer.models.handle import ModelHandle

__all__ = ["accuracy_without_frequencies", "restricted_accuracy"]


def _modulus(model: ModelHandle) -> int:
    p = model.n_outputs
    if p is None or not model.is_transformer:
        raise ValueError(
            f"{model.name} is not a modular-arithmetic transformer (it needs p outputs and "
            "[a, b, =] token inputs)"
        )
    return int(p)


def accuracy_without_frequencies(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch 3"],
    *,
    labels: Int[torch.Tensor, " batch"] | Sequence[int],
    frequencies: Sequence[int],
) -> Float[torch.Tensor, " batch"]:
    """Per-example correctness ``[batch]`` after removing ``frequencies`` from the embeddings.

    Each number's embedding loses its components along the ``cos k`` / ``sin k`` Fourier
    directions (over the numbers) of every k given; the "=" token is untouched. If the model
    computes with those frequencies, accuracy falls to chance (1/p).
    """
    p = _modulus(model)
    basis = fourier_basis(p)
    keep = set(frequencies)
    rows = [i for i, k in enumerate(basis.frequencies.tolist()) if k in keep]
    directions = basis.matrix[rows]  # [2k, p]
    W_E = model.weight("embed")
    removed = directions.T @ (directions @ W_E[:p])  # [p, d_model]: the part to take away
    delta = torch.cat([removed, torch.zeros_like(W_E[p:])])
    tokens = model.check_inputs(inputs)

    def ablate(embed: torch.Tensor, hook: object) -> torch.Tensor:
        return embed - delta[tokens]

    with torch.no_grad():
        logits = model.run_with_hooks(tokens, [("hook_embed", ablate)])[:, -1]
    return (logits.argmax(-1) == torch.as_tensor(labels)).float()


def restricted_accuracy(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch 3"],
    *,
    labels: Int[torch.Tensor, " batch"] | Sequence[int],
    frequencies: Sequence[int],
) -> Float[torch.Tensor, " batch"]:
    """Per-example correctness ``[batch]`` of the logits kept to the key-frequency directions.

    The restriction is a projection over the whole input grid, so the logits of every pair
    are computed and the rows of ``inputs`` (``[a, b, =]``) are read from them.
    """
    p = _modulus(model)
    grid = modular_arithmetic(p, train_frac=0.5).tokens  # every pair; the split is unused
    with torch.no_grad():
        logits = last_position_logits(model, grid).float()
    kept = restricted_logits(logits, tuple(frequencies))
    tokens = model.check_inputs(inputs)
    rows = tokens[:, 0] * p + tokens[:, 1]
    return (kept[rows].argmax(-1) == torch.as_tensor(labels)).float()
