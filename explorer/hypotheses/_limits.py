"""What a store can hold, checked before anything is written, the same on every back-end.

PostgreSQL refuses text with a NUL character and text longer than a column's limit, while
SQLite takes both; checking here, at the API, makes the two back-ends accept exactly the
same records, so an export that one accepted always imports into the other. A refusal
names the field, what was wrong, and what is allowed.

>>> check_text("author", "ada", TEXT_LIMITS["author"])
'ada'
>>> check_text("author", "a" * 201, TEXT_LIMITS["author"])
Traceback (most recent call last):
...
ValueError: author is 201 characters long; a hypothesis store holds at most 200 (on SQLite and PostgreSQL alike): shorten it
"""

from __future__ import annotations

import math
from typing import Any

# characters per text column (schema.py); columns not listed are unlimited text
TEXT_LIMITS = {
    "project": 200,
    "author": 200,
    "unit": 100,
    "item": 200,
    "rater": 200,
    "hypothesis id": 64,
    "model fingerprint": 64,
    "status": 20,
    "timestamp": 40,
    "created": 40,
    "updated": 40,
}


def check_text(field: str, value: object, limit: int | None = None) -> str:
    """``value`` if it is a string a store can hold in ``field`` (at most ``limit`` characters)."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__} {value!r:.80}")
    at = value.find("\x00")
    if at >= 0:
        raise ValueError(
            f"{field} contains a NUL character (\\x00) at position {at}: a hypothesis store "
            "cannot hold it (PostgreSQL refuses NUL in text): remove it"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{field} contains a lone surrogate {value[err.start]!r} at position {err.start}: "
            "it is not valid Unicode text, so a hypothesis store cannot hold it"
        ) from None
    if limit is not None and len(value) > limit:
        raise ValueError(
            f"{field} is {len(value)} characters long; a hypothesis store holds at most "
            f"{limit} (on SQLite and PostgreSQL alike): shorten it"
        )
    return value


def check_field(field: str, value: object) -> str:
    """``check_text`` with the store's limit for ``field`` (a key of ``TEXT_LIMITS``)."""
    return check_text(field, value, TEXT_LIMITS[field])


def check_stored_number(field: str, value: float) -> float:
    """A verdict number a store can hold: finite (SQLite stores NaN as NULL, which it refuses)."""
    if not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number to be stored, got {value!r}")
    return value


def check_project(name: object) -> str:
    """A project name a store can hold: a non-empty string of at most 200 characters."""
    if not isinstance(name, str):
        raise TypeError(
            f"project must be a project's name (a string), got {type(name).__name__} {name!r:.80}"
        )
    if not name.strip():
        raise ValueError(f"a project needs a non-empty name, got {name!r}")
    return check_field("project", name)


# Bounds on a hypothesis's numbers: beyond them a test would run out of memory or time, or
# the number cannot be what was meant (a seed torch cannot take, a count of 10**400).
MAX_N_BOOT = 100_000  # bootstrap weights are n_boot x n_examples float64
MAX_N_BASELINE = 1_000  # each random unit set is one more run of the measure
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a 64-bit seed
MAX_SPLIT = 10_000_000  # example indices a split may list
_INT_LIMIT = 2**63  # any other integer in a record


def check_count(field: str, value: object, low: int, high: int) -> int:
    """An integer ``low <= value <= high``, else an error naming the field and the range.

    >>> check_count("n_boot", 10**400, 1, MAX_N_BOOT)
    Traceback (most recent call last):
    ...
    ValueError: n_boot must be an integer from 1 to 100,000, got a 401-digit number
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an integer, got {type(value).__name__} {value!r:.40}")
    if not low <= value <= high:
        shown = f"a {len(str(abs(value)))}-digit number" if abs(value) > 10**18 else f"{value}"
        raise ValueError(f"{field} must be an integer from {low:,} to {high:,}, got {shown}")
    return value


def check_real(field: str, value: object, *, optional: bool = False) -> float | None:
    """A finite real number (an int or float that fits a float), or None if ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a number, got {value!r}")
    if isinstance(value, int) and abs(value) > 2**1023:
        digits = len(str(abs(value)))
        raise ValueError(f"{field} must be a finite number, got a {digits}-digit integer")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"{field} must be a number, got {type(value).__name__} {value!r:.40}"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    return number


def check_hypothesis_numbers(h: Any) -> None:
    """The numbers of a hypothesis (or its fields) within what a test can run."""
    check_real("threshold", h.threshold)
    check_real("baseline", h.baseline, optional=True)
    check_count("n_boot", h.n_boot, 1, MAX_N_BOOT)
    check_count("n_baseline", h.n_baseline, 1, MAX_N_BASELINE)
    check_count("seed", h.seed, 0, MAX_SEED)
    check_real("confidence", h.confidence)


def check_record_numbers(data: object, what: str = "record", path: str = "") -> None:
    """Every number in a record read from a file is finite and of a sane size; a split lists
    at most ``MAX_SPLIT`` examples. Raises a ``ValueError`` naming the field."""
    if isinstance(data, dict):
        for key, value in data.items():
            field = f"{path}.{key}" if path else str(key)
            if key == "ranges" and isinstance(value, list):
                _check_ranges(f"{what} field {field}", value)
            else:
                check_record_numbers(value, what, field)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_record_numbers(value, what, f"{path}[{i}]")
    elif isinstance(data, float) and not math.isfinite(data):
        raise ValueError(f"{what} field {path} must be a finite number, got {data!r}")
    elif isinstance(data, int) and not isinstance(data, bool) and abs(data) >= _INT_LIMIT:
        raise ValueError(
            f"{what} field {path} is a {len(str(abs(data)))}-digit number: a record's "
            "integers are below 2**63"
        )


def _check_ranges(field: str, ranges: list[Any]) -> None:
    total = 0
    for i, pair in enumerate(ranges):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError(f"{field}[{i}] must be [start, stop], got {pair!r:.60}")
        try:
            start = check_count(f"{field}[{i}] start", pair[0], 0, _INT_LIMIT)
            stop = check_count(f"{field}[{i}] stop", pair[1], start, _INT_LIMIT)
        except TypeError as err:  # a record's fault is a ValueError, like every other
            raise ValueError(str(err)) from None
        total += stop - start
        if total > MAX_SPLIT:
            raise ValueError(
                f"{field} lists more than {MAX_SPLIT:,} examples (a split names at most that many)"
            )
