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
