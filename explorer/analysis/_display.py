"""How analysis results show themselves: a short text line and a small escaped HTML table.

Results keep their tensors; these helpers only format a few numbers for ``__repr__`` and
``_repr_html_`` (notebooks call the latter). Every string from data (token text, labels)
is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any


def fmt(value: Any) -> str:
    """A number in 4 significant digits with a sign for floats, text otherwise."""
    if isinstance(value, float):
        return f"{value:+.4g}"
    return str(value)


def html_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = ""
) -> str:
    """A small static table: ``title`` above, ``note`` below (both escaped)."""
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(fmt(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    foot = f"<div style='color:#666'>{e(note)}</div>" if note else ""
    return (
        f"<div class='explorer-result'><b>{e(title)}</b>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}</div>"
    )
