"""How everything the library returns shows itself: the one display layer of every layer.

A *result* (what a public analysis, hypothesis or study function returns) inherits
``Shown`` and writes three small methods: ``_summary`` (what it is and how big), ``_top``
(the few entries worth reading first) and ``_table`` (a small HTML table), plus
``to_dataframe()``: every number it holds as a long (tidy) table, one row per
observation and one column per variable, taking no argument. ``Shown`` keeps every repr
under ``MAX_REPR`` characters whatever the size of the result and renders the table.
``RecordShown`` does all of it for a result of a few named values.

Containers that are not results (datasets, examples, settings) get ``compact_repr``:
tensors print as their shape and dtype, long sequences as their length.

Results keep their tensors; these helpers only format a few numbers. Every string from data
(token text, labels, claims) is escaped. pandas is imported only when a table is asked for.
This module sits at the bottom (beside ``_checks``) so that every layer's results use it.

>>> @dataclasses.dataclass(frozen=True, repr=False)
... class Score(RecordShown):
...     unit: str
...     value: float
>>> Score("head 1.4", 0.523)
Score(unit=head 1.4, value=0.523)
>>> Score("head 1.4", 0.523).to_dataframe()
       unit  value
0  head 1.4  0.523
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import re
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import torch

MAX_REPR = 300  # characters: a result prints on about three lines whatever its size
MAX_ROWS = 12  # rows of an HTML table (the strongest first); to_dataframe has them all
LONG = 8  # a sequence longer than this prints as its length (compact_repr)


def fmt(value: Any) -> str:
    """A number in 4 significant digits with a sign for floats, text otherwise."""
    if isinstance(value, float):
        return f"{value:+.4g}"
    return str(value)


def num(value: float) -> str:
    """A number in 3 significant digits, for reprs."""
    return f"{value:.3g}"


def clip(text: str, limit: int = MAX_REPR) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...)`` when cut."""
    return text if len(text) <= limit else text[: limit - 4] + "...)"


def shape(tensor: torch.Tensor, axes: Sequence[str]) -> str:
    """``"2 layers x 1 head"`` from a tensor and its (singular) axis names.

    >>> shape(torch.zeros(2, 1), ("layer", "head"))
    '2 layers x 1 head'
    """
    return " x ".join(f"{n} {a}{'s' if n != 1 else ''}" for n, a in zip(tensor.shape, axes))


def strongest(values: torch.Tensor, n: int = 3, *, by_abs: bool = True) -> list[int]:
    """Flat indices of the ``n`` largest entries (by magnitude), NaN left out.

    >>> strongest(torch.tensor([0.1, -2.0, float("nan"), 0.5]), 2)
    [1, 3]
    """
    flat = values.detach().flatten().double()
    keys = flat.abs() if by_abs else flat.clone()
    keys[flat.isnan()] = -math.inf
    n = min(n, int((~flat.isnan()).sum()))
    return keys.argsort(descending=True, stable=True)[:n].tolist()


def html_table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    note: str = "",
    *,
    colour: str | None = None,
) -> str:
    """A small static table: ``title`` above (in ``colour`` when given, e.g. a verdict's
    status), ``note`` below (both escaped).

    The first cell of each row labels it (a ``<th scope="row">``).

    >>> html_table("t", ("unit", "value"), [("head 0.1", 0.5)])
    "<div class='explorer-result'><b>t</b><table><thead><tr><th>unit</th><th>value</th></tr></thead><tbody><tr><th scope='row' style='text-align:left'>head 0.1</th><td>+0.5</td></tr></tbody></table></div>"
    """
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<th scope='row' style='text-align:left'>{e(fmt(cell))}</th>"
            if i == 0
            else f"<td>{e(fmt(cell))}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    foot = f"<div style='color:#666'>{e(note)}</div>" if note else ""
    style = f" style='color:{e(colour)}'" if colour else ""
    return (
        f"<div class='explorer-result'><b{style}>{e(title)}</b>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}</div>"
    )


def pandas() -> Any:
    """The pandas module, or an ImportError that says what needs it and how to get it."""
    try:
        # lazy: pandas is optional: only to_dataframe() needs it
        import pandas as pd
    except ImportError as err:
        raise ImportError(
            "to_dataframe() needs pandas, which is not installed: pip install pandas"
        ) from err
    return pd


def long_frame(values: torch.Tensor, axes: Sequence[str], name: str = "value") -> Any:
    """A tensor as a long table: one row per entry, a column per axis (its index) and
    ``name`` (the entry). ``frame.pivot(index="layer", columns="head", values="value")``
    gives the grid back.

    >>> long_frame(torch.tensor([[0.5, 0.25], [1.0, 0.0]]), ("layer", "head"))
       layer  head  value
    0      0     0   0.50
    1      0     1   0.25
    2      1     0   1.00
    3      1     1   0.00
    """
    if values.ndim != len(axes):
        raise ValueError(f"{len(axes)} axis names {tuple(axes)} for a {values.ndim}-d tensor")
    grids = torch.meshgrid(*(torch.arange(n) for n in values.shape), indexing="ij")
    columns: dict[str, Any] = {a: g.flatten().numpy() for a, g in zip(axes, grids)}
    columns[name] = values.detach().cpu().flatten().numpy()
    return pandas().DataFrame(columns)


_SPREAD = re.compile(r"^[A-Za-z_]+ \d+$")  # "head 3", "offset 2": an axis spread over columns


def tidy_problems(frame: Any) -> list[str]:
    """Why ``frame`` is not a long table (empty when it is): its index must be the default
    ``0..n-1`` (identifiers are columns), its column names unique, and no axis may be spread
    over columns named ``"<axis> <number>"``.

    >>> tidy_problems(pandas().DataFrame({"head 0": [1], "head 1": [2]}))
    ["axis values spread over columns: ['head 0', 'head 1']"]
    """
    pd = pandas()
    out = []
    if not isinstance(frame, pd.DataFrame):
        return [f"not a DataFrame but {type(frame).__name__}"]
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        out.append(f"an index {list(frame.index.names)} instead of columns")
    if isinstance(frame.columns, pd.MultiIndex) or not frame.columns.is_unique:
        out.append("nested or repeated column names")
    spread = [c for c in frame.columns if _SPREAD.match(str(c))]
    if spread:
        out.append(f"axis values spread over columns: {spread[:4]}")
    return out


class Shown:
    """A result: prints in one short line, renders as a small table, converts to a long one.

    Subclasses (frozen dataclasses declared with ``repr=False``) write ``_summary`` (what
    and how big), ``_top`` (the few entries worth reading first, as text), ``_table``
    (``(title, header, rows, note)`` for the HTML table) and ``to_dataframe()``.
    """

    def to_dataframe(self) -> Any:
        """Every number of the result as a long table (one row per observation)."""
        raise NotImplementedError(f"{type(self).__name__} has no to_dataframe()")

    def _summary(self) -> str:
        raise NotImplementedError

    def _top(self) -> list[str]:
        return []

    def _table(self) -> tuple[str, Sequence[str], Sequence[Sequence[Any]], str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        top = self._top()
        text = self._summary() + (f"; top: {', '.join(top)}" if top else "")
        return clip(f"{type(self).__name__}({text})")

    def _repr_html_(self) -> str:
        return html_table(*self._table())


def bars_svg(heights: Sequence[float], width: int = 240, height: int = 60) -> str:
    """A small inline SVG bar chart (a histogram's shape), tallest bar full height.

    >>> bars_svg([1, 2]).count("<rect")
    2
    """
    top = max(max(heights, default=0), 1e-12)
    step = width / max(len(heights), 1)
    bars = "".join(
        f"<rect x='{i * step:.1f}' y='{height - h / top * height:.1f}' width='{step * 0.9:.1f}' "
        f"height='{h / top * height:.1f}' fill='#4a77b4'/>"
        for i, h in enumerate(heights)
    )
    return f"<svg width='{width}' height='{height}' role='img'>{bars}</svg>"


def png_data_url(pixels: torch.Tensor, scale: int = 2) -> str:
    """A ``data:image/png`` URL of a ``[h, w]`` (grey) or ``[3, h, w]`` (RGB) image, each
    scaled to 0..255 by its own range and enlarged ``scale`` times (stdlib zlib, no PIL).

    >>> png_data_url(torch.eye(2)).startswith("data:image/png;base64,iVBORw0KGgo")
    True
    """
    img = pixels.detach().float().cpu()
    img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img
    low, high = float(img.min()), float(img.max())
    img = ((img - low) / (high - low if high > low else 1.0) * 255).round().to(torch.uint8)
    if img.ndim == 3:  # [3, h, w] -> [h, w, 3]
        img = img.permute(1, 2, 0)
    img = img.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    height, width = img.shape[:2]
    colour = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + bytes(img[y].flatten().tolist()) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _plain(value: Any) -> Any:
    """A value as one table cell: numbers, text, booleans and None as they are, others short."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else short(value)


def _brief(value: Any) -> str:
    """A value in a repr: a float in 3 digits, a tensor or container short, others as text."""
    if isinstance(value, float):
        return num(value)
    if isinstance(value, (torch.Tensor, list, tuple, dict, set, frozenset)):
        return short(value)
    return str(value)


class RecordShown(Shown):
    """A result of a few named values: the repr lists them, the HTML table has one row
    each, ``to_dataframe()`` is one row with a column each (tensors as their shape)."""

    def _fields(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.repr]  # type: ignore[arg-type]

    def _summary(self) -> str:
        return ", ".join(f"{k}={_brief(v)}" for k, v in self._fields())

    def _table(self) -> tuple:
        return type(self).__name__, ("", "value"), [(k, _plain(v)) for k, v in self._fields()], ""

    def to_dataframe(self) -> Any:
        """One row: a column per field (a tensor or long sequence as its shape or length)."""
        return pandas().DataFrame([{k: _plain(v) for k, v in self._fields()}])


def short(value: Any) -> str:
    """One field's value, short: a tensor's shape and dtype, a long sequence's length.

    >>> short(torch.zeros(500, 28)), short(tuple(range(500))), short("x")
    ('tensor[500, 28] float32', '(500 items)', "'x'")
    """
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"tensor[{', '.join(map(str, value.shape))}] {dtype}"
    if isinstance(value, (list, tuple, dict, set, frozenset, range)) and len(value) > LONG:
        return f"({len(value)} items)"
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...)"


def compact_repr(self: Any) -> str:
    """``Name(field=short value, ...)`` over a dataclass's fields shown in its repr: the
    repr of containers that are not results (datasets, examples, settings).

    >>> @dataclasses.dataclass(frozen=True, repr=False)
    ... class Data:
    ...     images: torch.Tensor
    ...     ids: tuple
    ...     source: str = "here"
    ...     __repr__ = compact_repr
    >>> Data(torch.zeros(500, 1, 28, 28), tuple(range(500)))
    Data(images=tensor[500, 1, 28, 28] float32, ids=(500 items), source='here')
    """
    parts = [f"{f.name}={short(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.repr]
    return f"{type(self).__name__}({', '.join(parts)})"
