"""``batch_size=``: how many inputs a forward pass holds (docs/api.md glossary).

Sweeps and patching run many copies of the batch per pass; before issue 24 their bound was
``max_tokens`` (rows x positions). The glossary's word is ``batch_size``, counted in input
rows: this converts it to the token bound the intervention runner takes, and accepts the
old ``max_tokens=`` for one release with a warning.

>>> import torch
>>> token_budget(torch.zeros(4, 16, dtype=torch.long), batch_size=8)  # 8 rows x 16 tokens
128
>>> token_budget(torch.zeros(4, 1, 28, 28), batch_size=None) == MAX_TOKENS
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from explorer._checks import check_positive
from explorer._deprecate import _warn
from explorer.analysis.interventions import MAX_TOKENS

F = TypeVar("F", bound=Callable[..., Any])


def _tokens_per_row(inputs: torch.Tensor) -> int:
    return int(inputs.shape[1]) if inputs.dtype == torch.long and inputs.ndim > 1 else 1


def token_budget(inputs: torch.Tensor, batch_size: int | None) -> int:
    """Rows x positions a pass may hold: ``batch_size`` rows, or the default bound."""
    if batch_size is None:
        return MAX_TOKENS
    check_positive("batch_size", batch_size)
    return int(batch_size) * _tokens_per_row(torch.as_tensor(inputs))


def accepts_max_tokens(function: F) -> F:
    """Turn an old ``max_tokens=`` into ``batch_size=`` (rows), with a warning."""
    name = function.__qualname__

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if "max_tokens" in kwargs:
            if kwargs.get("batch_size") is not None:
                raise TypeError(f"{name}() got both max_tokens= (the old name) and batch_size=")
            max_tokens = kwargs.pop("max_tokens")
            _warn(f"{name}(max_tokens=...)", f"{name}(batch_size=...) (inputs per pass)", 3)
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            kwargs["batch_size"] = max(1, int(max_tokens) // _tokens_per_row(inputs))
        return function(*args, **kwargs)

    call.__deprecated_arguments__ = {"max_tokens": "batch_size"}  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
