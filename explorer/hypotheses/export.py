"""Export a project's hypotheses, verdicts and labels as JSON or Markdown, and import them back.

The Markdown is for people (a section per hypothesis, its verdict history, labels and
agreement) and ends with the same record as JSON in a fenced block, which is what
``from_markdown`` reads. Every string written into Markdown is HTML-escaped and its
Markdown punctuation neutralised, so a claim cannot inject markup into a rendered report.

>>> from explorer.hypotheses.store import HypothesisStore
>>> a, b = HypothesisStore(":memory:"), HypothesisStore(":memory:")
>>> a.label("neuron 0.3", "loop", rater="ada")
>>> record = from_markdown(to_markdown(a), b)
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
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.store import DEFAULT_PROJECT, HypothesisStore, StoredHypothesis
from explorer.hypotheses.verdict import Verdict, now

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
        if data.get("format") != FORMAT:
            raise ValueError(f"not an explorer hypotheses export (format {data.get('format')!r})")
        if int(data.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"export format version {data['version']} is newer than this explorer reads "
                f"({FORMAT_VERSION}): upgrade explorer"
            )
        project = data["project"]
        stored = tuple(
            StoredHypothesis(
                hypothesis=Hypothesis.from_dict(entry["hypothesis"]),
                project=project,
                author=entry.get("author", ""),
                created=entry.get("created", ""),
                updated=entry.get("updated", ""),
                verdicts=tuple(Verdict.from_dict(v) for v in entry.get("verdicts", [])),
            )
            for entry in data.get("hypotheses", [])
        )
        labels = tuple(
            Label(unit=d["unit"], rater=d["rater"], label=d["label"], item=d.get("item", "unit"))
            for d in data.get("labels", [])
        )
        return cls(project, stored, labels)

    def save_to(self, store: HypothesisStore, project: str | None = None) -> None:
        """Write into ``store`` (under ``project`` if given); already-present verdicts are skipped."""
        target = project or self.project
        for s in self.hypotheses:
            store.save(
                s.hypothesis,
                project=target,
                author=s.author,
                created=s.created or None,
                updated=s.updated or None,
            )
            present = {v.to_json() for v in store.verdicts(s.hypothesis.id)}
            for verdict in s.verdicts:
                if verdict.to_json() not in present:
                    store.record(verdict)
        for lab in self.labels:
            store.label(lab.unit, lab.label, rater=lab.rater, item=lab.item, project=target)


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


def from_json(text: str, store: HypothesisStore, project: str | None = None) -> ProjectRecord:
    """Import a ``to_json`` export into ``store``; returns what was read."""
    record = ProjectRecord.from_dict(json.loads(text))
    record.save_to(store, project)
    return record


def md(text: object) -> str:
    """Escape text for a Markdown line or table cell: HTML first, then Markdown punctuation."""
    escaped = html.escape(str(text), quote=True)
    escaped = re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", escaped)
    return " ".join(escaped.split())


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def to_markdown(store: HypothesisStore, project: str = DEFAULT_PROJECT) -> str:
    """A readable report of the project, ending with the JSON record ``from_markdown`` reads."""
    record = ProjectRecord.of(store, project)
    n_verdicts = sum(len(s.verdicts) for s in record.hypotheses)
    lines = [
        f"# Hypotheses: {md(project)}",
        "",
        f"Exported by explorer at {now()}: {len(record.hypotheses)} hypotheses, "
        f"{n_verdicts} verdicts, {len(record.labels)} labels.",
        "",
    ]
    for i, s in enumerate(record.hypotheses, 1):
        h = s.hypothesis
        side = "above" if h.direction == "above" else "below"
        lines += [
            f"## {i}. {md(h.claim)}",
            "",
            f"- **status**: {md(s.status)}",
            f"- **author**: {md(s.author or 'unknown')}",
            f"- **units**: {md(', '.join(map(str, h.units)))}",
            f"- **test**: {md(h.measure.describe())} {side} {h.threshold:g}",
            f"- **formed on**: {md(h.formation.describe())}",
            f"- **judged on**: {md(h.held_out.describe())}",
            f"- **id**: {md(h.id)}",
            "",
        ]
        if s.verdicts:
            lines += [
                "| when | status | value | CI | baseline | model |",
                "|---|---|---|---|---|---|",
            ]
            for v in s.verdicts:
                ci = f"[{_fmt(v.ci_low)}, {_fmt(v.ci_high)}] ({round(100 * v.confidence)}%)"
                model = f"{v.model_name} @{v.model_fingerprint}"
                lines.append(
                    f"| {md(v.timestamp)} | {md(v.status)} | {_fmt(v.value)} | {md(ci)} "
                    f"| {_fmt(v.baseline)} | {md(model)} |"
                )
            lines.append("")
    if record.labels:
        lines += ["## Labels", "", "| unit | item | rater | label |", "|---|---|---|---|"]
        lines += [
            f"| {md(lab.unit)} | {md(lab.item)} | {md(lab.rater)} | {md(lab.label)} |"
            for lab in record.labels
        ]
        lines += ["", "## Agreement", "", "| unit | method | kappa | strength | items | raters |"]
        lines.append("|---|---|---|---|---|---|")
        for unit, a in agreement_by_unit(record.labels).items():
            lines.append(
                f"| {md(unit)} | {md(a.method)} | {_fmt(a.to_dict()['kappa'])} | {md(a.strength)} "  # type: ignore[arg-type]
                f"| {a.n_items} | {md(', '.join(a.raters))} |"
            )
        lines.append("")
    lines += [_FENCE, "", "```json", _dumps(record.to_dict()), "```", ""]
    return "\n".join(lines)


def from_markdown(text: str, store: HypothesisStore, project: str | None = None) -> ProjectRecord:
    """Import a ``to_markdown`` report into ``store`` (reads its JSON record)."""
    at = text.rfind(_FENCE)
    match = re.search(r"```json\n(.*?)\n```", text[at:], re.S) if at >= 0 else None
    if match is None:
        raise ValueError(
            "no explorer record found in this Markdown: only reports written by to_markdown "
            "can be imported (they end with a ```json block)"
        )
    return from_json(match.group(1), store, project)
