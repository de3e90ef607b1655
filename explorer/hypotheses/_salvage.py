"""Reading what can still be read from a damaged SQLite store, and naming what cannot.

A zeroed or missing page (a truncated file, a disk fault) makes every query that crosses it
fail, so one bad page would hide a whole project. Here each table is read row by row in rowid
order; at a damaged page the reader probes forward (doubling, then bisecting) for the first
rowid it can reach again and carries on. The table's indexes often survive the damage: read
on their own, they name the rows that were lost (a hypothesis id, its project, a verdict's
hypothesis). A row with a NULL (every store column is NOT NULL) or out of rowid order is a
torn cell, not data, and is dropped. ``PRAGMA integrity_check`` is run per table for the
report. Nothing here writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from explorer._display import MAX_ROWS, Shown, pandas
from explorer.hypotheses.schema import (
    hypotheses_table,
    labels_table,
    projects_table,
    verdicts_table,
)

__all__ = ["Salvage", "StoreCheck", "check_database", "check_file", "listing", "salvage"]

_PROBE_LIMIT = 2**62  # rowids are 64-bit signed


@dataclass
class Salvage:
    """What ``salvage`` read from each table, and what it could not."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # rowid -> what the table's indexes still say of a row that could not be read
    lost: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    # rowid ranges skipped where no index could say which rows they held
    gaps: dict[str, list[str]] = field(default_factory=dict)
    integrity: dict[str, list[str]] = field(default_factory=dict)
    unreadable_tables: dict[str, str] = field(default_factory=dict)

    def tally(self, table: str) -> str:
        """``"994 of 1000"``, or ``"479 (more could not be counted)"`` past an unnamed gap."""
        read = len(self.rows.get(table, ()))
        if self.gaps.get(table) or table in self.unreadable_tables:
            return f"{read} (more could not be counted)"
        return f"{read} of {self.counted(table)}"

    def counted(self, table: str) -> int:
        """Rows the table holds as far as can be told: read plus named as lost."""
        return len(self.rows.get(table, ())) + len(self.lost.get(table, {}))


def _seekable(con: sqlite3.Connection, table: str, after: int) -> bool:
    try:
        con.execute(f'SELECT rowid FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT 1', (after,))
        return True
    except sqlite3.DatabaseError:
        return False


def _resume_after(con: sqlite3.Connection, table: str, after: int) -> int | None:
    """The smallest ``x > after`` from which ``rowid > x`` can be read again (None: never)."""
    step, failed = 1, after
    while not _seekable(con, table, after + step):
        failed = after + step
        step *= 2
        if after + step > _PROBE_LIMIT:
            return None
    low, high = failed, after + step
    while high - low > 1:
        mid = (low + high) // 2
        if _seekable(con, table, mid):
            high = mid
        else:
            low = mid
    return high


def _read_table(
    con: sqlite3.Connection, table: str, columns: list[str]
) -> tuple[list[dict[str, Any]], list[tuple[int, int | None, str]]]:
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[int, int | None, str]] = []
    names = ", ".join(f'"{c}"' for c in columns)
    after = -(2**63)
    while True:
        try:
            cursor = con.execute(
                f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid', (after,)
            )
            for values in cursor:
                if values[0] <= after:  # out of order: a damaged page read as cells
                    raise sqlite3.DatabaseError("rows out of order (a damaged page)")
                after = values[0]
                if None not in values:  # every store column is NOT NULL: else a torn cell
                    rows.append(dict(zip(columns, values[1:])) | {"rowid": values[0]})
            return rows, skipped
        except sqlite3.DatabaseError as err:
            resume = _resume_after(con, table, after)
            skipped.append((after, resume, str(err)))
            if resume is None:
                return rows, skipped
            after = resume


def _indexed(con: sqlite3.Connection, table: str) -> dict[int, dict[str, Any]] | None:
    """rowid -> the columns any readable index of ``table`` holds (None: no index read)."""
    known: dict[int, dict[str, Any]] = {}
    read_any = False
    for index in [r[1] for r in con.execute(f'PRAGMA index_list("{table}")')]:
        columns = [r[2] for r in con.execute(f'PRAGMA index_info("{index}")') if r[2]]
        names = ", ".join(f'"{c}"' for c in columns)
        try:
            found = con.execute(f'SELECT rowid, {names} FROM "{table}" INDEXED BY "{index}"')
            for values in found:
                known.setdefault(values[0], {}).update(zip(columns, values[1:]))
            read_any = True
        except sqlite3.DatabaseError:
            continue
    return known if read_any else None


def salvage(path: str, tables: dict[str, list[str]]) -> Salvage:
    """Read ``{table: columns}`` from the SQLite file at ``path`` (read-only) as far as it can."""
    out = Salvage()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    # A file shorter than its header says (truncated) is refused outright unless the schema
    # is "writable"; the connection is read-only, so this only lets the reader past the header.
    con.execute("PRAGMA writable_schema = ON")
    try:
        for table, columns in tables.items():
            try:
                check = [r[0] for r in con.execute(f'PRAGMA integrity_check("{table}")')]
            except sqlite3.DatabaseError as err:  # the check itself stops at some damage
                check = [f"the integrity check stopped: {err}"]
            try:
                rows, skipped = _read_table(con, table, columns)
                index = _indexed(con, table) if skipped else {}
            except sqlite3.DatabaseError as err:  # the schema itself cannot be read
                out.unreadable_tables[table] = str(err)
                continue
            out.integrity[table] = [] if check == ["ok"] else check[:10]
            out.rows[table] = rows
            read = {r["rowid"] for r in rows}
            if index is not None:
                out.lost[table] = {r: v for r, v in index.items() if r not in read}
            else:
                out.gaps[table] = [
                    f"rowids after {a}" + (f" up to {b}" if b is not None else "") + f" ({why})"
                    for a, b, why in skipped
                ]
    finally:
        con.close()
    return out


@dataclass(frozen=True)
class Found:
    """Rows for one listing: hypotheses (with ``project``), their verdicts, and what was not
    read, as ``(table, id, reason)``."""

    hypotheses: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    unreadable: list[tuple[str, str, str]]


def listing(got: Salvage, damage: str, project: str | None, hypothesis_id: str | None) -> Found:
    """The salvaged rows of one project (or one hypothesis), and what is missing from them."""
    names = {r["id"]: r["name"] for r in got.rows.get("projects", [])}
    names.update({rowid: k.get("name") for rowid, k in got.lost.get("projects", {}).items()})
    bad: list[tuple[str, str, str]] = []
    for table in ("projects", "hypotheses", "verdicts"):
        if table in got.unreadable_tables:
            bad.append(
                (table, "every row", f"the table cannot be read: {got.unreadable_tables[table]}")
            )

    def wanted(project_id: Any, hid: Any) -> bool:
        if hypothesis_id is not None:
            return hid == hypothesis_id
        return project_id not in names or names[project_id] in (project, None)

    rows = []
    for r in got.rows.get("hypotheses", []):
        if not wanted(r["project_id"], r["id"]):
            continue
        if names.get(r["project_id"]) is None:
            bad.append(("hypotheses", r["id"], missing_project(r["project_id"])))
            continue
        rows.append(r | {"project": names[r["project_id"]]})
    for rowid, known in got.lost.get("hypotheses", {}).items():
        if wanted(known.get("project_id"), known.get("id")):
            where = names.get(known.get("project_id")) or "unknown"
            bad.append(("hypotheses", str(known.get("id", f"rowid {rowid}")),
                        f"on a damaged page of the file ({damage}); project {where!r}"))  # fmt: skip
    bad += [("hypotheses", gap, "could not be read") for gap in got.gaps.get("hypotheses", [])]
    ids = {r["id"] for r in rows}
    verdicts = [v for v in got.rows.get("verdicts", []) if v["hypothesis_id"] in ids]
    lost: dict[str, int] = {}
    for known in got.lost.get("verdicts", {}).values():
        hid = known.get("hypothesis_id")
        if hid in ids or hid is None:
            lost[str(hid)] = lost.get(str(hid), 0) + 1
    bad += [("verdicts", f"{n} of {hid}", f"on a damaged page of the file ({damage})")
            for hid, n in lost.items()]  # fmt: skip
    bad += [("verdicts", gap, "could not be read") for gap in got.gaps.get("verdicts", [])]
    summary = (
        f"the file is damaged ({damage}): read {got.tally('hypotheses')} hypothesis rows and "
        f"{got.tally('verdicts')} verdict rows of the store; store.check() has the details"
    )
    return Found(rows, verdicts, [("store", "damage", summary), *bad])


def missing_project(project_id: Any) -> str:
    return (
        f"it belongs to project id {project_id}, which is missing from the store (a damaged "
        "file, or rows deleted by hand); the hypothesis is kept but listed under no project"
    )


@dataclass(frozen=True, repr=False)
class StoreCheck(Shown):
    """``HypothesisStore.check()``: rows read per table (of those counted), and every problem
    found, in words. ``ok`` when there is none.

    >>> from explorer.hypotheses import HypothesisStore
    >>> HypothesisStore(":memory:").check().ok
    True
    """

    url: str
    rows: dict[str, tuple[int, int]]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        counts = ", ".join(
            f"{table} {read}" + (f" of {counted}" if counted != read else "")
            for table, (read, counted) in self.rows.items()
        )
        head = f"store {self.url}: {'ok' if self.ok else f'{len(self.problems)} problems'}"
        return "\n".join([f"{head}; rows read: {counts}", *(f"- {p}" for p in self.problems)])

    def _summary(self) -> str:
        return self.__str__().replace("\n- ", "; ", MAX_ROWS).split("\n")[0]

    def _table(self) -> tuple:
        rows = [(table, read, counted) for table, (read, counted) in self.rows.items()]
        shown = "; ".join(self.problems[:MAX_ROWS])
        return f"store {self.url}", ("table", "rows read", "rows counted"), rows, shown or "ok"

    def to_dataframe(self) -> Any:
        """One row per table: ``table``, rows ``read`` and rows ``counted`` (``problems``
        stay a tuple of sentences)."""
        rows = [(table, read, counted) for table, (read, counted) in self.rows.items()]
        return pandas().DataFrame(rows, columns=["table", "read", "counted"])


def orphan_problems(
    projects: set[Any], hypotheses: dict[Any, Any], labels: list[Any], verdicts: dict[Any, Any],
    known_hypotheses: set[Any],
) -> list[str]:  # fmt: skip
    """Rows that point to a project or hypothesis the store lacks, in words.

    ``hypotheses``: hypothesis id -> project id; ``labels``: project ids of labels;
    ``verdicts``: verdict id -> hypothesis id.
    """
    out = [
        f"hypothesis {hid!r}: {missing_project(pid)}"
        for hid, pid in hypotheses.items()
        if pid not in projects
    ]
    stray = [pid for pid in labels if pid not in projects]
    if stray:
        out.append(f"{len(stray)} labels belong to missing projects (ids {sorted(set(stray))})")
    lost = sorted({hid for hid in verdicts.values() if hid not in known_hypotheses})
    if lost:
        n = sum(1 for hid in verdicts.values() if hid not in known_hypotheses)
        out.append(f"{n} verdicts judge hypotheses missing from the store: {lost[:10]}")
    return out


def check_file(path: str, url: str, tables: dict[str, list[str]]) -> StoreCheck:
    """Integrity check, salvage and orphan search of a SQLite store file."""
    got = salvage(path, tables)
    problems = [f"{t}: cannot be read ({why})" for t, why in got.unreadable_tables.items()]
    for table, lines in got.integrity.items():
        problems += [f"{table}: integrity check: {line}" for line in lines]
    for table, lost in got.lost.items():
        if lost:
            problems.append(
                f"{table}: {len(lost)} of {got.counted(table)} rows are on damaged pages and "
                f"could not be read (rowids {sorted(lost)[:10]}{'...' if len(lost) > 10 else ''})"
            )
    for table, gaps in got.gaps.items():
        problems += [f"{table}: could not read {gap}" for gap in gaps]
    rows = {t: (len(got.rows.get(t, ())), got.counted(t)) for t in tables}
    projects = {r["id"] for r in got.rows.get("projects", [])} | set(got.lost.get("projects", {}))
    hyps = {r["id"]: r["project_id"] for r in got.rows.get("hypotheses", [])}
    known = set(hyps) | {k.get("id") for k in got.lost.get("hypotheses", {}).values()}
    if "projects" not in got.unreadable_tables:
        labels = [r["project_id"] for r in got.rows.get("labels", [])]
        verdicts = {r["id"]: r["hypothesis_id"] for r in got.rows.get("verdicts", [])}
        if "hypotheses" in got.unreadable_tables or got.gaps.get("hypotheses"):
            verdicts = {}  # hypotheses that could not be read cannot be told from missing ones
        problems += orphan_problems(projects, hyps, labels, verdicts, known)
    return StoreCheck(url, rows, tuple(problems))


def check_database(conn: Connection, url: str) -> StoreCheck:
    """``HypothesisStore.check()`` on a database read by queries (a server, or in memory)."""
    rows = {}
    for table in (projects_table, hypotheses_table, verdicts_table, labels_table):
        n = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar())
        rows[table.name] = (n, n)
    h, p, v = hypotheses_table.c, projects_table.c, verdicts_table.c
    problems = orphan_problems(
        set(conn.execute(sa.select(p.id)).scalars()),
        {hid: pid for hid, pid in conn.execute(sa.select(h.id, h.project_id))},
        list(conn.execute(sa.select(labels_table.c.project_id)).scalars()),
        {vid: hid for vid, hid in conn.execute(sa.select(v.id, v.hypothesis_id))},
        set(conn.execute(sa.select(h.id)).scalars()),
    )
    return StoreCheck(url, rows, tuple(problems))


def salvaged_projects(got: Salvage) -> list[str]:
    """Project names in creation order: those read, and those only the name index holds."""
    names = {r["id"]: r["name"] for r in got.rows.get("projects", [])}
    names.update({i: k["name"] for i, k in got.lost.get("projects", {}).items() if "name" in k})
    return [names[i] for i in sorted(names)]


def salvaged_labels(got: Salvage, project: str, unit: str | None) -> list[tuple[str, ...]]:
    """``(unit, rater, label, item)`` of the project's labels that could be read."""
    ids = {r["id"] for r in got.rows.get("projects", []) if r["name"] == project}
    ids |= {i for i, k in got.lost.get("projects", {}).items() if k.get("name") == project}
    return [
        (r["unit"], r["rater"], r["label"], r["item"])
        for r in sorted(got.rows.get("labels", []), key=lambda r: r["id"])
        if r["project_id"] in ids and (unit is None or r["unit"] == str(unit))
    ]
