"""The points of a sweep: a grid or a list of settings, crossed with seeds, each with a name.

A point is a study's base setting with some fields changed. Its name lists the changed
fields and the seed (``train_frac=0.3_weight_decay=1_seed=0``): readable, stable across
calls, and the name of its run folder. Two points with the same name are refused.

>>> pts = expand_points(grid={"weight_decay": [0.1, 1.0]}, seeds=[0, 1], fields=("weight_decay", "seed"))
>>> [p.name for p in pts]
['weight_decay=0.1_seed=0', 'weight_decay=0.1_seed=1', 'weight_decay=1_seed=0', 'weight_decay=1_seed=1']
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SweepPoint", "expand_points", "point_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the settings it changes from the study's base, and its name."""

    name: str
    settings: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"SweepPoint({self.name!r})"


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_value_text(v) for v in value)
    return str(value)


def point_name(settings: Mapping[str, Any]) -> str:
    """The folder name of a point: its settings in order as ``name=value`` joined by ``_``,
    with characters other than letters, digits and ``._=+-`` replaced by ``-``.

    >>> point_name({"lr": 0.001, "betas": (0.9, 0.98), "seed": 2})
    'lr=0.001_betas=0.9-0.98_seed=2'
    """
    text = "_".join(f"{k}={_value_text(v)}" for k, v in settings.items()) or "base"
    return _UNSAFE.sub("-", text)[:200]


def _jsonable(where: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{where} must be JSON-serialisable (numbers, strings, lists): {err}"
        ) from None


def expand_points(
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    points: Iterable[Mapping[str, Any]] | None = None,
    seeds: Sequence[int] | None = None,
    fields: Sequence[str],
    seed_field: str = "seed",
) -> list[SweepPoint]:
    """The points of ``grid`` (every combination, in the grid's order) or of ``points`` (a
    list of settings), each crossed with every seed of ``seeds`` (set as ``seed_field``).

    Args:
        grid: ``{setting: [values]}``; the points are the cartesian product.
        points: a list of ``{setting: value}`` (give ``grid`` or ``points``, not both).
        seeds: seeds to repeat every point with (None: the settings' own seed).
        fields: the study's setting names; any other name is refused.
        seed_field: the setting that ``seeds`` sets.
    """
    if (grid is None) == (points is None):
        raise ValueError("give either grid={setting: [values]} or points=[{setting: value}, ...]")
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError(f"grid must be a non-empty {{setting: [values]}} dict, got {grid!r}")
        for key, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"grid[{key!r}] must be a non-empty list of values, got {values!r}"
                )
        keys = list(grid)
        combos = [dict(zip(keys, vs)) for vs in itertools.product(*(grid[k] for k in keys))]
    else:
        combos = [dict(p) for p in points]  # type: ignore[union-attr]
        if not combos:
            raise ValueError("points is empty: give at least one {setting: value}")
        for p in combos:
            if not isinstance(p, dict):
                raise TypeError(f"each point must be a {{setting: value}} dict, got {p!r}")
    unknown = sorted({k for c in combos for k in c} - set(fields))
    if unknown:
        raise ValueError(
            f"unknown settings {unknown}: this study's settings are {', '.join(fields)}"
        )
    if seeds is not None:
        seeds = list(seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
        if any(seed_field in c for c in combos):
            raise ValueError(f"give seeds= or a {seed_field!r} setting in the points, not both")
        combos = [{**c, seed_field: s} for c in combos for s in seeds]
    out, seen = [], {}
    for c in combos:
        settings = _jsonable(f"the settings of point {c!r}", c)
        name = point_name(settings)
        if name in seen:
            raise ValueError(
                f"two points have the same name {name!r} ({seen[name]!r} and {settings!r}): "
                "remove the duplicate"
            )
        seen[name] = settings
        out.append(SweepPoint(name, settings))
    return out
