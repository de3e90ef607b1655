"""Row writers the store's transactions call.

A label is one per (project, unit, item, rater): a new one replaces the old. An edit of a judged
claim is a new version: ``check_unjudged`` refuses to change such a claim in place.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer.hypotheses._stored import check_label, now
from explorer.hypotheses.agreement import Label
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.prediction import Prediction, claim_from_dict
from explorer.hypotheses.schema import labels_table, verdicts_table


def check_unjudged(conn: Connection, hypothesis: Hypothesis | Prediction, stored_spec: str) -> None:
    """Refuse to change a judged claim in place (budget_spent alone may change)."""
    judged = conn.execute(
        sa.select(sa.func.count())
        .select_from(verdicts_table)
        .where(verdicts_table.c.hypothesis_id == hypothesis.id)
    ).scalar()
    if not judged:
        return
    try:
        stored = claim_from_dict(json.loads(stored_spec))
    except (ValueError, TypeError):
        stored = None
    if (
        stored is None
        or type(stored) is not type(hypothesis)
        or stored._content_differs(hypothesis)
    ):
        raise ValueError(
            f"hypothesis {hypothesis.id!r} has {judged} verdicts of its claim as stored; an "
            "edit is a new version, never an overwrite: save stored.replace(...) (a new id "
            "with parent_id set), or dataclasses.replace(..., id=<new id>)"
        )


def put_label(conn: Connection, pid: int, lab: Label) -> None:
    """Insert a rater's label of an item, or replace the one they gave before."""
    check_label(lab)
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
