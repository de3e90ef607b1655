"""The tables a live session adds to a hypothesis store, and the SQLite triggers that log
every label, hypothesis and verdict of a session's project into ``session_events``.

A session is a project of the store (``session-<room id>``) plus four tables: the room
(``session_rooms``: join code, title, mentor, whether revealed or ended), its participants (name,
budget, passes spent, hand-out), the hidden truth of each hand-out, and the event log the
board and its watchers read (one row per commit, with the time it was committed). They sit
beside the hypothesis schema, not in it (a store without sessions never has them), and are
created by the first ``start`` on a store.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

session_metadata = sa.MetaData()

rooms_table = sa.Table(
    "session_rooms",
    session_metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("room_id", sa.String(32), nullable=False, unique=True),  # public: sha256(code)
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("mentor", sa.String(200), nullable=False),
    sa.Column("project_id", sa.Integer, nullable=False, unique=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("revealed", sa.Boolean, nullable=False, default=False),
    sa.Column("ended", sa.Boolean, nullable=False, default=False),
    sa.Column("lobby_role", sa.String(63), nullable=True),  # PostgreSQL only
    sa.Column("group_role", sa.String(63), nullable=True),  # PostgreSQL only
    sa.Column("created", sa.Float, nullable=False),
)
participants_table = sa.Table(
    "session_participants",
    session_metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("role_name", sa.String(63), nullable=True, unique=True),  # PostgreSQL only
    sa.Column("key_hash", sa.String(64), nullable=True),  # SQLite: to rejoin after a restart
    sa.Column("budget", sa.Integer, nullable=True),
    sa.Column("passes", sa.Integer, nullable=False, default=0),
    sa.Column("handout", sa.Text, nullable=True),  # Handout.to_json(): data, never code
    sa.Column("joined", sa.Float, nullable=False),
)
truth_table = sa.Table(
    "session_truth",
    session_metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("truth", sa.Text, nullable=False),  # JSON
)
events_table = sa.Table(
    "session_events",
    session_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(20), nullable=False, index=True),
    # "label" | "hypothesis" | "verdict" (the board's records) | "join" | "handout" |
    # "reveal" | "end"
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("ref", sa.String(200), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("committed_at", sa.Float, nullable=False),  # the store's clock, epoch seconds
)

_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
# (trigger, table, operation, kind, ref, author, the rooms it belongs to)
_LOGGED = [
    ("label", "labels", "CAST(NEW.id AS TEXT)", "NEW.rater", "r.project_id = NEW.project_id"),
    ("hypothesis", "hypotheses", "NEW.id", "NEW.author", "r.project_id = NEW.project_id"),
]


def sqlite_triggers() -> list[str]:
    """``CREATE TRIGGER`` statements logging each write of a session's records."""
    out = []
    for kind, table, ref, author, where in _LOGGED:
        for op in ("INSERT", "UPDATE"):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS session_log_{table}_{op.lower()} AFTER {op} "
                f"ON {table} BEGIN INSERT INTO session_events (code, kind, ref, author, "
                f"committed_at) SELECT r.code, '{kind}', {ref}, {author}, {_SQLITE_NOW} "
                f"FROM session_rooms r WHERE {where}; END"
            )
    out.append(
        "CREATE TRIGGER IF NOT EXISTS session_log_verdicts_insert AFTER INSERT ON verdicts "
        "BEGIN INSERT INTO session_events (code, kind, ref, author, committed_at) "
        f"SELECT r.code, 'verdict', CAST(NEW.id AS TEXT), h.author, {_SQLITE_NOW} "
        "FROM hypotheses h JOIN session_rooms r ON r.project_id = h.project_id "
        "WHERE h.id = NEW.hypothesis_id; END"
    )
    return out


def create_tables(conn: Connection) -> None:
    """The session tables (and on SQLite the triggers), if missing; inside the caller's
    transaction."""
    session_metadata.create_all(conn)
    if conn.dialect.name == "sqlite":
        for statement in sqlite_triggers():
            conn.exec_driver_sql(statement)


def now_sql(conn: Connection) -> sa.ColumnElement[float]:
    """The store's clock in epoch seconds, as an SQL expression."""
    if conn.dialect.name == "postgresql":
        return sa.func.extract("epoch", sa.func.clock_timestamp())
    return sa.literal_column(_SQLITE_NOW)
