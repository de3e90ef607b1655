"""The names inside a run folder and its format version (``run`` reads and writes them).

>>> step_dir(10)
'step_000000010'
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINTS",
    "FORMAT",
    "MANIFEST",
    "METRICS",
    "STAGING",
    "STATE",
    "STATUSES",
    "VERSION",
    "step_dir",
]

FORMAT = "explorer-run"
VERSION = 1
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
STATE = "state"
STAGING = ".staging-"
STATUSES = ("created", "running", "complete", "stopped", "interrupted", "failed")


def step_dir(step: int) -> str:
    return f"step_{step:09d}"
