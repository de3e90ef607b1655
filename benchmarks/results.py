"""Benchmark rows, the machine they ran on, and how they are printed (text table, Markdown).

A ``Row`` compares ours with a reference (usually the naive way) in one quantity; its
``ratio`` is always "how many times better ours is" (naive/ours for time and bytes,
ours/reference for throughput), so a bigger ratio is a better result.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

STATUSES = ("ok", "not available", "error")


@dataclass(frozen=True)
class Row:
    """One measured comparison.

    Attributes:
        benchmark: the group, e.g. ``"ablation sweep"``.
        case: what was measured, e.g. ``"grokking p=113: 512 neurons, batch 32"``.
        unit: unit of ``ours`` and ``naive``: ``"s"``, ``"ms"``, ``"MiB"``, ``"tokens/s"``, ``"r"``.
        ours: our value (None when not available).
        naive: the reference value (None when there is no reference).
        ratio: times better ours is than the reference (None without one).
        target: the design target in words (empty when there is none).
        met: whether the target is met (None without a target).
        details: further numbers (max abs difference, correlation, ...).
        note: one line of context.
        status: ``"ok"``, ``"not available"`` or ``"error"``.
    """

    benchmark: str
    case: str
    unit: str
    ours: float | None
    naive: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    status: str = "ok"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def faster(
    benchmark: str,
    case: str,
    ours_s: float,
    naive_s: float,
    *,
    target_x: float | None = None,
    details: dict[str, Any] | None = None,
    note: str = "",
) -> Row:
    """A timing row: ratio = naive / ours; ``target_x`` is the speed-up asked for."""
    ratio = naive_s / ours_s if ours_s > 0 else math.inf
    return Row(
        benchmark,
        case,
        "s",
        ours_s,
        naive_s,
        ratio,
        target=f">= {target_x:g}x" if target_x is not None else "",
        met=None if target_x is None else ratio >= target_x,
        details=details or {},
        note=note,
    )


def unavailable(benchmark: str, case: str, why: str) -> Row:
    return Row(benchmark, case, "", None, note=why, status="not available")


def failed(benchmark: str, error: BaseException) -> Row:
    message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    return Row(benchmark, "failed", "", None, note=message, status="error")


# ----------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, threads, load, library versions."""
    import torch

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "nproc": affinity or os.cpu_count(),
        "memory_gb": _memory_gb(),
        "torch_threads": torch.get_num_threads(),
        "timing_clock": "cpu" if torch.get_num_threads() == 1 else "wall",
        "torch": torch.__version__,
        "transformer_lens": _version("transformer-lens"),
        "circuitsvis": _version("circuitsvis"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "git_commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average_start": load_average(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    load = info.get("load_average_start")
    end = info.get("load_average_end")
    load_text = f"load average {load[0]:.1f} at start" if load else "load average unknown"
    if end:
        load_text += f", {end[0]:.1f} at end"
    return (
        f"{info['cpu']}, {info['nproc']} cores (nproc), {info['memory_gb']} GB RAM; "
        f"torch {info['torch']} on {info['torch_threads']} thread(s)"
        f"{' (times are CPU seconds)' if info.get('timing_clock') == 'cpu' else ''}; "
        f"transformer-lens {info['transformer_lens']}, circuitsvis {info['circuitsvis']}; "
        f"Python {info['python']}, {info['platform']}; {load_text}; "
        f"commit {info['git_commit']}, {info['date']}"
    )


# ----------------------------------------------------------------------- formatting
def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB" if value >= 1 else f"{value * 1024:.1f} KiB"
    if unit == "tokens/s":
        return f"{value / 1000:.0f}k tok/s"
    if unit == "r":
        return f"r = {value:.3f}"
    return f"{value:.3g} {unit}".strip()


def format_ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    return f"{row.ratio:.1f}x" if row.ratio >= 10 else f"{row.ratio:.2f}x"


def _met(row: Row) -> str:
    if row.status != "ok":
        return row.status
    return {True: "yes", False: "NO", None: ""}[row.met]


def _cells(row: Row) -> list[str]:
    return [
        row.benchmark,
        row.case,
        format_value(row.ours, row.unit),
        format_value(row.naive, row.unit),
        format_ratio(row),
        row.target,
        _met(row),
    ]


HEADER = ["benchmark", "case", "ours", "naive / reference", "ratio", "target", "met"]


def format_table(rows: list[Row]) -> str:
    """A plain-text table for the terminal, notes listed underneath."""
    cells = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = []
    for n, line in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"- {r.benchmark} / {r.case}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def format_markdown_table(rows: list[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * len(HEADER)) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def to_json(size: str, info: dict[str, Any], rows: list[Row], seconds: float) -> dict[str, Any]:
    return _jsonable(
        {
            "size": size,
            "machine": info,
            "total_seconds": round(seconds, 1),
            "rows": [r.to_dict() for r in rows],
        }
    )


def command_line() -> str:
    return " ".join(["python -m benchmarks", *sys.argv[1:]])
