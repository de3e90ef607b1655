"""Input checks shared by every public function.

Each check raises early with a message that names the bad value and what is allowed,
so a wrong index in a notebook cell reads as a sentence, not a stack of tensor errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def check_index(what: str, value: object, n: int, where: str = "") -> int:
    """Return ``value`` as an int if ``0 <= value < n``, else raise naming the valid range.

    >>> check_index("layer", 1, 2)
    1
    """
    if isinstance(value, bool) or (
        not isinstance(value, (int, torch.Tensor)) and not hasattr(value, "__index__")
    ):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    index = int(value)  # type: ignore[arg-type]
    suffix = f" {where}" if where else ""
    if n <= 0:
        raise ValueError(f"{what} {index} out of range: the model has no {what}s{suffix}")
    if not 0 <= index < n:
        raise ValueError(f"{what} {index} out of range: valid {what}s are 0..{n - 1}{suffix}")
    return index


def check_positive(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def check_fraction(what: str, value: float, *, open_interval: bool = True) -> float:
    bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number {bounds}, got {type(value).__name__} {value!r}")
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    if math.isnan(value) or not ok:
        bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise ValueError(f"{what} must be {bounds}, got {value!r}")
    return float(value)


def check_tensor(
    what: str,
    value: object,
    *,
    ndim: int | Sequence[int] | None = None,
    integer: bool | None = None,
    nonempty: bool = True,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the expected rank and dtype family."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            names = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{what} must have {names} dimensions, got shape {tuple(value.shape)}")
    if integer is True and (value.dtype.is_floating_point or value.dtype.is_complex):
        raise TypeError(f"{what} must hold integer token ids, got dtype {value.dtype}")
    if integer is False and not value.dtype.is_floating_point:
        raise TypeError(f"{what} must be a floating-point tensor, got dtype {value.dtype}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{what} is empty (shape {tuple(value.shape)}): nothing to run on")
    return value


def check_finite(what: str, value: torch.Tensor) -> torch.Tensor:
    if value.dtype.is_floating_point and not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{what} contains {bad} NaN or infinite values")
    return value


def check_choice(what: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}: choose one of {', '.join(map(repr, allowed))}")
    return str(value)


def check_text(what: str, texts: Sequence[str]) -> None:
    """Every text is valid Unicode: a lone surrogate (half of a UTF-16 pair, e.g. from
    JSON's ``"\\ud83d"`` or bytes decoded with ``surrogateescape``) cannot be tokenized.

    >>> check_text("prompt", ["fine", "bad \\ud83d here"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: prompt 1 has a lone surrogate '\\ud83d' at character 4: ...
    """
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            where = f"{what} {i}" if len(texts) > 1 else what
            raise ValueError(
                f"{where} has a lone surrogate {text[err.start]!r} at character {err.start}: "
                "text must be valid Unicode (a surrogate is half of a UTF-16 pair; where it came "
                "from bytes, decode them with errors='replace')"
            ) from None


def check_model(model: Any, who: str) -> Any:
    """``model`` if it is a model handle (what ``explorer.load`` returns); else a TypeError
    that says how to get one. (Checked by what a handle answers: this module sits below
    ``explorer.models``.)

    >>> check_model(None, "ablate")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: ablate needs a model handle, got NoneType: open one with explorer.load(...) ...
    """
    if not callable(getattr(model, "check_inputs", None)) or isinstance(model, type):
        raise TypeError(
            f"{who} needs a model handle, got {type(model).__name__}: open one with "
            "explorer.load(...) (from a module, a config, a checkpoint or a Hugging Face folder)"
        )
    return model


def check_curve(
    steps: Sequence[int] | torch.Tensor,
    values: Sequence[float] | torch.Tensor,
    *,
    name: str = "values",
) -> tuple[torch.Tensor, torch.Tensor]:
    """A logged curve as ``(steps, values)`` tensors (values in float64), checked: not empty,
    as many values as steps, steps strictly increasing, no NaN.

    >>> check_curve([0, 10], [1, 0.5])[1]
    tensor([1.0000, 0.5000], dtype=torch.float64)
    """
    s = torch.as_tensor(steps).flatten()
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if s.numel() == 0:
        raise ValueError("the curve is empty: no steps")
    if s.shape != v.shape:
        raise ValueError(f"steps has {s.numel()} entries but {name} has {v.numel()}")
    if (s[1:] <= s[:-1]).any():
        raise ValueError("steps must be strictly increasing")
    if torch.isnan(v).any():
        raise ValueError("the curve contains NaN values")
    return s, v
