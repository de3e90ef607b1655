"""The grokking model's Fourier mechanism, tested per example (hypotheses use these): the
logits of every input pair, accuracy with key frequencies removed from the embeddings, and
accuracy of the logits kept to those frequencies. ``grokking`` names them too.

>>> from explorer.models import zoo
>>> m = zoo.modular_addition_transformer(p=7)
>>> tokens, labels = torch.tensor([[1, 2, 7]]), torch.tensor([3])
>>> accuracy_without_frequencies(m, tokens, labels, ()).shape
torch.Size([1])
"""

from __future__ import annotations

import torch

from explorer._deprecate import renamed_arguments
from explorer.analysis.fourier import fourier_basis, restricted_logits
from explorer.data.modular import ModularData, modular_arithmetic
from explorer.models.handle import ModelHandle
from explorer.training.losses import last_position_logits

__all__ = ["accuracy_without_frequencies", "all_pair_logits", "modulus", "restricted_accuracy"]


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


@renamed_arguments(tokens="inputs")
def accuracy_without_frequencies(
    model: ModelHandle, inputs: torch.Tensor, labels: torch.Tensor, frequencies: tuple[int, ...]
) -> torch.Tensor:
    """Per-example correctness ``[batch]`` after removing ``frequencies`` from the embeddings.

    Each number's embedding loses its components along the ``cos k`` / ``sin k`` Fourier
    directions (over the numbers) of every k given; the "=" token is untouched. If the model
    computes with those frequencies, accuracy falls to chance (1/p).
    """
    p = modulus(model)
    basis = fourier_basis(p)
    rows = [i for i, k in enumerate(basis.frequencies.tolist()) if k in set(frequencies)]
    directions = basis.matrix[rows]  # [2k, p]
    W_E = model.weight("W_E")
    removed = directions.T @ (directions @ W_E[:p])  # [p, d_model]: the part to take away
    delta = torch.cat([removed, torch.zeros_like(W_E[p:])])
    inputs = model.check_inputs(inputs)

    def ablate(embed: torch.Tensor, hook: object) -> torch.Tensor:
        return embed - delta[inputs]

    with torch.no_grad():
        logits = model.run_with_hooks(inputs, [("hook_embed", ablate)])[:, -1]
    return (logits.argmax(-1) == torch.as_tensor(labels)).float()


@renamed_arguments(tokens="inputs")
def restricted_accuracy(
    model: ModelHandle, inputs: torch.Tensor, labels: torch.Tensor, frequencies: tuple[int, ...]
) -> torch.Tensor:
    """Per-example correctness ``[batch]`` of the logits kept to the key-frequency directions.

    The restriction is a projection over the whole input grid, so the logits of every pair
    are computed and the rows of ``inputs`` (``[a, b, =]``) are read from them.
    """
    p = modulus(model)
    data = modular_arithmetic(p, train_frac=0.5)  # only its full grid of pairs is used
    kept = restricted_logits(all_pair_logits(model, data), frequencies)
    inputs = model.check_inputs(inputs)
    rows = inputs[:, 0] * p + inputs[:, 1]
    return (kept[rows].argmax(-1) == torch.as_tensor(labels)).float()
