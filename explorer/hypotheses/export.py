"""Export a project's hypotheses, verdicts and labels as JSON or Markdown, and import them back.

The Markdown is for people (a section per hypothesis, its verdict history, labels and
agreement) and ends with the same record as JSON in a fenced block, which is what
``from_markdown`` reads. Every string written into Markdown is HTML-escaped and its
Markdown punctuation neutralised, so a claim cannot inject markup into a rendered report.

>>> from explorer.hypotheses.store import HypothesisStore
>>> a, b = HypothesisStore(":memory:"), HypothesisStore(":memory:")
>>> a.label("neuron 0.3", "loop", rater="ada")
>>> print(from_markdown(to_markdown(a), b))
import into 'default': 0 added, 0 already here; 0 verdicts, 1 labels
>>> [lab.label for lab in b.labels()]
['loop']
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from explorer.hypotheses.agreement import Label, agreement_by_unit
from explorer.hypotheses.imports import ImportReport
from explorer.hypotheses.prediction import Prediction, claim_from_dict
from explorer.hypotheses.store import DEFAULT_PROJECT, HypothesisStore, StoredHypothesis
from explorer.hypotheses.verdict import Verdict, _now
from explorer.hypotheses.versioning import parse_version

FORMAT = "explorer-hypotheses"
FORMAT_VERSION = 1
_FENCE = "<!-- explorer-record: the JSON below is what from_markdown reads -->"


@dataclass(frozen=True)
class ProjectRecord:
    """Everything a project holds: its hypotheses (with verdicts) and labels."""

    project: str
    hypotheses: tuple[StoredHypothesis, ...]
    labels: tuple[Label, ...]

    @classmethod
    def of(cls, store: HypothesisStore, project: str = DEFAULT_PROJECT) -> ProjectRecord:
        return cls(project, tuple(store.hypotheses(project)), tuple(store.labels(project)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "project": self.project,
            "hypotheses": [
                {
                    "author": s.author,
                    "created": s.created,
                    "updated": s.updated,
                    "hypothesis": s.hypothesis.to_dict(),
                    "verdicts": [v.to_dict() for v in s.verdicts],
                }
                for s in self.hypotheses
            ],
            "labels": [
                {"unit": lab.unit, "item": lab.item, "rater": lab.rater, "label": lab.label}
                for lab in self.labels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectRecord:
        """Read an export; any malformed part raises one ``ValueError`` naming where and why."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not an explorer hypotheses export (format {found!r})")
        try:
            version = parse_version(data.get("version", 1))
        except ValueError as err:
            raise ValueError(f"export: {err}") from None
        if version[0] > FORMAT_VERSION:
            raise ValueError(
                f"export format version {data['version']} is newer than this explorer reads "
                f"({FORMAT_VERSION}.x): upgrade explorer"
            )
        project = data.get("project")
        if not isinstance(project, str) or not project.strip():
            raise ValueError(
                "the export has no 'project' name (a non-empty string): it is incomplete or "
                "was edited by hand"
            )
        for key in ("hypotheses", "labels"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"the export's {key!r} must be a list")
        stored = []
        for i, entry in enumerate(data.get("hypotheses", [])):
            where = f"hypothesis {i + 1}"
            if isinstance(entry, dict) and isinstance(entry.get("hypothesis"), dict):
                where += f" (id {entry['hypothesis'].get('id')!r})"
            try:
                stored.append(
                    StoredHypothesis(
                        hypothesis=claim_from_dict(entry["hypothesis"]),
                        project=project,
                        author=str(entry.get("author", "")),
                        created=str(entry.get("created", "")),
                        updated=str(entry.get("updated", "")),
                        verdicts=tuple(Verdict.from_dict(v) for v in entry.get("verdicts", [])),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
                reason = f"missing {err}" if isinstance(err, KeyError) else str(err)
                raise ValueError(
                    f"export {where} is malformed: {reason}; nothing was imported"
                ) from None
        labels = []
        for i, d in enumerate(data.get("labels", [])):
            try:
                labels.append(
                    Label(
                        unit=d["unit"],
                        rater=d["rater"],
                        label=d["label"],
                        item=d.get("item", "unit"),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise ValueError(
                    f"export label {i + 1} is malformed: {err}; nothing was imported"
                ) from None
        return cls(project, tuple(stored), tuple(labels))

    def save_to(
        self, store: HypothesisStore, project: str | None = None, *, on_conflict: str = "report"
    ) -> ImportReport:
        """Write into ``store`` (under ``project`` if given) in one transaction.

        See ``HypothesisStore.import_hypotheses`` for ``on_conflict``; an id that exists here
        with different content is never overwritten unless ``on_conflict="replace"``.
        """
        return store.import_hypotheses(
            list(self.hypotheses),
            list(self.labels),
            project or self.project,
            on_conflict=on_conflict,
        )


def _dumps(data: dict[str, Any], indent: int | None = 2) -> str:
    # Characters that could close a code fence or open a tag are escaped inside strings
    # (they never occur in JSON's own syntax), so the block stays inert when rendered.
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)
    for char, code in (("`", "\\u0060"), ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text


def to_json(store: HypothesisStore, project: str = DEFAULT_PROJECT) -> str:
    """The project as JSON text (see ``ProjectRecord.to_dict`` for the layout)."""
    return _dumps(ProjectRecord.of(store, project).to_dict())


def from_json(
    text: str, store: HypothesisStore, project: str | None = None, *, on_conflict: str = "report"
) -> ImportReport:
    """Import a ``to_json`` export into ``store`` in one transaction; what it did.

    ``on_conflict`` settles ids that exist with different content: ``"report"`` (raise
    ``ImportConflict`` listing them, write nothing), ``"skip"``, ``"keep_both"`` or
    ``"replace"``. Into another project, hypotheses are copied under new ids.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the export is not valid JSON: {err}") from None
    record = ProjectRecord.from_dict(data)
    return record.save_to(store, project, on_conflict=on_conflict)


def _md(text: object) -> str:
    """Escape text for a Markdown line or table cell: HTML first, then Markdown punctuation."""
    escaped = html.escape(str(text), quote=True)
    escaped = re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", escaped)
    return " ".join(escaped.split())


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _baseline_cell(v: Verdict) -> str:
    """The cutoff a supported claim had to beat, with the distribution it came from."""
    if v.baseline_p95 is None or not v.baseline_n_sets:
        return _fmt(v.baseline)
    return f"{_fmt(v.baseline_p95)} ({v.baseline_n_sets} sets, mean {_fmt(v.baseline)})"


def to_markdown(store: HypothesisStore, project: str = DEFAULT_PROJECT) -> str:
    """A readable report of the project, ending with the JSON record ``from_markdown`` reads."""
    record = ProjectRecord.of(store, project)
    n_verdicts = sum(len(s.verdicts) for s in record.hypotheses)
    lines = [
        f"# Hypotheses: {_md(project)}",
        "",
        f"Exported by explorer at {_now()}: {len(record.hypotheses)} hypotheses, "
        f"{n_verdicts} verdicts, {len(record.labels)} labels.",
        "",
    ]
    for i, s in enumerate(record.hypotheses, 1):
        h = s.hypothesis
        head = [f"## {i}. {_md(h.claim)}", "", f"- **status**: {_md(s.status)}",
                f"- **author**: {_md(s.author or 'unknown')}"]  # fmt: skip
        if isinstance(h, Prediction):  # a claim about runs
            lines += [
                *head,
                f"- **prediction**: {_md(h.describe())}",
                f"- **formed on**: {len(h.formation)} runs",
                f"- **judged on**: {len(h.held_out)} held-out runs",
                f"- **id**: {_md(h.id)}",
            ]
        else:
            side = "above" if h.direction == "above" else "below"
            lines += [
                *head,
                f"- **units**: {_md(', '.join(map(str, h.units)) or 'none (a claim about inputs)')}",
                f"- **test**: {_md(h.measure.describe())} {side} {h.threshold:g}",
                f"- **formed on**: {_md(h.formation.describe())}",
                f"- **judged on**: {_md(h.held_out.describe())}",
                f"- **id**: {_md(h.id)}",
            ]
        if h.parent_id:
            lines.append(
                f"- **edited from**: {_md(h.parent_id)} (a new version; it keeps its verdicts)"
            )
        lines += [
            "",
        ]
        if s.verdicts:
            lines += [
                "| when | status | value | CI | baseline: cutoff (sets, mean) | model |",
                "|---|---|---|---|---|---|",
            ]
            for v in s.verdicts:
                ci = f"[{_fmt(v.ci_low)}, {_fmt(v.ci_high)}] ({round(100 * v.confidence)}%)"
                model = f"{v.model_name} @{v.model_fingerprint}"
                lines.append(
                    f"| {_md(v.timestamp)} | {_md(v.status)} | {_fmt(v.value)} | {_md(ci)} "
                    f"| {_baseline_cell(v)} | {_md(model)} |"
                )
            lines.append("")
    if record.labels:
        lines += ["## Labels", "", "| unit | item | rater | label |", "|---|---|---|---|"]
        lines += [
            f"| {_md(lab.unit)} | {_md(lab.item)} | {_md(lab.rater)} | {_md(lab.label)} |"
            for lab in record.labels
        ]
        lines += ["", "## Agreement", "", "| unit | method | kappa | strength | items | raters |"]
        lines.append("|---|---|---|---|---|---|")
        for unit, a in agreement_by_unit(record.labels).items():
            lines.append(
                f"| {_md(unit)} | {_md(a.method)} | {_fmt(a.to_dict()['kappa'])} | {_md(a.strength)} "  # type: ignore[arg-type]
                f"| {a.n_items} | {_md(', '.join(a.raters))} |"
            )
        lines.append("")
    lines += [_FENCE, "", "```json", _dumps(record.to_dict()), "```", ""]
    return "\n".join(lines)


def from_markdown(
    text: str, store: HypothesisStore, project: str | None = None, *, on_conflict: str = "report"
) -> ImportReport:
    """Import a ``to_markdown`` report into ``store`` (reads its JSON record)."""
    at = text.rfind(_FENCE)
    match = re.search(r"```json\n(.*?)\n```", text[at:], re.S) if at >= 0 else None
    if match is None:
        raise ValueError(
            "no explorer record found in this Markdown: only reports written by to_markdown "
            "can be imported (they end with a ```json block)"
        )
    return from_json(match.group(1), store, project, on_conflict=on_conflict)
