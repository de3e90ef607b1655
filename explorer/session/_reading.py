"""What a Session reads: the room's hypotheses, labels, truth and board, as its reader may
see them (a participant: their own records until the reveal; on PostgreSQL the store's
policies filter the rows, on SQLite these methods do), and the transactions it runs in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer.hypotheses.agreement import Label
from explorer.hypotheses.schema import hypotheses_table, verdicts_table
from explorer.hypotheses.store import HypothesisList, HypothesisStore, StoreError
from explorer.session._errors import SessionError, reason_of_store_error, why
from explorer.session._tables import events_table, participants_table, rooms_table, truth_table
from explorer.session.board import Board, build_board


class RoomReads:
    """The reading half of ``Session`` (and the transactions both halves use)."""

    store: HypothesisStore
    code: str
    name: str
    role: str
    project: str
    _postgres: bool

    @contextmanager
    def _refused(self, action: str) -> Iterator[None]:
        """Store errors as SessionErrors naming what was refused and why."""
        try:
            yield
        except (StoreError, ValueError, OSError, KeyError) as err:
            reason = reason_of_store_error(err)
            if "budget of" in reason:  # the store's own sentence, with the count
                raise SessionError(
                    f"{action} was refused: {why(reason, self.name)}: ask the mentor for more"
                ) from None
            raise SessionError(
                f"{action} was refused: {why(reason_of_store_error(err), self.name)} "
                f"(the store said: {reason_of_store_error(err)})"
            ) from None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.store._reading() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.store._writing() as conn:
            yield conn

    def _revealed(self, conn: Connection) -> bool:
        return bool(
            conn.execute(
                sa.select(rooms_table.c.revealed).where(rooms_table.c.code == self.code)
            ).scalar()
        )

    @property
    def revealed(self) -> bool:
        with self._reading() as conn:
            return self._revealed(conn)

    def _sees_all(self, conn: Connection) -> bool:
        return self.role == "mentor" or self._revealed(conn)

    def hypotheses(self) -> HypothesisList:
        """The room's hypotheses this person may read (a participant: their own until the
        reveal)."""
        with self._reading() as conn:
            everyone = self._sees_all(conn)
        found = self.store.hypotheses(self.project)
        if everyone:
            return found
        return HypothesisList([h for h in found if h.author == self.name], found.unreadable)

    def labels(self) -> list[Label]:
        """The room's labels this person may read (a participant: their own until the reveal)."""
        with self._reading() as conn:
            everyone = self._sees_all(conn)
        return [
            lab for lab in self.store.labels(self.project) if everyone or lab.rater == self.name
        ]

    def truth(self) -> dict[str, Any]:
        """Each participant's hidden truth (their hand-out's planted units or trigger); a
        participant reads it only after the reveal."""
        with self._refused("reading the truth"), self._reading() as conn:
            if self.role != "mentor" and not self._revealed(conn):
                raise SessionError(
                    "reading the truth was refused: it is hidden until the mentor reveals it"
                )
            if self._postgres and self.role != "mentor":
                rows = conn.execute(sa.text("SELECT name, truth FROM explorer_session_truth()"))
            else:
                rows = conn.execute(
                    sa.select(truth_table.c.name, truth_table.c.truth).where(
                        truth_table.c.code == self.code
                    )
                )
            return {name: json.loads(text) for name, text in rows}

    def board(self) -> Board:
        """The room now, as this person may see it."""
        with self._refused("reading the board"), self._reading() as conn:
            room = conn.execute(sa.select(rooms_table).where(rooms_table.c.code == self.code)).one()
            people = (
                conn.execute(
                    sa.select(participants_table)
                    .where(participants_table.c.code == self.code)
                    .order_by(participants_table.c.joined, participants_table.c.name)
                )
                .mappings()
                .all()
            )
            events = (
                conn.execute(sa.select(events_table).where(events_table.c.code == self.code))
                .mappings()
                .all()
            )
            claims = self._claims(conn, room.project_id)
            everyone = self.role == "mentor" or room.revealed
        if not everyone:  # SQLite shows all rows: keep what the reader may see
            keep = ("join", "handout", "reveal", "end")
            events = [e for e in events if e["author"] == self.name or e["kind"] in keep]
            claims = [c for c in claims if c["author"] == self.name]
        truth = self.truth() if room.revealed else None
        return build_board(
            {"code": room.code, "title": room.title, "revealed": room.revealed},
            people,
            claims,
            self.labels(),
            events,
            truth,
        )

    @staticmethod
    def _claims(conn: Connection, project_id: int) -> list[dict[str, Any]]:
        """The room's hypotheses (id, author, units) with their verdicts' statuses, oldest
        first: the board's figures, without reading any claim's spec."""
        h, v = hypotheses_table, verdicts_table
        rows = conn.execute(
            sa.select(h.c.id, h.c.author, h.c.units)
            .where(h.c.project_id == project_id)
            .order_by(h.c.created, h.c.id)
        ).all()
        claims = {
            r.id: {"id": r.id, "author": r.author, "units": r.units, "verdicts": []} for r in rows
        }
        statuses = conn.execute(
            sa.select(v.c.hypothesis_id, v.c.status)
            .join(h, h.c.id == v.c.hypothesis_id)
            .where(h.c.project_id == project_id)
            .order_by(v.c.id)
        )
        for hypothesis_id, status in statuses:
            if hypothesis_id in claims:
                claims[hypothesis_id]["verdicts"].append(status)
        return list(claims.values())

    def _version(self) -> tuple[int, int]:
        """What changes when anything is committed: the last event and the passes spent."""
        with self._reading() as conn:
            last = conn.execute(
                sa.select(sa.func.max(events_table.c.id)).where(events_table.c.code == self.code)
            ).scalar()
            spent = conn.execute(
                sa.select(sa.func.sum(participants_table.c.passes)).where(
                    participants_table.c.code == self.code
                )
            ).scalar()
        return int(last or 0), int(spent or 0)
