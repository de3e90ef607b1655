"""The store's tables and their version: what a ``HypothesisStore`` database holds.

``SCHEMA_VERSION`` is written into table ``schema_version``. Changing a table means
raising the version and adding ``MIGRATIONS[old_version]``, a function that upgrades a
database from that version to the next inside the opening transaction.

>>> from explorer.hypotheses import HypothesisStore
>>> HypothesisStore(":memory:").schema_version == SCHEMA_VERSION
True
>>> sorted(metadata.tables)
['hypotheses', 'labels', 'projects', 'schema_version', 'sweep_runs', 'sweep_values', 'verdicts']
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA_VERSION = 2

metadata = sa.MetaData()
schema_version_table = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)
projects_table = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created", sa.String(40), nullable=False),
)
hypotheses_table = sa.Table(
    "hypotheses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("author", sa.String(200), nullable=False, default=""),
    sa.Column("claim", sa.Text, nullable=False),
    sa.Column("units", sa.Text, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("updated", sa.String(40), nullable=False),
)
verdicts_table = sa.Table(
    "verdicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "hypothesis_id", sa.String(64), sa.ForeignKey("hypotheses.id"), nullable=False, index=True
    ),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ci_low", sa.Float, nullable=False),
    sa.Column("ci_high", sa.Float, nullable=False),
    sa.Column("model_fingerprint", sa.String(64), nullable=False),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)
labels_table = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("unit", sa.String(100), nullable=False),
    sa.Column("item", sa.String(200), nullable=False),
    sa.Column("rater", sa.String(200), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("created", sa.String(40), nullable=False),
    sa.UniqueConstraint("project_id", "unit", "item", "rater", name="one_label_per_rater"),
)

# the index of a sweep (explorer.sweep): one row per point, its settings and outcomes as
# name/value rows (a study's settings vary, so they are rows, not columns: queryable alike on
# SQLite and PostgreSQL, e.g. every run with weight_decay >= 0.5 whose test_95 is not null)
sweep_runs_table = sa.Table(
    "sweep_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("sweep", sa.String(200), nullable=False),
    sa.Column("run", sa.String(200), nullable=False),
    sa.Column("study", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float, nullable=True),
    sa.Column("updated", sa.String(40), nullable=False),
    sa.UniqueConstraint("project_id", "sweep", "run", name="one_row_per_sweep_run"),
)
sweep_values_table = sa.Table(
    "sweep_values",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("sweep_runs.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # "setting" | "outcome"
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("number", sa.Float, nullable=True),  # numbers (booleans as 0/1), to query
    sa.Column("text", sa.Text, nullable=False),  # the exact value as JSON (read back)
    sa.UniqueConstraint("run_id", "kind", "name", name="one_value_per_name"),
)


def _add_sweep_index(conn: Connection) -> None:
    """1 -> 2: the sweep index tables."""
    sweep_runs_table.create(conn, checkfirst=True)
    sweep_values_table.create(conn, checkfirst=True)


# version -> function upgrading a store from that version to the next
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_sweep_index}


class SchemaVersionError(RuntimeError):
    """The store was written by a newer explorer than this one."""
