"""The board of a live session: pure data (frozen dataclasses) a widget draws and a watcher
pushes, read from the store by ``Session.board()``.

Per participant: hypotheses, verdicts by outcome, forward passes spent of their budget; per
unit: each participant's label and the room's agreement (Cohen's kappa for two raters,
Fleiss' for more, as ``explorer.hypotheses.agreement`` computes it); for the auditing game a
leaderboard of findings (hypotheses whose latest verdict is ``supported``) against passes,
``correct`` only once the mentor has revealed the truth; and every record (label,
hypothesis, verdict) with the store's time of its commit. A participant's board holds only
what the store lets them read: before the reveal, their own records.

>>> board = Board("ABCDE-FGHJK", "week 3", False, (ParticipantRow("Bo", 1, {"supported": 1}, 10, 100),),
...               (UnitRow("neuron 0.3", {"Bo": "concept"}, None, 1),), (LeaderRow("Bo", 1, 10, None),),
...               None, (BoardRecord("hypothesis", "h1", "Bo", 1.0e9),), 3)
>>> board
Board('week 3', ABCDE-FGHJK: 1 participants, 1 units, 1 records, hidden; version 3)
>>> board.to_dict()["participants"][0]["passes_spent"]
10
>>> print(board._repr_markdown_().splitlines()[0])
### week 3 (join code ABCDE-FGHJK)
"""

from __future__ import annotations

import dataclasses
import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explorer._display import Shown, num, pandas
from explorer.hypotheses.agreement import Label, agreement_by_unit

__all__ = ["Board", "BoardRecord", "LeaderRow", "ParticipantRow", "UnitRow"]

RECORD_KINDS = ("label", "hypothesis", "verdict")


@dataclass(frozen=True)
class ParticipantRow:
    """One participant: hypotheses written, verdicts per outcome, passes spent of ``budget``
    (None: no budget)."""

    name: str
    hypotheses: int
    verdicts: dict[str, int]
    passes_spent: int
    budget: int | None


@dataclass(frozen=True)
class UnitRow:
    """One labelled unit: each participant's label (their latest), the room's kappa (None
    when undefined: fewer than two raters, no shared item, one category) and rater count."""

    unit: str
    labels: dict[str, str]
    kappa: float | None
    raters: int


@dataclass(frozen=True)
class LeaderRow:
    """Findings (hypotheses whose latest verdict is supported) against passes spent;
    ``correct`` (findings naming a planted unit) is None until the reveal."""

    name: str
    findings: int
    passes: int
    correct: int | None


@dataclass(frozen=True)
class BoardRecord:
    """A label, hypothesis or verdict, its author and the store's time of its (latest)
    commit in epoch seconds."""

    kind: str
    id: str
    author: str
    committed_at: float


@dataclass(frozen=True, repr=False)
class Board(Shown):
    """What the room has done, as the reader may see it (see the module docstring)."""

    code: str
    title: str
    revealed: bool
    participants: tuple[ParticipantRow, ...]
    units: tuple[UnitRow, ...]
    leaderboard: tuple[LeaderRow, ...]
    truth: dict[str, Any] | None
    records: tuple[BoardRecord, ...]
    version: int

    def _summary(self) -> str:
        state = "revealed" if self.revealed else "hidden"
        return (
            f"{self.title!r}, {self.code}: {len(self.participants)} participants, "
            f"{len(self.units)} units, {len(self.records)} records, {state}; "
            f"version {self.version}"
        )

    def _table(self) -> tuple[str, Sequence[str], Sequence[Sequence[Any]], str]:
        rows = [
            (
                p.name,
                p.hypotheses,
                ", ".join(f"{k} {v}" for k, v in sorted(p.verdicts.items())) or "-",
                p.passes_spent if p.budget is None else f"{p.passes_spent} of {p.budget}",
            )
            for p in self.participants
        ]
        header = ("participant", "hypotheses", "verdicts", "passes")
        return f"{self.title} ({self.code})", header, rows, f"{len(self.records)} records"

    def _repr_markdown_(self) -> str:
        def cell(text: object) -> str:
            return html.escape(str(text)).replace("|", "\\|")

        lines = [f"### {cell(self.title)} (join code {cell(self.code)})", ""]
        lines += ["| participant | hypotheses | verdicts | passes |", "|---|---|---|---|"]
        for name, hyps, verdicts, passes in self._table()[2]:
            lines.append(f"| {cell(name)} | {hyps} | {cell(verdicts)} | {passes} |")
        if self.units:
            lines += ["", "| unit | labels | kappa |", "|---|---|---|"]
            for u in self.units:
                labels = ", ".join(f"{k}: {v}" for k, v in u.labels.items())
                kappa = "-" if u.kappa is None else num(u.kappa)
                lines.append(f"| {cell(u.unit)} | {cell(labels)} | {kappa} |")
        lines += [
            "",
            f"{len(self.records)} records; truth {'revealed' if self.revealed else 'hidden'}",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (rows as dicts), e.g. for a widget's trait."""
        return dataclasses.asdict(self)

    def to_dataframe(self) -> Any:
        """One row per record: kind, id, author, committed_at."""
        return pandas().DataFrame(
            [(r.kind, r.id, r.author, r.committed_at) for r in self.records],
            columns=["kind", "id", "author", "committed_at"],
        )


def build_board(
    room: Mapping[str, Any],
    participants: Iterable[Mapping[str, Any]],
    hypotheses: Iterable[Mapping[str, Any]],
    labels: Iterable[Label],
    events: Iterable[Mapping[str, Any]],
    truth: dict[str, Any] | None,
) -> Board:
    """The board from the rows a reader may see (``room``: code, title, revealed;
    ``participants``: name, budget, passes; ``hypotheses``: id, author, units (text), and
    ``verdicts``, their statuses oldest first; ``events``: id, kind, ref, author,
    committed_at; ``truth``: participant -> truth, or None when hidden). Reads no claim's
    spec: a board of thousands of records builds in milliseconds."""
    labs = list(labels)
    by_author: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for h in hypotheses:
        by_author[h["author"]].append(h)
    people = list(participants)
    rows, leaders = [], []
    for p in people:
        mine = by_author.get(p["name"], [])
        verdicts = Counter(status for h in mine for status in h["verdicts"])
        found = [h for h in mine if h["verdicts"] and h["verdicts"][-1] == "supported"]
        correct = None
        if truth is not None:
            planted = set((truth.get(p["name"]) or {}).get("units", []))
            correct = sum(bool(planted & set(_units(h["units"]))) for h in found)
        rows.append(
            ParticipantRow(
                p["name"], len(mine), dict(sorted(verdicts.items())), p["passes"], p["budget"]
            )
        )
        leaders.append(LeaderRow(p["name"], len(found), p["passes"], correct))
    leaders.sort(key=lambda r: (-r.findings, r.passes, r.name))
    latest: dict[str, dict[str, str]] = defaultdict(dict)
    for lab in labs:
        latest[lab.unit][lab.rater] = lab.label
    units = []
    for unit, agreement in agreement_by_unit(labs).items():
        kappa = agreement.kappa if agreement.kappa == agreement.kappa else None
        units.append(
            UnitRow(unit, dict(sorted(latest[unit].items())), kappa, len(agreement.raters))
        )
    records: dict[tuple[str, str], BoardRecord] = {}
    version = 0
    for e in sorted(events, key=lambda e: e["id"]):
        version = max(version, int(e["id"]))
        if e["kind"] in RECORD_KINDS:  # a replaced label: one record, its latest commit
            records.pop((e["kind"], e["ref"]), None)
            records[(e["kind"], e["ref"])] = BoardRecord(
                e["kind"], e["ref"], e["author"], float(e["committed_at"])
            )
    return Board(
        code=room["code"],
        title=room["title"],
        revealed=bool(room["revealed"]),
        participants=tuple(rows),
        units=tuple(units),
        leaderboard=tuple(leaders),
        truth=truth,
        records=tuple(records.values()),
        version=version,
    )


def _units(text: str) -> list[str]:
    """The store's units column (``"neuron 0.3, head 1.4"``) as unit texts."""
    return [u.strip() for u in text.split(",") if u.strip()]
