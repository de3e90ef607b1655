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

from explorer.hypotheses._database import (
    DEFAULT_PATH,
    Database,
    StoreDamagedError,
    StoreError,
    shown,
)
from explorer.hypotheses._limits import check_field, check_project
from explorer.hypotheses._salvage import (
    Found,
    Salvage,
    StoreCheck,
    check_database,
    check_file,
    listing,
    missing_project,
    salvage,
    salvaged_labels,
    salvaged_projects,
)
from explorer.hypotheses._stored import (
    HypothesisList,
    StoredHypothesis,
    UnreadableRow,
    check_verdict,
    now,
    row_of,
)
from explorer.hypotheses._writes import check_unjudged, put_label
from explorer.hypotheses.agreement import Agreement, Label, agreement_by_unit
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.imports import import_hypotheses
from explorer.hypotheses.prediction import Prediction, claim_from_dict
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
    "StoreCheck",
    "StoreDamagedError",
    "StoreError",
    "StoredHypothesis",
    "UnreadableRow",
]

DEFAULT_PROJECT = "default"
_TABLES = {t.name: t for t in (projects_table, hypotheses_table, verdicts_table, labels_table)}


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
        check_project(name)
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
        try:
            with self._reading() as conn:
                query = sa.select(projects_table.c.name).order_by(projects_table.c.id)
                return list(conn.execute(query).scalars())
        except StoreDamagedError:
            if self.path is None:
                raise
            return salvaged_projects(self._salvaged("projects"))

    # ------------------------------------------------------------- hypotheses
    def save(
        self,
        hypothesis: Hypothesis | Prediction,
        *,
        project: str = DEFAULT_PROJECT,
        author: str = "",
        created: str | None = None,
        updated: str | None = None,
    ) -> str:
        """Insert or update ``hypothesis`` (by its id; a ``Prediction`` too); returns the id.

        ``created``/``updated`` default to now (an import passes the original times). A
        hypothesis with verdicts is never changed in place: its verdicts judged the claim as
        stored, so an edit must be a new version (``hypothesis.replace(...)`` gives it a new
        id and ``parent_id``), and saving a changed claim under a judged id raises.
        """
        if not isinstance(hypothesis, (Hypothesis, Prediction)):
            raise TypeError(
                f"save takes a Hypothesis or a Prediction, got {type(hypothesis).__name__}"
            )
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
                check_unjudged(conn, hypothesis, found.spec)
            if exists is not None and exists != row["project_id"]:
                raise ValueError(
                    f"hypothesis {hypothesis.id!r} belongs to another project of this store; "
                    "a hypothesis is in one project: save a copy with a new id "
                    "(hypothesis.replace(id=...)) to put it in another"
                )
            if exists is None:
                first = check_field("created", created or row["updated"])
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

    def get(self, hypothesis_id: str) -> StoredHypothesis:
        check_field("hypothesis id", hypothesis_id)
        found = self._load(hypothesis_id=hypothesis_id)
        if not found:
            mine = [u for u in found.unreadable if u.id == hypothesis_id]
            if mine:
                raise ValueError(f"hypothesis {hypothesis_id!r} is unreadable: {mine[0]}")
            raise KeyError(f"no hypothesis with id {hypothesis_id!r} in {shown(self.url)}")
        return found[0]

    def hypotheses(self, project: str = DEFAULT_PROJECT) -> HypothesisList:
        """The project's hypotheses in the order they were first saved, with their verdicts.

        A row that cannot be read (damaged, from an incompatible explorer, or of a project
        missing from the store) does not hide the others: it is left out and listed in the
        result's ``unreadable``, with the reason. A damaged SQLite file lists what can be
        read, with a count of what could not.
        """
        return self._load(project=check_project(project))

    def unreadable(self, project: str = DEFAULT_PROJECT) -> tuple[UnreadableRow, ...]:
        """The project's rows that could not be read, with the reason for each."""
        return self.hypotheses(project).unreadable

    def _load(
        self, *, project: str | None = None, hypothesis_id: str | None = None
    ) -> HypothesisList:
        try:
            found = self._query(project, hypothesis_id)
        except StoreDamagedError:
            if self.path is None:
                raise
            tables = {
                t.name: [c.name for c in t.columns]
                for t in (projects_table, hypotheses_table, verdicts_table)
            }
            damage = self.damaged or "database disk image is malformed"
            found = listing(salvage(self.path, tables), damage, project, hypothesis_id)
        bad = [UnreadableRow(*u) for u in found.unreadable]
        by_id: dict[str, list[Verdict]] = {r["id"]: [] for r in found.hypotheses}
        for v in sorted(found.verdicts, key=lambda v: v["id"]):
            try:
                by_id[v["hypothesis_id"]].append(Verdict.from_json(v["record"]))
            except (ValueError, TypeError, OverflowError) as err:  # JSONDecodeError: ValueError
                bad.append(
                    UnreadableRow("verdicts", f"{v['id']} (of {v['hypothesis_id']})", str(err))
                )
        out = []
        for r in sorted(found.hypotheses, key=lambda r: (r["created"], r["id"])):
            try:
                hypothesis = claim_from_dict(json.loads(r["spec"]))
            except (ValueError, TypeError, OverflowError) as err:
                bad.append(UnreadableRow("hypotheses", r["id"], str(err)))
                continue
            out.append(
                StoredHypothesis(
                    hypothesis=hypothesis,
                    project=r["project"],
                    author=r["author"],
                    created=r["created"],
                    updated=r["updated"],
                    verdicts=tuple(by_id[r["id"]]),
                )
            )
        return HypothesisList(out, bad)

    def _query(self, project: str | None, hypothesis_id: str | None) -> Found:
        """The rows of one project (or hypothesis); rows of a missing project as unreadable."""
        if hypothesis_id is not None:
            where = hypotheses_table.c.id == hypothesis_id
        else:  # the outer join keeps rows whose project is missing, to report them
            where = (projects_table.c.name == project) | projects_table.c.id.is_(None)
        query = (
            sa.select(hypotheses_table, projects_table.c.name.label("project"))
            .outerjoin(projects_table, hypotheses_table.c.project_id == projects_table.c.id)
            .where(where)
        )
        with self._reading() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
            orphans = [r for r in rows if r["project"] is None]
            rows = [r for r in rows if r["project"] is not None]
            verdicts = []
            if rows:
                vq = sa.select(
                    verdicts_table.c.id, verdicts_table.c.hypothesis_id, verdicts_table.c.record
                )
                vq = vq.where(verdicts_table.c.hypothesis_id.in_([r["id"] for r in rows]))
                verdicts = [dict(v) for v in conn.execute(vq).mappings()]
        bad = [("hypotheses", r["id"], missing_project(r["project_id"])) for r in orphans]
        return Found(rows, verdicts, bad)

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
        """Rows in ``"hypotheses"``, ``"verdicts"``, ``"labels"`` or ``"projects"`` (of a
        damaged file: those read plus those its indexes name as lost)."""
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}: one of {', '.join(_TABLES)}")
        try:
            with self._reading() as conn:
                query = sa.select(sa.func.count()).select_from(_TABLES[table])
                return int(conn.execute(query).scalar())
        except StoreDamagedError:
            if self.path is None:
                raise
            return self._salvaged(table).counted(table)

    def _salvaged(self, *tables: str) -> Salvage:
        assert self.path is not None  # only a SQLite file is read page by page
        return salvage(self.path, {t: [c.name for c in _TABLES[t].columns] for t in tables})

    def check(self) -> StoreCheck:
        """Read every table; what was read (of what the store counts) and each problem found:
        damaged pages (``PRAGMA integrity_check`` per table on SQLite), rows that could not be
        read, and rows pointing to a missing project or hypothesis. Writes nothing."""
        if self.path is not None:
            columns = {t: [c.name for c in table.columns] for t, table in _TABLES.items()}
            return check_file(self.path, shown(self.url), columns)
        with self._reading() as conn:
            return check_database(conn, shown(self.url))

    # --------------------------------------------------------------- verdicts
    def record(self, verdict: Verdict) -> int:
        """Store a verdict of a saved hypothesis; returns its row id."""
        if not isinstance(verdict, Verdict):
            raise TypeError(f"record takes a Verdict, got {type(verdict).__name__}")
        if not verdict.recordable:
            raise ValueError(
                f"an {verdict.status} verdict with no value is not evidence, so it is not "
                f"recorded: {verdict.note}"
            )
        check_verdict(verdict)
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
        check_verdict(verdict)
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
            put_label(conn, self._project_id(conn, project), lab)

    def labels(self, project: str = DEFAULT_PROJECT, unit: str | None = None) -> list[Label]:
        query = (
            sa.select(
                labels_table.c.unit, labels_table.c.rater, labels_table.c.label, labels_table.c.item
            )
            .join(projects_table, labels_table.c.project_id == projects_table.c.id)
            .where(projects_table.c.name == check_project(project))
            .order_by(labels_table.c.id)
        )
        if unit is not None:
            query = query.where(labels_table.c.unit == check_field("unit", str(unit)))
        try:
            with self._reading() as conn:
                return [Label(u, r, lab, i) for u, r, lab, i in conn.execute(query)]
        except StoreDamagedError:
            if self.path is None:
                raise
            got = self._salvaged("projects", "labels")
            return [Label(*lab) for lab in salvaged_labels(got, project, unit)]

    def agreement(self, project: str = DEFAULT_PROJECT) -> dict[str, Agreement]:
        """Per-unit agreement of the project's labels."""
        return agreement_by_unit(self.labels(project))
