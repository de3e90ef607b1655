"""How analysis results show themselves: a short text line and a small escaped HTML table.

Results keep their tensors; these helpers only format a few numbers for ``__repr__`` and
``_repr_html_`` (notebooks call the latter) and build ``to_dataframe`` tables. Every string
from data (token text, labels) is escaped. A result class inherits ``Shown`` and writes
three small methods (what it is, its top entries, its table); ``Shown`` keeps every repr
under ``MAX_REPR`` characters whatever the size of the result, and renders the table.
pandas is imported only when a table is asked for.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import torch

MAX_REPR = 300  # characters: a result prints on about three lines whatever its size
MAX_ROWS = 12  # rows of an HTML table (the strongest first); to_dataframe has them all


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
    title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = ""
) -> str:
    """A small static table: ``title`` above, ``note`` below (both escaped).

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
    return (
        f"<div class='explorer-result'><b>{e(title)}</b>"
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


def grid_frame(grid: torch.Tensor, row: str = "layer", column: str = "head") -> Any:
    """A ``[row, column]`` grid as a DataFrame labelled ``layer 0..`` x ``head 0..``.

    >>> grid_frame(torch.tensor([[0.5, 0.25], [1.0, 0.0]]))
             head 0  head 1
    layer 0     0.5    0.25
    layer 1     1.0    0.00
    """
    grid = grid.detach().double().cpu()
    return pandas().DataFrame(
        grid.numpy(),
        index=[f"{row} {i}" for i in range(grid.shape[0])],
        columns=[f"{column} {j}" for j in range(grid.shape[1])],
    )


class Shown:
    """A result that prints in one short line and renders as a small table.

    Subclasses (frozen dataclasses declared with ``repr=False``) write ``_summary`` (what
    and how big), ``_top`` (the few entries worth reading first, as text) and ``_table``
    (``(title, header, rows, note)`` for the HTML table).
    """

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


class RecordShown(Shown):
    """A result of a few named numbers: the repr lists them, the table has one row each."""

    def _fields(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def _summary(self) -> str:
        return ", ".join(f"{k}={num(v) if isinstance(v, float) else v}" for k, v in self._fields())

    def _table(self) -> tuple:
        return type(self).__name__, ("", "value"), self._fields(), ""
