"""Short reprs for dataclasses that hold tensors or long sequences (datasets, examples,
evidence): tensors print as their shape and dtype, long sequences as their length.

Analysis results have their own display (``explorer.analysis._display``); this is for the
containers every layer passes around, so it lives at the bottom, beside ``_checks``.

>>> from dataclasses import dataclass
>>> import torch
>>> @dataclass(frozen=True, repr=False)
... class Data:
...     images: torch.Tensor
...     ids: tuple
...     source: str = "here"
...     __repr__ = compact_repr
>>> Data(torch.zeros(500, 1, 28, 28), tuple(range(500)))
Data(images=tensor[500, 1, 28, 28] float32, ids=(500 items), source='here')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

LONG = 8  # a sequence longer than this prints as its length


def short(value: Any) -> str:
    """One field's value, short: a tensor's shape and dtype, a long sequence's length."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"tensor[{', '.join(map(str, value.shape))}] {dtype}"
    if isinstance(value, (list, tuple, dict, set, frozenset, range)) and len(value) > LONG:
        return f"({len(value)} items)"
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...)"


def compact_repr(self: Any) -> str:
    """``Name(field=short value, ...)`` over a dataclass's fields shown in its repr."""
    parts = [f"{f.name}={short(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.repr]
    return f"{type(self).__name__}({', '.join(parts)})"
