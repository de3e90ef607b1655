"""``Session``: a mentor's or a participant's connection to a live room, whose every label,
hypothesis and verdict carries the room (its project) and the writer's name.

Where it is enforced: on PostgreSQL by the store itself (``_postgres``: a login role per
participant, row-level security, functions for budgets and the truth), so a participant's
raw SQL is refused as their Python calls are. On SQLite there are no server roles: this
class checks each call (own records only, hidden records filtered, budget counted in the
file), and a participant who opens the file directly can bypass all of it; a room of
several people uses PostgreSQL. ``lobby.start`` and ``lobby.join`` make Sessions.

What it reads (hypotheses, labels, the truth, the board) is ``_reading``'s; the sentences
its refusals say are ``_errors``'.

>>> check_code("k7qx2 mp4td")
'K7QX2-MP4TD'
>>> check_code("OIL00-11111")
Traceback (most recent call last):
...
explorer.session.SessionError: 'OIL00-11111' is not a join code: a code is 10 letters and digits such as 'K7QX2-MP4TD' (no 0, 1, I, L or O); ask the mentor for the room's code
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer.hypotheses import export
from explorer.hypotheses.examples import Examples
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.store import HypothesisStore
from explorer.hypotheses.verdict import Verdict
from explorer.models.handle import ModelHandle
from explorer.session import _postgres
from explorer.session._errors import SessionError
from explorer.session._reading import RoomReads
from explorer.session._tables import (
    events_table,
    now_sql,
    participants_table,
    rooms_table,
    truth_table,
)
from explorer.session.board import Board
from explorer.session.handout import Handout, open_handout, truth_of
from explorer.session.watch import Watcher

__all__ = ["ALPHABET", "Session", "SessionError"]  # SessionError: from _errors

# no 0/O, 1/I/L: read aloud or off a projector without doubt; 10 of 31 symbols ~ 49.5 bits
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


def check_code(code: object) -> str:
    """``code`` as stored (upper case, ``XXXXX-XXXXX``), or a SessionError saying why not."""
    raw = str(code).upper().replace("-", "").replace(" ", "") if isinstance(code, str) else ""
    if len(raw) != CODE_LENGTH or any(c not in ALPHABET for c in raw):
        raise SessionError(
            f"{code!r} is not a join code: a code is {CODE_LENGTH} letters and digits such as "
            "'K7QX2-MP4TD' (no 0, 1, I, L or O); ask the mentor for the room's code"
        )
    return f"{raw[:5]}-{raw[5:]}"


def room_id(code: str) -> str:
    """The room's public name (roles, channel, project): a hash, so it does not give the code."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def check_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 60:
        raise SessionError(f"a {kind}'s name is 1 to 60 characters, got {value!r}")
    if any(ord(c) < 32 for c in value):
        raise SessionError(f"a {kind}'s name has no control characters, got {value!r}")
    return value


class Session(RoomReads):
    """A mentor's or a participant's connection to a room. Make one with ``start`` or
    ``join``; ``role`` is ``"mentor"`` or ``"participant"``, ``name`` who writes."""

    def __init__(
        self, store: HypothesisStore, *, code: str, name: str, role: str, key: str = ""
    ) -> None:
        self.store = store
        self.code = code
        self.name = name
        self.role = role
        self.key = key  # a participant's secret: join(..., key=...) after a kernel restart
        self._postgres = store.url.startswith("postgresql")
        with self._reading() as conn:
            room = conn.execute(sa.select(rooms_table).where(rooms_table.c.code == code)).first()
        if room is None:
            raise SessionError(f"no session with join code {code} in {self.store!r}")
        self.title, self.project, self.room_id = room.title, room.project, room.room_id
        self._model: ModelHandle | None = None
        self._opened: Handout | None = None  # the hand-out _model was built from
        self._remove_guard: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"Session({self.title!r}, code {self.code}, {self.role} {self.name!r})"

    @property
    def room_url(self) -> str:
        """The store's URL without anyone's login: what participants pass to ``join`` with
        the code (on PostgreSQL each then logs in as their own role)."""
        if not self._postgres:
            return self.store.url
        url = sa.engine.make_url(self.store.url)
        bare = sa.engine.URL.create(
            url.drivername, host=url.host, port=url.port, database=url.database, query=url.query
        )
        return bare.render_as_string(hide_password=False)

    # ---------------------------------------------------------------- plumbing
    def _mentor_only(self, what: str) -> None:
        if self.role != "mentor":
            raise SessionError(f"only the mentor can {what}; {self.name!r} is a participant")

    def _event(self, conn: Connection, kind: str, ref: str, author: str) -> None:
        conn.execute(
            events_table.insert().values(
                code=self.code, kind=kind, ref=ref, author=author, committed_at=now_sql(conn)
            )
        )
        if self._postgres:
            conn.execute(sa.select(sa.func.pg_notify(f"explorer_session_{self.room_id}", kind)))

    def _row(self, name: str | None = None) -> Any:
        with self._refused("reading the participant list"), self._reading() as conn:
            return conn.execute(
                sa.select(participants_table).where(
                    (participants_table.c.code == self.code)
                    & (participants_table.c.name == (name or self.name))
                )
            ).first()

    # ---------------------------------------------------------------- hand-outs
    def hand_out(self, name: str, handout: Handout, *, budget: int | None = None) -> None:
        """Give participant ``name`` a model and a ``budget`` of forward passes (None: no
        limit); the hand-out's truth is stored hidden until ``reveal``. Mentor only."""
        self._mentor_only("hand out models")
        if not isinstance(handout, Handout):
            raise SessionError(f"hand_out takes a Handout, got {type(handout).__name__}")
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 0
        ):
            raise SessionError(
                f"a budget is a number of forward passes >= 0 (or None), got {budget!r}"
            )
        truth = json.dumps(truth_of(handout), sort_keys=True)
        with self._refused(f"handing out to {name!r}"), self._writing() as conn:
            where = (participants_table.c.code == self.code) & (participants_table.c.name == name)
            done = conn.execute(
                participants_table.update()
                .where(where)
                .values(handout=handout.to_json(), budget=budget)
            )
            if done.rowcount != 1:
                raise SessionError(f"no participant {name!r} in this session: {self._names(conn)}")
            key = (truth_table.c.code == self.code) & (truth_table.c.name == name)
            conn.execute(truth_table.delete().where(key))
            conn.execute(truth_table.insert().values(code=self.code, name=name, truth=truth))
            self._event(conn, "handout", name, self.name)

    def _names(self, conn: Connection) -> str:
        names = conn.execute(
            sa.select(participants_table.c.name).where(participants_table.c.code == self.code)
        ).scalars()
        listed = ", ".join(repr(n) for n in sorted(names))
        return f"participants are {listed}" if listed else "nobody has joined yet"

    @property
    def handout(self) -> Handout | None:
        """This participant's hand-out (None until the mentor gives one)."""
        row = self._row()
        return None if row is None or row.handout is None else Handout.from_json(row.handout)

    @property
    def passes(self) -> int:
        """Forward passes this participant has spent (kept in the store)."""
        row = self._row()
        return 0 if row is None else int(row.passes)

    @property
    def budget(self) -> int | None:
        row = self._row()
        return None if row is None else row.budget

    def open_model(self) -> ModelHandle:
        """This participant's model, exactly as handed out; every forward pass is counted in
        the store first, and one beyond the budget is refused (a SessionError)."""
        handout = self.handout
        if handout is None:
            raise SessionError(f"the mentor has not handed {self.name!r} a model yet")
        if self._model is None or handout != self._opened:  # a new hand-out: a new model
            if self._remove_guard is not None:
                self._remove_guard()
            self._model, self._opened = open_handout(handout), handout
            self._remove_guard = self._model.add_pass_guard(lambda _examples: self.spend(1))
        return self._model

    def spend(self, n: int = 1) -> int:
        """Count ``n`` forward passes against the budget; the passes spent so far. Beyond
        the budget nothing is counted and a SessionError says so, with the count."""
        if self.role != "participant":
            return 0
        with self._refused("a forward pass"), self._writing() as conn:
            if self._postgres:
                got = conn.execute(sa.text("SELECT * FROM explorer_session_spend(:n)"), {"n": n})
                return int(got.one().passes)
            where = (participants_table.c.code == self.code) & (
                participants_table.c.name == self.name
            )
            self._check_open(conn)
            row = conn.execute(sa.select(participants_table).where(where)).one()
            if row.budget is not None and row.passes + n > row.budget:
                raise SessionError(
                    f"a forward pass was refused: budget of {row.budget:,} forward passes spent "
                    f"({row.passes:,} used): ask the mentor for more"
                )
            conn.execute(participants_table.update().where(where).values(passes=row.passes + n))
            return int(row.passes + n)

    # ----------------------------------------------------------------- records
    def label(self, unit: object, text: str, *, item: str = "unit") -> None:
        """Record this person's label of ``unit`` (or of one ``item`` of it); a new label
        replaces their earlier one."""
        self._check_open()
        with self._refused(f"labelling {unit}"):
            self.store.label(str(unit), text, rater=self.name, item=item, project=self.project)

    def _check_own(self, hypothesis_id: str) -> None:
        """SQLite: refuse a hypothesis id another person wrote (PostgreSQL hides their rows,
        and its policies refuse the write)."""
        with self._refused(f"saving hypothesis {hypothesis_id!r}"), self._reading() as conn:
            author = conn.execute(
                sa.text("SELECT author FROM hypotheses WHERE id = :id"), {"id": hypothesis_id}
            ).scalar()
        if author is not None and author != self.name:
            raise SessionError(
                f"saving hypothesis {hypothesis_id!r} was refused: it is {author!r}'s record and "
                f"participant {self.name!r} may only write their own (save yours under a new id)"
            )

    def save(self, hypothesis: Hypothesis) -> str:
        """Save ``hypothesis`` in the room under this person's name; its id."""
        if not isinstance(hypothesis, Hypothesis):
            raise SessionError(f"save takes a Hypothesis, got {type(hypothesis).__name__}")
        if self.role == "participant":
            self._check_open()
            self._check_own(hypothesis.id)
        with self._refused(f"saving hypothesis {hypothesis.id!r}"):
            try:
                return self.store.save(hypothesis, project=self.project, author=self.name)
            except ValueError as err:  # PostgreSQL: the id is another's hidden row
                if "duplicate key" in str(err) or "unique" in str(err).lower():
                    raise SessionError(
                        f"saving hypothesis {hypothesis.id!r} was refused: the id is another "
                        f"person's record, and participant {self.name!r} may only write their "
                        "own (save yours under a new id)"
                    ) from None
                raise

    def test(
        self,
        hypothesis: Hypothesis,
        inputs: Examples | Any,
        *,
        model: ModelHandle | None = None,
    ) -> Verdict:
        """Save ``hypothesis``, test it on ``model`` (default: this participant's hand-out,
        its passes counted) and record the verdict; the verdict."""
        self.save(hypothesis)
        model = model if model is not None else self.open_model()
        verdict = hypothesis.test(model, inputs)
        if verdict.recordable:
            with self._refused(f"recording the verdict of {hypothesis.id!r}"):
                self.store.record(verdict)
        return verdict

    # ------------------------------------------------------------------ reading
    def _check_open(self, conn: Connection | None = None) -> None:
        """SQLite: refuse a participant's write once the mentor has ended the room (on
        PostgreSQL their login is gone with it)."""
        if self.role != "participant" or self._postgres:
            return
        if conn is None:
            with self._reading() as reading:
                return self._check_open(reading)
        query = sa.select(rooms_table.c.ended).where(rooms_table.c.code == self.code)
        if conn.execute(query).scalar():
            raise SessionError(f"session {self.code} has ended: the mentor closed it")

    def end(self) -> None:
        """Close the room: nobody joins or writes any more (on PostgreSQL the room's roles
        are dropped, so participants' logins stop working); what was written stays, for the
        mentor to read and export. Mentor only."""
        self._mentor_only("end the session")
        with self._refused("ending the session"), self._writing() as conn:
            where = rooms_table.c.code == self.code
            room = conn.execute(sa.select(rooms_table).where(where)).one()
            conn.execute(rooms_table.update().where(where).values(ended=True))
            self._event(conn, "end", self.code, self.name)
            if self._postgres:
                logins = conn.execute(
                    sa.select(participants_table.c.role_name).where(
                        participants_table.c.code == self.code
                    )
                ).scalars()
                _postgres.close_room(conn, room.group_role, room.lobby_role, list(logins))

    def reveal(self) -> None:
        """Make everyone's hypotheses, labels and the truth readable to the room. Mentor only."""
        self._mentor_only("reveal")
        with self._refused("the reveal"), self._writing() as conn:
            conn.execute(
                rooms_table.update().where(rooms_table.c.code == self.code).values(revealed=True)
            )
            self._event(conn, "reveal", self.code, self.name)

    def watch(self, callback: Callable[[Board], Any], *, interval: float = 0.5) -> Watcher:
        """Call ``callback(board)`` on a background thread whenever anything was committed
        in the room: on PostgreSQL on LISTEN/NOTIFY, on SQLite by polling every
        ``interval`` seconds. ``watcher.stop()``, or use it as a context manager."""
        return Watcher(self, callback, interval=interval)

    # ------------------------------------------------------------------- export
    def export(self, folder: str | Path) -> tuple[Path, Path]:
        """Write the room's hypotheses, verdicts, labels and agreement as ``<project>.md``
        and ``<project>.json`` into ``folder`` (``explorer.hypotheses.export``); the paths."""
        self._mentor_only("export the room")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        md, js = out / f"{self.project}.md", out / f"{self.project}.json"
        md.write_text(export.to_markdown(self.store, self.project), encoding="utf-8")
        js.write_text(export.to_json(self.store, self.project), encoding="utf-8")
        return md, js

    def close(self) -> None:
        if self._remove_guard is not None:
            self._remove_guard()
        self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
