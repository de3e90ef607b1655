"""The database under ``HypothesisStore``: the engine, transactions, the schema version.

SQLite by default, or any SQLAlchemy URL (e.g. ``postgresql://host/db``). Nothing is lost
when several kernels write at once or one is killed: every write is one short transaction;
on SQLite the file runs in WAL mode with a busy timeout, and a write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock instead of failing. The
schema is versioned (table ``schema_version``): a database written by a newer explorer is
refused rather than risked; an older one is migrated forward. Any number of kernels may open
a fresh database at once: the schema is created once, in one transaction, under a lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from explorer._checks import check_choice
from explorer.hypotheses.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaVersionError,
    metadata,
    schema_version_table,
)

__all__ = ["DEFAULT_PATH", "Database", "StoreDamagedError", "StoreError", "shown"]

DEFAULT_PATH = "explorer.db"
# the advisory lock key first openers of a PostgreSQL store queue on ("explorer" in ASCII)
_SCHEMA_LOCK = 0x6578706C6F726572


def shown(url: str) -> str:
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


class StoreError(RuntimeError):
    """The database refused or failed an operation (its reason, without the SQL)."""


class StoreDamagedError(StoreError):
    """The store's file is damaged where an operation needed to read it."""


def reason_of(err: sa.exc.DBAPIError) -> str:
    """The driver's own message, first line only (later lines can quote the statement)."""
    text = str(err.orig).strip().splitlines()
    return text[0] if text else type(err.orig).__name__


def store_error(url: str, err: sa.exc.DBAPIError) -> Exception:
    """The explorer error for a database error ``err`` at ``url``."""
    reason = reason_of(err)
    where = f"the hypothesis store at {shown(url)}"
    if isinstance(err, (sa.exc.DataError, sa.exc.IntegrityError)):
        return ValueError(f"{where} refused the record: {reason}; nothing was written")
    if isinstance(err, sa.exc.OperationalError):
        return OSError(f"{where} could not be read or written: {reason}")
    if "malformed" in reason or "not a database" in reason:
        return StoreDamagedError(
            f"{where} is damaged ({reason}): store.check() names what can still be read"
        )
    return StoreError(f"{where} failed: {reason}")


class Database:
    """A SQLite path or SQLAlchemy URL, opened (created or migrated) at construction."""

    def __init__(
        self,
        target: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        busy_timeout_s: float = 60.0,
        synchronous: str = "NORMAL",
    ) -> None:
        check_choice("synchronous", synchronous, ("NORMAL", "FULL"))
        self.url = _url(target)
        self.damaged = ""  # why the store opened read-only, if it is damaged
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
                f"cannot open the hypothesis store at {shown(self.url)}: {err.orig}"
            ) from None
        except sa.exc.DatabaseError as err:
            if self._sqlite and not memory and "malformed" in reason_of(err):
                # A damaged store still opens, read-only: reads return what can be read.
                self.damaged = reason_of(err)
                return
            self._engine.dispose()
            raise ValueError(
                f"{shown(self.url)} is not a hypothesis store (or is damaged): {err.orig}"
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
    def _begin(self, write: bool) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(explorer_write=True)
            with conn.begin():
                yield conn

    @property
    def path(self) -> str | None:
        """The SQLite file, or None (in memory, or a server)."""
        if not self._sqlite or self.url in ("sqlite://", "sqlite:///:memory:"):
            return None
        return self.url.split(":///", 1)[1]

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        if self.damaged:
            raise StoreDamagedError(
                f"the hypothesis store at {shown(self.url)} is damaged ({self.damaged}), so it "
                "opened read-only: reads return what can be read and store.check() names what "
                "cannot; export it (to_json) and import that into a new store to write again"
            )
        with self._translated(), self._begin(True) as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._translated(), self._begin(False) as conn:
            yield conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Database errors as explorer errors: the driver's reason, never the SQL statement."""
        try:
            yield
        except sa.exc.DBAPIError as err:
            raise store_error(self.url, err) from None

    def _open(self) -> None:
        # One transaction creates or migrates the schema. Concurrent first openers queue for
        # a lock first: on SQLite the write lock BEGIN IMMEDIATE takes; on a server, a
        # transaction-scoped advisory lock (CREATE TABLE IF NOT EXISTS alone races there).
        with self._begin(True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
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

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
