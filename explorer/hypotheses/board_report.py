"""The end-of-session report: a live session's board as one self-contained HTML file.

``board_html(board)`` lays out a ``explorer.session.Board`` (or anything with its fields:
code, title, revealed, participants, units, leaderboard, truth, records, version) as a page
with its figures drawn in inline SVG (verdicts and budget per participant, the room's
agreement per unit, the leaderboard's findings against passes) and its tables. Nothing is
fetched when the page opens: no script, stylesheet, font or image from anywhere, so it
reads the same offline and in ten years. Every string from the room (names, labels, units,
the truth) is escaped. The truth appears only on a revealed board. ``export_html(board,
path)`` writes it.

>>> from types import SimpleNamespace as Row
>>> board = Row(code="ROOM-1", title="<week 3>", revealed=False, version=2, truth=None,
...     participants=(Row(name="Bo", hypotheses=1, verdicts={"supported": 1},
...                       passes_spent=40, budget=100),),
...     units=(Row(unit="neuron 0.3", labels={"Bo": "concept"}, kappa=None, raters=1),),
...     leaderboard=(Row(name="Bo", findings=1, passes=40, correct=None),),
...     records=(Row(kind="verdict", id="v1", author="Bo", committed_at=1.7e9),))
>>> page = board_html(board)
>>> "&lt;week 3&gt;" in page, page.count("<svg"), "<script" in page
(True, 4, False)
"""

from __future__ import annotations

import datetime
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["board_html", "export_html"]

STATUS_COLOURS = {
    "supported": "#16a34a",
    "refuted": "#dc2626",
    "inconclusive": "#d97706",
    "unavailable": "#9ca3af",
}
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { padding: 2px 8px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
.figures { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; } figcaption { color: #6b7280; font-size: 12px; }
.muted { color: #6b7280; }
"""
_e = html.escape


def _when(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        stamp = value
    else:
        try:
            stamp = datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            return str(value)
    return stamp.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{_e(label)}'>{body}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}'>{_e(text)}</text>"
    )


def _verdict_bars(participants: Sequence[Any]) -> str:
    """Per participant, one bar of their verdicts stacked by status."""
    row, left, width = 22, 110, 220
    top = max([sum(p.verdicts.values()) for p in participants] + [1])
    parts = []
    for i, p in enumerate(participants):
        y, x = 8 + i * row, float(left)
        parts.append(_text(left - 6, y + 12, p.name, "end"))
        for status, n in sorted(p.verdicts.items()):
            w = width * n / top
            colour = STATUS_COLOURS.get(status, "#6b7280")
            parts.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='14' fill='{colour}'>"
                f"<title>{_e(p.name)}: {n} {_e(status)}</title></rect>"
            )
            x += w
        parts.append(_text(x + 4, y + 12, str(sum(p.verdicts.values()))))
    height = 16 + row * max(len(participants), 1)
    return _svg(left + width + 40, height, "".join(parts), "verdicts per participant")


def _budget_bars(participants: Sequence[Any]) -> str:
    """Per participant, the passes spent as a share of their budget (of the most spent
    where there is no budget)."""
    row, left, width = 22, 110, 220
    most = max([p.passes_spent for p in participants] + [1])
    parts = []
    for i, p in enumerate(participants):
        y = 8 + i * row
        of = p.budget if p.budget else most
        share = min(1.0, p.passes_spent / of) if of else 0.0
        colour = "#dc2626" if p.budget and p.passes_spent >= p.budget else "#3b82f6"
        parts.append(_text(left - 6, y + 12, p.name, "end"))
        parts.append(f"<rect x='{left}' y='{y}' width='{width}' height='14' fill='#f3f4f6'/>")
        parts.append(
            f"<rect x='{left}' y='{y}' width='{width * share:.1f}' height='14' fill='{colour}'/>"
        )
        budget = p.budget if p.budget else "no budget"
        parts.append(_text(left + width + 4, y + 12, f"{p.passes_spent} / {budget}"))
    height = 16 + row * max(len(participants), 1)
    return _svg(left + width + 110, height, "".join(parts), "passes spent of the budget")


def _kappa_bars(units: Sequence[Any]) -> str:
    """Per unit, the room's kappa on a -1..1 axis (n/a where undefined)."""
    row, left, width = 22, 120, 240
    zero = left + width / 2
    parts = [
        f"<line x1='{zero}' y1='0' x2='{zero}' y2='{16 + row * len(units)}' stroke='#9ca3af'/>"
    ]
    for i, u in enumerate(units):
        y = 8 + i * row
        parts.append(_text(left - 6, y + 12, u.unit, "end"))
        if u.kappa is None or not math.isfinite(u.kappa):
            parts.append(_text(zero + 4, y + 12, "n/a"))
            continue
        w = abs(u.kappa) * width / 2
        x = zero if u.kappa >= 0 else zero - w
        colour = "#16a34a" if u.kappa >= 0.6 else "#d97706" if u.kappa >= 0.2 else "#dc2626"
        parts.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='14' fill='{colour}'/>")
        # the value beside the bar's end, on the zero line's other side for a negative one
        at, anchor = (zero + w + 4, "start") if u.kappa >= 0 else (zero + 4, "start")
        parts.append(_text(at, y + 12, f"{u.kappa:.2f}", anchor))
    height = 16 + row * max(len(units), 1)
    return _svg(left + width + 50, height, "".join(parts), "kappa per unit")


def _leader_scatter(leaders: Sequence[Any]) -> str:
    """Findings (up) against passes (right), one dot per participant."""
    w, h, pad = 300, 190, 34
    most_p = max([r.passes for r in leaders] + [1])
    most_f = max([r.findings for r in leaders] + [1])
    parts = [
        f"<line x1='{pad}' y1='{h - pad}' x2='{w - 10}' y2='{h - pad}' stroke='#9ca3af'/>",
        f"<line x1='{pad}' y1='10' x2='{pad}' y2='{h - pad}' stroke='#9ca3af'/>",
        _text(w - 10, h - 10, f"passes (0..{most_p})", "end"),
        _text(4, 12, f"findings (0..{most_f})"),
    ]
    spots: dict[tuple[int, int], list[Any]] = {}  # people on one spot share one label
    for r in leaders:
        spots.setdefault((r.passes, r.findings), []).append(r)
    for (passes, findings), group in spots.items():
        x = pad + (w - pad - 30) * passes / most_p
        y = h - pad - (h - pad - 24) * findings / most_f
        for r in group:
            colour = "#2563eb" if r.correct is None else "#16a34a" if r.correct else "#dc2626"
            parts.append(
                f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{colour}'><title>{_e(r.name)}: "
                f"{r.findings} findings, {r.passes} passes</title></circle>"
            )
        right = x > w / 2  # the label runs towards the middle, never off the figure
        names = ", ".join(r.name for r in group)
        parts.append(_text(x - 7 if right else x + 7, y - 7, names, "end" if right else "start"))
    return _svg(w, h, "".join(parts), "findings against passes")


def _truth(value: Any) -> str:
    """A revealed truth, readable: 'planted.concept_neuron_model, seed 0: neuron 0.3'."""
    if not isinstance(value, Mapping) or "study" not in value:
        return value if isinstance(value, str) else json.dumps(value, default=str)
    units = value.get("units") or []
    text = str(value["study"]) + (f", seed {value['seed']}" if "seed" in value else "")
    text += f": {', '.join(map(str, units))}" if units else ""
    extra = [f"{k} {v}" for k, v in value.items() if k not in ("study", "seed", "units")]
    return text + (f" ({'; '.join(extra)})" if extra else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], testid: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table data-testid='{testid}'><tr>{head}</tr>{body}</table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _pairs(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items())) or "-"


def board_html(board: Any) -> str:
    """The board as one self-contained HTML page (see the module docstring)."""
    people, units, leaders = list(board.participants), list(board.units), list(board.leaderboard)
    state = "revealed" if board.revealed else "hidden until the mentor reveals it"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(board.title)}: session report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(board.title)}</h1>",
        f"<p class='muted'>join code {_e(board.code)}; {len(people)} participants, "
        f"{len(units)} units, {len(board.records)} records (board version {board.version}); "
        f"the truth is {state}.</p>",
        "<h2>Figures</h2><div class='figures'>",
        _figure(_verdict_bars(people), "verdicts per participant, by outcome"),
        _figure(_budget_bars(people), "forward passes spent of each budget"),
        _figure(_kappa_bars(units), "the room's agreement per unit (kappa, -1..1)"),
        _figure(_leader_scatter(leaders), "the auditing game: findings against passes"),
        "</div><h2>Participants</h2>",
        _table(
            ("name", "hypotheses", "verdicts", "passes", "budget"),
            [
                (
                    p.name,
                    p.hypotheses,
                    _pairs(p.verdicts),
                    p.passes_spent,
                    p.budget if p.budget else "none",
                )
                for p in people
            ],
            "participants",
        ),
        "<h2>Labels and agreement</h2>",
        _table(
            ("unit", "kappa", "raters", "labels"),
            [(u.unit, _num(u.kappa), u.raters, _pairs(u.labels)) for u in units],
            "units",
        ),
        "<h2>Leaderboard</h2>",
        _table(
            ("name", "findings", "passes", "correct"),
            [
                (r.name, r.findings, r.passes, "hidden" if r.correct is None else r.correct)
                for r in leaders
            ],
            "leaderboard",
        ),
    ]
    if board.revealed and board.truth:
        parts += ["<h2>The truth</h2>", _table(("who", "their model and its planted units"), sorted(
            (str(k), _truth(v)) for k, v in board.truth.items()
        ), "truth")]  # fmt: skip
    parts += [
        "<h2>Records</h2>",
        _table(
            ("committed", "author", "kind", "id"),
            [(_when(r.committed_at), r.author, r.kind, r.id) for r in board.records],
            "records",
        ),
        "</body></html>",
    ]
    return "".join(parts)


def export_html(board: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``board_html(board)`` to ``path`` (a ``.html`` file); the path written."""
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"an HTML report goes to a .html file, got {str(path)!r}")
    target.write_text(board_html(board), encoding="utf-8")
    return target
