"""Datasets for the tutorials, all available offline."""

from explorer.data.mnist import ImageData, load_mnist
from explorer.data.modular import ModularData, modular_arithmetic
from explorer.data.tokens import induction_training_batch, repeated_tokens

__all__ = [
    "ImageData",
    "ModularData",
    "induction_training_batch",
    "load_mnist",
    "modular_arithmetic",
    "repeated_tokens",
]
