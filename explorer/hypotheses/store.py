"""``HypothesisStore``: projects, hypotheses, verdicts and labels in a real database.

SQLite by default (``explorer.db`` in the working folder), or any SQLAlchemy URL (e.g.
``postgresql://host/db``) for a server shared by a room. Written with SQLAlchemy Core.
The connection, transactions and schema versioning are ``_database.Database``'s; the values
read back (``StoredHypothesis``, ``UnreadableRow``) are in ``_stored``. A write that returned
is committed; a process killed mid-write leaves the previous state (the half-written
transaction is rolled back on next open).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer.hypotheses._database import DEFAULT_PATH, Database
from explorer.hypotheses._stored import (
    HypothesisList,
    StoredHypothesis,
    UnreadableRow,
    now,
    row_of,
)
from explorer.hypotheses.agreement import Agreement, Label, agreement_by_unit
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.imports import import_hypotheses
from explorer.hypotheses.schema import (
    hypotheses_table,
    labels_table,
    projects_table,
    verdicts_table,
)
from explorer.hypotheses.verdict import Verdict

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_PROJECT",
    "HypothesisList",
    "HypothesisStore",
    "StoredHypothesis",
    "UnreadableRow",
]

DEFAULT_PROJECT = "default"


class HypothesisStore(Database):
    """A store at a SQLite path (default ``explorer.db`` here) or any SQLAlchemy URL.

    On SQLite, ``synchronous="NORMAL"`` (WAL) keeps every committed write through a killed
    process; ``"FULL"`` also through a power cut or OS crash, at about three times the cost
    per write.

    >>> store = HypothesisStore(":memory:")
    >>> store.label("neuron 0.3", "loop", rater="ada")
    >>> [lab.label for lab in store.labels()]
    ['loop']
    """

    def __repr__(self) -> str:
        return f"HypothesisStore({self.url!r})"

    # --------------------------------------------------------------- projects
    @staticmethod
    def _project_id(conn: Connection, name: str) -> int:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a project needs a non-empty name, got {name!r}")
        found = conn.execute(
            sa.select(projects_table.c.id).where(projects_table.c.name == name)
        ).scalar()
        if found is not None:
            return int(found)
        try:
            with conn.begin_nested():
                result = conn.execute(projects_table.insert().values(name=name, created=now()))
                return int(result.inserted_primary_key[0])
        except sa.exc.IntegrityError:  # another writer created it (server databases)
            return int(
                conn.execute(
                    sa.select(projects_table.c.id).where(projects_table.c.name == name)
                ).scalar_one()
            )

    def projects(self) -> list[str]:
        with self._reading() as conn:
            return list(
                conn.execute(
                    sa.select(projects_table.c.name).order_by(projects_table.c.id)
                ).scalars()
            )

    # ------------------------------------------------------------- hypotheses
    def save(
        self,
        hypothesis: Hypothesis,
        *,
        project: str = DEFAULT_PROJECT,
        author: str = "",
        created: str | None = None,
        updated: str | None = None,
    ) -> str:
        """Insert or update ``hypothesis`` (by its id); returns the id.

        ``created``/``updated`` default to now (an import passes the original times). A
        hypothesis with verdicts is never changed in place: its verdicts judged the claim as
        stored, so an edit must be a new version (``hypothesis.replace(...)`` gives it a new
        id and ``parent_id``), and saving a changed claim under a judged id raises.
        """
        if not isinstance(hypothesis, Hypothesis):
            raise TypeError(f"save takes a Hypothesis, got {type(hypothesis).__name__}")
        row = row_of(hypothesis, author, updated or now())
        with self._writing() as conn:
            row["project_id"] = self._project_id(conn, project)
            found = conn.execute(
                sa.select(hypotheses_table.c.project_id, hypotheses_table.c.spec).where(
                    hypotheses_table.c.id == hypothesis.id
                )
            ).first()
            exists = None if found is None else found.project_id
            if found is not None and found.spec != row["spec"]:
                self._check_unjudged(conn, hypothesis, found.spec)
            if exists is not None and exists != row["project_id"]:
                raise ValueError(
                    f"hypothesis {hypothesis.id!r} belongs to another project of this store; "
                    "a hypothesis is in one project: save a copy with a new id "
                    "(hypothesis.replace(id=...)) to put it in another"
                )
            if exists is None:
                first = created or row["updated"]
                conn.execute(
                    hypotheses_table.insert().values(id=hypothesis.id, created=first, **row)
                )
            else:
                conn.execute(
                    hypotheses_table.update()
                    .where(hypotheses_table.c.id == hypothesis.id)
                    .values(**row)
                )
        return hypothesis.id

    @staticmethod
    def _check_unjudged(conn: Connection, hypothesis: Hypothesis, stored_spec: str) -> None:
        """Refuse to change a judged claim in place (budget_spent alone may change)."""
        judged = conn.execute(
            sa.select(sa.func.count())
            .select_from(verdicts_table)
            .where(verdicts_table.c.hypothesis_id == hypothesis.id)
        ).scalar()
        if not judged:
            return
        try:
            stored = Hypothesis.from_dict(json.loads(stored_spec))
        except (ValueError, TypeError):
            stored = None
        if stored is None or stored._content_differs(hypothesis):
            raise ValueError(
                f"hypothesis {hypothesis.id!r} has {judged} verdicts of its claim as stored; an "
                "edit is a new version, never an overwrite: save stored.replace(...) (a new id "
                "with parent_id set), or dataclasses.replace(..., id=<new id>)"
            )

    def get(self, hypothesis_id: str) -> StoredHypothesis:
        found = self._load(hypotheses_table.c.id == hypothesis_id)
        if found.unreadable and not found:
            raise ValueError(f"hypothesis {hypothesis_id!r} is unreadable: {found.unreadable[0]}")
        if not found:
            raise KeyError(f"no hypothesis with id {hypothesis_id!r} in {self.url}")
        return found[0]

    def hypotheses(self, project: str = DEFAULT_PROJECT) -> HypothesisList:
        """The project's hypotheses in the order they were first saved, with their verdicts.

        A row that cannot be read (damaged, or from an incompatible explorer) does not hide
        the others: it is left out and listed in the result's ``unreadable``, with the reason.
        """
        return self._load(projects_table.c.name == project)

    def unreadable(self, project: str = DEFAULT_PROJECT) -> tuple[UnreadableRow, ...]:
        """The project's rows that could not be read, with the reason for each."""
        return self.hypotheses(project).unreadable

    def _load(self, where: Any) -> HypothesisList:
        query = (
            sa.select(hypotheses_table, projects_table.c.name.label("project"))
            .join(projects_table, hypotheses_table.c.project_id == projects_table.c.id)
            .where(where)
            .order_by(hypotheses_table.c.created, hypotheses_table.c.id)
        )
        bad: list[UnreadableRow] = []
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
            ids = [r["id"] for r in rows]
            found: dict[str, list[Verdict]] = {i: [] for i in ids}
            if ids:
                vq = (
                    sa.select(
                        verdicts_table.c.id,
                        verdicts_table.c.hypothesis_id,
                        verdicts_table.c.record,
                    )
                    .where(verdicts_table.c.hypothesis_id.in_(ids))
                    .order_by(verdicts_table.c.id)
                )
                for vid, hid, record in conn.execute(vq):
                    try:
                        found[hid].append(Verdict.from_json(record))
                    except ValueError as err:  # JSONDecodeError is a ValueError
                        bad.append(UnreadableRow("verdicts", f"{vid} (of {hid})", str(err)))
        out = []
        for r in rows:
            try:
                hypothesis = Hypothesis.from_dict(json.loads(r["spec"]))
            except (ValueError, TypeError) as err:
                bad.append(UnreadableRow("hypotheses", r["id"], str(err)))
                continue
            out.append(
                StoredHypothesis(
                    hypothesis=hypothesis,
                    project=r["project"],
                    author=r["author"],
                    created=r["created"],
                    updated=r["updated"],
                    verdicts=tuple(found[r["id"]]),
                )
            )
        return HypothesisList(out, bad)

    # ----------------------------------------------------------------- imports
    def import_hypotheses(
        self,
        entries: list[StoredHypothesis],
        labels: list[Label],
        project: str,
        *,
        on_conflict: str = "report",
    ) -> Any:
        """Write imported hypotheses, verdicts and labels into ``project`` in one transaction;
        an ``ImportReport``. See ``explorer.hypotheses.imports.import_hypotheses``."""
        return import_hypotheses(self, entries, labels, project, on_conflict=on_conflict)

    def count(self, table: str) -> int:
        """Rows in ``"hypotheses"``, ``"verdicts"``, ``"labels"`` or ``"projects"``."""
        tables = {
            t.name: t for t in (hypotheses_table, verdicts_table, labels_table, projects_table)
        }
        if table not in tables:
            raise ValueError(f"unknown table {table!r}: one of {', '.join(tables)}")
        with self._reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables[table])).scalar())

    # --------------------------------------------------------------- verdicts
    def record(self, verdict: Verdict) -> int:
        """Store a verdict of a saved hypothesis; returns its row id."""
        if not verdict.recordable:
            raise ValueError(
                f"an {verdict.status} verdict with no value is not evidence, so it is not "
                f"recorded: {verdict.note}"
            )
        with self._writing() as conn:
            exists = conn.execute(
                sa.select(hypotheses_table.c.id).where(
                    hypotheses_table.c.id == verdict.hypothesis_id
                )
            ).scalar()
            if exists is None:
                raise KeyError(
                    f"verdict for hypothesis {verdict.hypothesis_id!r}, which is not in this "
                    "store: save the hypothesis first"
                )
            return self._insert_verdict(conn, verdict)

    @staticmethod
    def _insert_verdict(conn: Connection, verdict: Verdict) -> int:
        result = conn.execute(
            verdicts_table.insert().values(
                hypothesis_id=verdict.hypothesis_id,
                status=verdict.status,
                value=verdict.value,
                ci_low=verdict.ci_low,
                ci_high=verdict.ci_high,
                model_fingerprint=verdict.model_fingerprint,
                created=verdict.timestamp,
                record=verdict.to_json(),
            )
        )
        return int(result.inserted_primary_key[0])

    def verdicts(self, hypothesis_id: str) -> list[Verdict]:
        return list(self.get(hypothesis_id).verdicts)

    # ------------------------------------------------------------------ labels
    def label(
        self,
        unit: str,
        label: str,
        *,
        rater: str,
        item: str = "unit",
        project: str = DEFAULT_PROJECT,
    ) -> None:
        """Record ``rater``'s label for ``item`` of ``unit`` (replacing their earlier one)."""
        lab = Label(unit=str(unit), rater=rater, label=label, item=str(item))
        with self._writing() as conn:
            self._put_label(conn, self._project_id(conn, project), lab)

    @staticmethod
    def _put_label(conn: Connection, pid: int, lab: Label) -> None:
        key = (
            (labels_table.c.project_id == pid)
            & (labels_table.c.unit == lab.unit)
            & (labels_table.c.item == lab.item)
            & (labels_table.c.rater == lab.rater)
        )
        if conn.execute(sa.select(labels_table.c.id).where(key)).scalar() is None:
            conn.execute(
                labels_table.insert().values(
                    project_id=pid,
                    unit=lab.unit,
                    item=lab.item,
                    rater=lab.rater,
                    label=lab.label,
                    created=now(),
                )
            )
        else:
            conn.execute(labels_table.update().where(key).values(label=lab.label, created=now()))

    def labels(self, project: str = DEFAULT_PROJECT, unit: str | None = None) -> list[Label]:
        query = (
            sa.select(
                labels_table.c.unit, labels_table.c.rater, labels_table.c.label, labels_table.c.item
            )
            .join(projects_table, labels_table.c.project_id == projects_table.c.id)
            .where(projects_table.c.name == project)
            .order_by(labels_table.c.id)
        )
        if unit is not None:
            query = query.where(labels_table.c.unit == str(unit))
        with self._reading() as conn:
            return [Label(u, r, lab, i) for u, r, lab, i in conn.execute(query)]

    def agreement(self, project: str = DEFAULT_PROJECT) -> dict[str, Agreement]:
        """Per-unit agreement of the project's labels."""
        return agreement_by_unit(self.labels(project))
