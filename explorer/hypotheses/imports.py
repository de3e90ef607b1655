"""Importing an export into a store: one transaction, and an existing hypothesis is never
overwritten unless the caller says so.

An imported id that is new is added with its verdicts; one already in the target project
with the same content gains only the verdicts it lacks; one with different content is a
conflict, settled by ``on_conflict``: ``"report"`` (raise ``ImportConflict`` naming each id
and the fields that differ, and write nothing), ``"skip"`` (keep ours), ``"keep_both"``
(theirs under a new id) or ``"replace"`` (theirs replaces ours, and the verdicts of ours,
which judged another claim, are dropped). An id that lives in another project of the store
is copied under a new id, never moved. New ids are derived from the project and the content,
so importing the same file twice adds nothing the second time.

>>> from explorer.hypotheses import (HeadScore, Hypothesis, HypothesisStore, Split, from_json,
...                                  to_json)
>>> ours, theirs = HypothesisStore(":memory:"), HypothesisStore(":memory:")
>>> _ = theirs.save(Hypothesis(claim="head 1.0 does induction", units="head 1.0",
...                            measure=HeadScore("induction"), threshold=0.5,
...                            formation=Split(range(10)), held_out=Split(range(10, 20))))
>>> print(from_json(to_json(theirs), ours))
import into 'default': 1 added, 0 already here; 0 verdicts, 0 labels
>>> print(from_json(to_json(theirs), ours))  # the same file again adds nothing
import into 'default': 0 added, 1 already here; 0 verdicts, 0 labels
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer._checks import check_choice
from explorer._display import RecordShown, pandas
from explorer.hypotheses._limits import check_field
from explorer.hypotheses._stored import (
    StoredHypothesis,
    check_label,
    check_verdict,
    now,
    row_of,
    spec_of,
)
from explorer.hypotheses._writes import put_label
from explorer.hypotheses.agreement import Label
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.prediction import claim_from_dict
from explorer.hypotheses.schema import hypotheses_table, verdicts_table

if TYPE_CHECKING:  # typing only: store imports this module to run imports
    from explorer.hypotheses.store import HypothesisStore

__all__ = ["CONFLICT_CHOICES", "ImportConflict", "ImportReport", "import_hypotheses"]


class ImportConflict(ValueError):
    """An import met ids that exist here with different content; nothing was written."""

    def __init__(self, conflicts: list[tuple[str, list[str]]]) -> None:
        self.conflicts = conflicts
        listed = "; ".join(f"{hid} ({', '.join(fields)} differ)" for hid, fields in conflicts)
        super().__init__(
            f"{len(conflicts)} imported hypotheses reuse an id that holds a different "
            f"hypothesis here: {listed}. Nothing was imported. Choose on_conflict='skip' "
            "(keep ours), 'keep_both' (import theirs under a new id) or 'replace' (theirs "
            "replaces ours, and our verdicts of it are dropped)"
        )


@dataclass(frozen=True, repr=False)
class ImportReport(RecordShown):
    """What an import did, hypothesis by hypothesis (``{old id: new id}`` where renamed)."""

    project: str
    added: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)
    verdicts_added: int = 0
    labels: int = 0

    def __str__(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.unchanged)} already here"]
        if self.renamed:
            parts.append(f"{len(self.renamed)} imported under new ids")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (conflict)")
        if self.replaced:
            parts.append(f"{len(self.replaced)} replaced")
        return (
            f"import into {self.project!r}: {', '.join(parts)}; "
            f"{self.verdicts_added} verdicts, {self.labels} labels"
        )

    def _summary(self) -> str:
        return str(self)

    def to_dataframe(self) -> Any:
        """One row per hypothesis in the import: its ``hypothesis`` id, ``outcome`` (added,
        unchanged, skipped, replaced) and ``stored_as`` (its id in the store)."""
        rows = [
            (old, outcome, self.renamed.get(old, old))
            for outcome, ids in (("added", self.added), ("unchanged", self.unchanged),
                                 ("skipped", self.skipped), ("replaced", self.replaced))
            for old in ids
        ]  # fmt: skip
        return pandas().DataFrame(rows, columns=["hypothesis", "outcome", "stored_as"])


CONFLICT_CHOICES = ("report", "skip", "keep_both", "replace")


def import_hypotheses(
    store: HypothesisStore,
    entries: list[StoredHypothesis],
    labels: list[Label],
    project: str,
    *,
    on_conflict: str = "report",
) -> ImportReport:
    """Write imported hypotheses, their verdicts and labels into ``project`` at once.

    One transaction: a failure part-way writes nothing. An id already in ``project``
    with the same content gains only the verdicts it lacks; with different content it
    is a conflict, settled by ``on_conflict``: ``"report"`` (raise ``ImportConflict``,
    write nothing), ``"skip"``, ``"keep_both"`` (theirs under a new id) or
    ``"replace"`` (theirs replaces ours and our verdicts of it are dropped). An id that
    lives in another project of this store is copied under a new id, never moved.
    """
    check_choice("on_conflict", on_conflict, CONFLICT_CHOICES)
    _check_entries(entries, labels)
    report: dict[str, Any] = {
        k: [] for k in ("added", "unchanged", "skipped", "replaced", "conflicts")
    }
    renamed: dict[str, str] = {}
    n_verdicts = 0
    with store._writing() as conn:
        pid = store._project_id(conn, project)
        for entry in entries:
            h = entry.hypothesis
            spec = spec_of(h)
            here = conn.execute(
                sa.select(hypotheses_table.c.project_id, hypotheses_table.c.spec).where(
                    hypotheses_table.c.id == h.id
                )
            ).first()
            target, drop_old = h.id, False
            if here is None:
                _insert(conn, h, pid, entry)
                report["added"].append(h.id)
            elif here.project_id != pid or not _same(here.spec, spec):
                if here.project_id == pid and on_conflict in ("report", "skip"):
                    report["conflicts" if on_conflict == "report" else "skipped"].append(
                        (h.id, _differences(here.spec, spec))
                    )
                    continue
                if here.project_id == pid and on_conflict == "replace":
                    drop_old = True
                    conn.execute(
                        hypotheses_table.update()
                        .where(hypotheses_table.c.id == h.id)
                        .values(**row_of(h, entry.author, entry.updated or now()))
                    )
                    report["replaced"].append(h.id)
                else:  # a copy into another project, or keep both
                    target = _derived_id(h.id, project, spec)
                    renamed[h.id] = target
                    copy = h.replace(id=target)
                    there = conn.execute(
                        sa.select(hypotheses_table.c.spec).where(hypotheses_table.c.id == target)
                    ).scalar()
                    if there is None:
                        _insert(conn, copy, pid, entry)
            else:
                report["unchanged"].append(h.id)
            if drop_old:
                conn.execute(
                    verdicts_table.delete().where(verdicts_table.c.hypothesis_id == target)
                )
            present = set(
                conn.execute(
                    sa.select(verdicts_table.c.record).where(
                        verdicts_table.c.hypothesis_id == target
                    )
                ).scalars()
            )
            for verdict in entry.verdicts:
                verdict = _replace(verdict, hypothesis_id=target)
                if verdict.to_json() not in present:
                    store._insert_verdict(conn, verdict)
                    n_verdicts += 1
        if report["conflicts"]:
            raise ImportConflict(report["conflicts"])  # rolls the transaction back
        for lab in labels:
            put_label(conn, pid, lab)
    return ImportReport(
        project=project,
        added=tuple(report["added"]),
        unchanged=tuple(report["unchanged"]),
        skipped=tuple(hid for hid, _ in report["skipped"]),
        replaced=tuple(report["replaced"]),
        renamed=renamed,
        verdicts_added=n_verdicts,
        labels=len(labels),
    )


def _insert(conn: Connection, h: Hypothesis, pid: int, entry: StoredHypothesis) -> None:
    row = row_of(h, entry.author, entry.updated or now())
    conn.execute(
        hypotheses_table.insert().values(
            id=h.id, project_id=pid, created=entry.created or row["updated"], **row
        )
    )


def _parsed(spec: str) -> dict[str, Any] | None:
    try:
        return claim_from_dict(json.loads(spec)).to_dict()
    except (ValueError, TypeError):
        return None


def _same(ours: str, theirs: str) -> bool:
    """Whether two stored specs describe the same hypothesis (across record versions)."""
    a, b = _parsed(ours), _parsed(theirs)
    return a is not None and a == b


def _differences(ours: str, theirs: str) -> list[str]:
    a, b = _parsed(ours) or {}, _parsed(theirs) or {}
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) or ["the record"]


def _derived_id(hypothesis_id: str, project: str, spec: str) -> str:
    """A new id for a copy: the same import into the same project gets the same one."""
    digest = hashlib.sha256(f"{project}\0{spec}".encode()).hexdigest()[:10]
    return f"{hypothesis_id[:48]}-{digest}"


def _check_entries(entries: list[StoredHypothesis], labels: list[Label]) -> None:
    """Refuse, before anything is written, an entry a store cannot hold, or a verdict filed
    under a hypothesis it did not judge (it would be shown as that hypothesis's evidence)."""
    for i, entry in enumerate(entries, 1):
        h = entry.hypothesis
        where = f"imported hypothesis {i} (id {h.id!r})"
        try:
            row_of(h, entry.author, entry.updated or now())
            if entry.created:
                check_field("created", entry.created)
            for j, verdict in enumerate(entry.verdicts, 1):
                if verdict.hypothesis_id != h.id:
                    raise ValueError(
                        f"its verdict {j} judged hypothesis {verdict.hypothesis_id!r}, not this "
                        "one: a verdict is imported only under the hypothesis it judged, never "
                        "re-attributed (the file was edited or assembled by hand)"
                    )
                try:
                    check_verdict(verdict)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"verdict {j}: {err}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}; nothing was imported") from None
    for i, lab in enumerate(labels, 1):
        try:
            check_label(lab)
        except (TypeError, ValueError) as err:
            raise ValueError(f"imported label {i}: {err}; nothing was imported") from None
