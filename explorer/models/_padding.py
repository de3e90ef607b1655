"""Padded batches: prompts of unequal length as one batch of token ids plus its attention mask.

``handle.to_tokens(["a short prompt", "a longer prompt than that"])`` pads the shorter rows
(decoders on the left, so every prompt's last token sits at position -1; encoders on the
right) and the handle remembers each padded row's mask (``PaddedRows``). Every pass of a
batch looks its rows up, so the mask follows the rows wherever analyses move them (a slice,
a chunk, copies stacked for a sweep) and each backend applies it (transformer-lens's
``attention_mask``, Hugging Face's ``attention_mask`` and ``position_ids`` under nnsight).
Real positions then get what each prompt alone gets.

A batch of ids with the tokenizer's pad id that the handle did not pad itself is refused
(``unmasked_padding_error``): without a mask the model attends to the pads.

>>> rows = PaddedRows()
>>> tokens = torch.tensor([[0, 0, 5, 6], [7, 8, 9, 4]])
>>> rows.remember(tokens, torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]))
>>> rows.mask_of(tokens[:1].repeat(2, 1)).tolist()
[[0, 0, 1, 1], [0, 0, 1, 1]]
>>> rows.mask_of(tokens[1:]) is None  # no padded row in it
True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch

__all__ = [
    "PaddedRows",
    "last_positions",
    "pad_rows",
    "position_ids",
    "read_mapping",
    "unmasked_padding_error",
]

_KEPT_ROWS = 65_536  # padded rows a handle remembers (the oldest are forgotten first)


class PaddedRows:
    """The masks of the padded rows a handle made, looked up by the rows' token ids."""

    def __init__(self) -> None:
        self._rows: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self._rows)

    def remember(self, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Keep the mask of every row of ``tokens`` that has a padded position (a row
        given again with no padding forgets its old mask)."""
        ids = tokens.detach().to("cpu", torch.long).contiguous()
        mask = mask.detach().to("cpu", torch.long)
        for row, row_mask in zip(ids, mask, strict=True):
            key = row.numpy().tobytes()
            if bool((row_mask == 0).any()):
                self._rows[key] = row_mask.clone()
                self._rows.move_to_end(key)
            else:  # the latest mask given for these ids holds: none
                self._rows.pop(key, None)
        while len(self._rows) > _KEPT_ROWS:
            self._rows.popitem(last=False)

    def mask_of(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """The mask of ``tokens`` ``[batch, pos]`` (ones on rows never padded), or None when
        no row is one the handle padded."""
        if not self._rows or tokens.ndim != 2:
            return None
        ids = tokens.detach().to("cpu", torch.long).contiguous().numpy()
        found = [self._rows.get(row.tobytes()) for row in ids]
        if all(m is None for m in found):
            return None
        ones = torch.ones(tokens.shape[1], dtype=torch.long)
        mask = torch.stack([ones if m is None else m for m in found])
        return mask.to(tokens.device)


def pad_rows(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens, mask)`` of rows of unequal length padded with ``pad_id`` on ``side``.

    >>> tokens, mask = pad_rows([[5, 6], [7, 8, 9]], 0, "left")
    >>> tokens.tolist(), mask.tolist()
    ([[0, 5, 6], [7, 8, 9]], [[0, 1, 1], [1, 1, 1]])
    """
    if side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
    width = max(len(r) for r in rows)
    tokens, mask = [], []
    for r in rows:
        pad = [pad_id] * (width - len(r))
        ones, zeros = [1] * len(r), [0] * len(pad)
        tokens.append(pad + r if side == "left" else r + pad)
        mask.append(zeros + ones if side == "left" else ones + zeros)
    return torch.tensor(tokens, dtype=torch.long), torch.tensor(mask, dtype=torch.long)


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Each real token's position within its own prompt (pads get 0), as transformer-lens
    offsets rotary and learned positions under a mask: left padding moves no prompt.

    >>> position_ids(torch.tensor([[0, 0, 1, 1]])).tolist()
    [[0, 0, 0, 1]]
    """
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def last_positions(mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last real token ``[batch]``.

    >>> last_positions(torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1]])).tolist()
    [1, 2, 2]
    """
    n = mask.shape[-1]
    flipped = mask.long().flip(-1).argmax(-1)
    return (n - 1 - flipped).long()


def read_mapping(inputs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of a tokenizer's output (or any mapping with those
    keys), checked: same shape, 0/1 values, at least one real token per row."""
    missing = [k for k in ("input_ids", "attention_mask") if k not in inputs]
    if missing:
        raise ValueError(
            f"a batch given as a mapping needs 'input_ids' and 'attention_mask' (what a "
            f"tokenizer returns with padding=True); missing {missing}, got keys {sorted(inputs)}"
        )
    ids = torch.as_tensor(inputs["input_ids"])
    mask = torch.as_tensor(inputs["attention_mask"])
    if ids.ndim == 1:
        ids, mask = ids.unsqueeze(0), mask.unsqueeze(0) if mask.ndim == 1 else mask
    if mask.shape != ids.shape:
        raise ValueError(
            f"attention_mask has shape {list(mask.shape)}, input_ids {list(ids.shape)}: "
            "they must match"
        )
    if mask.dtype.is_floating_point or not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("attention_mask must hold 0 (padding) and 1 (a real token) only")
    empty = [i for i, row in enumerate(mask) if not bool(row.any())]
    if empty:
        raise ValueError(f"rows {empty[:8]} of attention_mask are all padding: nothing to run")
    return ids, mask.long()


def unmasked_padding_error(name: str, pad_id: int, rows: list[int]) -> ValueError:
    """Why an id batch holding the pad id is refused, and the two ways to pass it."""
    return ValueError(
        f"the token ids hold the pad id {pad_id} (rows {rows[:8]}) but come with no attention "
        f"mask, so {name} would attend to the padding and every later position would be "
        "wrong. Pass the prompts as text (model.to_tokens(prompts) pads them and masks the "
        "pads), or pass {'input_ids': ids, 'attention_mask': mask} (what the tokenizer "
        "returns with padding=True) where a batch is expected"
    )
