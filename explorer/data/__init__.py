"""Datasets for the tutorials, all available offline."""

from explorer.data.bpe import BPETokenizer, train_bpe
from explorer.data.mnist import ImageData, load_mnist
from explorer.data.modular import ModularData, modular_arithmetic
from explorer.data.stdlib_text import StdlibCorpus, stdlib_corpus
from explorer.data.tokens import induction_training_batch, repeated_tokens

__all__ = [
    "BPETokenizer",
    "ImageData",
    "ModularData",
    "StdlibCorpus",
    "induction_training_batch",
    "load_mnist",
    "modular_arithmetic",
    "repeated_tokens",
    "stdlib_corpus",
    "train_bpe",
]
