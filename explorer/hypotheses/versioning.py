"""Record versions: which stored hypotheses and verdicts this explorer can read.

Every hypothesis and verdict record carries ``"version": "MAJOR.MINOR"``. A newer *minor*
version only adds fields, so a reader keeps what it knows and ignores the rest (a record
written by a newer explorer still loads here). A newer *major* version may change meaning,
so it is refused with a message naming both versions. A record with no version is 1.0. An
unknown field in a record of a version this explorer knows is an error: the record was
damaged or edited by hand.

>>> known_fields({"version": "1.7", "claim": "x", "colour": "red"}, {"claim"}, "hypothesis")
{'claim': 'x'}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# 1.2: hypotheses record budget_spent; 1.3: verdicts record their baseline distribution
# (baseline_p95, baseline_n_sets) and hypotheses their parent_id (an edit's original)
RECORD_VERSION = (1, 3)
VERSION_TEXT = f"{RECORD_VERSION[0]}.{RECORD_VERSION[1]}"


def parse_version(value: object) -> tuple[int, int]:
    """``"1.2"`` -> (1, 2); a missing version is 1.0."""
    if value is None:
        return (1, 0)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, 0)
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        if major.isdigit() and (minor.isdigit() or not minor):
            return (int(major), int(minor or 0))
    raise ValueError(f"record version must read 'MAJOR.MINOR' (e.g. '1.1'), got {value!r}")


def known_fields(data: dict[str, Any], known: Iterable[str], what: str) -> dict[str, Any]:
    """The fields of ``data`` this explorer reads, checked against the record's version."""
    if not isinstance(data, dict):
        raise ValueError(f"a {what} record must be a JSON object, got {type(data).__name__}")
    version = parse_version(data.get("version"))
    if version[0] > RECORD_VERSION[0]:
        raise ValueError(
            f"this {what} was written by a newer explorer (record version "
            f"{version[0]}.{version[1]}; this one reads {RECORD_VERSION[0]}.x): upgrade explorer"
        )
    known = set(known)
    unknown = sorted(k for k in data if k not in known and k != "version")
    if unknown and version <= RECORD_VERSION:
        raise ValueError(
            f"unknown {what} fields {unknown} in a version {version[0]}.{version[1]} record "
            f"(known: {sorted(known)})"
        )
    return {k: v for k, v in data.items() if k in known}
