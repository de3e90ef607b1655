"""``HypothesisStore``: projects, hypotheses, verdicts and labels in a real database.

SQLite by default (``explorer.db`` in the working folder), or any SQLAlchemy URL (e.g.
``postgresql://host/db``) for a server shared by a room. Written with SQLAlchemy Core.

Nothing is lost when several kernels write at once or one is killed: every write is one
short transaction; on SQLite the file runs in WAL mode with a busy timeout, and a write
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
instead of failing. A write that returned is committed; a process killed mid-write
leaves the previous state (the half-written transaction is rolled back on next open).

The schema is versioned (table ``schema_version``): opening a store written by a newer
explorer is refused rather than risked; an older one is migrated forward.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from explorer._checks import check_choice
from explorer.hypotheses.agreement import Agreement, Label, agreement_by_unit
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaVersionError,
    hypotheses_table,
    labels_table,
    metadata,
    projects_table,
    schema_version_table,
    verdicts_table,
)
from explorer.hypotheses.verdict import Verdict

DEFAULT_PATH = "explorer.db"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class UnreadableRow:
    """A stored row that could not be read (the rest of the project loads without it)."""

    table: str
    id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.table} row {self.id!r}: {self.reason}"


class HypothesisList(list):  # type: ignore[type-arg]
    """The hypotheses that loaded, plus ``unreadable``: rows that failed, with the reason."""

    def __init__(self, items: Any = (), unreadable: Any = ()) -> None:
        super().__init__(items)
        self.unreadable: tuple[UnreadableRow, ...] = tuple(unreadable)


@dataclass(frozen=True)
class StoredHypothesis:
    """A hypothesis as stored: who wrote it, in which project, and its verdicts (oldest first)."""

    hypothesis: Hypothesis
    project: str
    author: str
    created: str
    updated: str
    verdicts: tuple[Verdict, ...] = ()

    @property
    def latest(self) -> Verdict | None:
        return self.verdicts[-1] if self.verdicts else None

    @property
    def status(self) -> str:
        return self.latest.status if self.latest else "untested"


def _now() -> str:
    """UTC time to the microsecond: rows saved within one second still sort in save order."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _shown(url: str) -> str:
    """The URL without a password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _url(target: str | os.PathLike[str]) -> str:
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):  # the driver explorer installs
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if "://" in text:
        return text
    if text in ("", ":memory:"):
        return "sqlite://"
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class HypothesisStore:
    """A store at a SQLite path (default ``explorer.db`` here) or any SQLAlchemy URL.

    On SQLite, ``synchronous="NORMAL"`` (WAL) keeps every committed write through a killed
    process; ``"FULL"`` also through a power cut or OS crash, at about three times the cost
    per write.

    >>> store = HypothesisStore(":memory:")
    >>> store.label("neuron 0.3", "loop", rater="ada")
    >>> [lab.label for lab in store.labels()]
    ['loop']
    """

    def __init__(
        self,
        target: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        busy_timeout_s: float = 60.0,
        synchronous: str = "NORMAL",
    ) -> None:
        check_choice("synchronous", synchronous, ("NORMAL", "FULL"))
        self.url = _url(target)
        self._sqlite = self.url.startswith("sqlite")
        memory = self.url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {}
        if memory:  # one shared connection, or every checkout sees an empty database
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif self._sqlite:
            kwargs = {"connect_args": {"timeout": busy_timeout_s}}
        if self._sqlite and not memory:
            file = Path(self.url.split(":///", 1)[1])
            if not file.parent.is_dir():
                raise FileNotFoundError(
                    f"cannot open the hypothesis store {str(file)!r}: the folder "
                    f"{str(file.parent)!r} does not exist (create it, or choose another path)"
                )
            if file.is_dir():
                raise IsADirectoryError(
                    f"cannot open the hypothesis store {str(file)!r}: it is a folder; "
                    "give a file path such as 'explorer.db'"
                )
        self._engine: Engine = sa.create_engine(self.url, **kwargs)
        if self._sqlite:
            self._configure_sqlite(self._engine, busy_timeout_s, synchronous, memory)
        try:
            self._open()
        except sa.exc.OperationalError as err:
            self._engine.dispose()
            raise OSError(
                f"cannot open the hypothesis store at {_shown(self.url)}: {err.orig}"
            ) from None
        except sa.exc.DatabaseError as err:
            self._engine.dispose()
            raise ValueError(
                f"{_shown(self.url)} is not a hypothesis store (or is damaged): {err.orig}"
            ) from None

    @staticmethod
    def _configure_sqlite(
        engine: Engine, busy_timeout_s: float, synchronous: str, memory: bool
    ) -> None:
        @event.listens_for(engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below), so the driver must not.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def on_begin(conn: Connection) -> None:
            # Writers take the lock up front, so two writers never deadlock upgrading a read.
            write = conn.get_execution_options().get("explorer_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(explorer_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def _open(self) -> None:
        with self._writing() as conn:
            version = None
            if sa.inspect(conn).has_table("schema_version"):
                version = conn.execute(
                    sa.select(sa.func.max(schema_version_table.c.version))
                ).scalar()
            if version is not None and version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the store at {self.url} has schema version {version}, newer than this "
                    f"explorer reads (up to {SCHEMA_VERSION}): upgrade explorer to open it "
                    "(nothing was changed)"
                )
            metadata.create_all(conn)
            if version is None:
                conn.execute(schema_version_table.insert().values(version=SCHEMA_VERSION))
                return
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(schema_version_table.update().values(version=version))

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return int(
                conn.execute(sa.select(sa.func.max(schema_version_table.c.version))).scalar()
            )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> HypothesisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                result = conn.execute(projects_table.insert().values(name=name, created=_now()))
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

        ``created``/``updated`` default to now (an import passes the original times).
        """
        if not isinstance(hypothesis, Hypothesis):
            raise TypeError(f"save takes a Hypothesis, got {type(hypothesis).__name__}")
        row = _row(hypothesis, author, updated or _now())
        with self._writing() as conn:
            row["project_id"] = self._project_id(conn, project)
            exists = conn.execute(
                sa.select(hypotheses_table.c.project_id).where(
                    hypotheses_table.c.id == hypothesis.id
                )
            ).scalar()
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
        from explorer.hypotheses.imports import import_hypotheses

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
        if verdict.status == "unavailable":
            raise ValueError(
                f"an unavailable verdict is not evidence, so it is not recorded: {verdict.note}"
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
                    created=_now(),
                )
            )
        else:
            conn.execute(labels_table.update().where(key).values(label=lab.label, created=_now()))

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


def _spec(h: Hypothesis) -> str:
    return json.dumps(h.to_dict(), sort_keys=True)


def _row(h: Hypothesis, author: str, updated: str) -> dict[str, Any]:
    return {
        "author": str(author),
        "claim": h.claim,
        "units": ", ".join(map(str, h.units)),
        "spec": _spec(h),
        "updated": updated,
    }
