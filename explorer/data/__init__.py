"""Datasets for the tutorials, all available offline.

>>> from explorer.data import modular_arithmetic, repeated_tokens
>>> repeated_tokens(3, 4, 10).shape  # [BOS][4 random][the same 4]
torch.Size([3, 9])
>>> modular_arithmetic(7, train_frac=0.5).p
7
"""

from explorer.data.bpe import (
    BPETokenizer,
    train_bpe,
)
from explorer.data.mnist import (
    ImageData,
    load_mnist,
    read_idx,
)
from explorer.data.modular import (
    ModularData,
    modular_arithmetic,
)
from explorer.data.stdlib_text import (
    SourceFile,
    StdlibCorpus,
    held_out_file,
    stdlib_corpus,
)
from explorer.data.tokens import (
    induction_training_batch,
    repeated_tokens,
)

__all__ = [
    "BPETokenizer",
    "ImageData",
    "ModularData",
    "SourceFile",
    "StdlibCorpus",
    "held_out_file",
    "induction_training_batch",
    "load_mnist",
    "modular_arithmetic",
    "read_idx",
    "repeated_tokens",
    "stdlib_corpus",
    "train_bpe",
]
