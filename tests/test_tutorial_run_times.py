"""Every tutorial says in its first cell how long it takes to run, as measured.

A newcomer decides from the first cell whether to start a notebook now: each tutorial (and
the quickstart) states its run time top to bottom on a 2-core machine, with a number and a
unit, in a ``**Run time:**`` sentence, and where the figure comes from.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted(ROOT.glob("tutorials/*.ipynb")) + [ROOT / "notebooks" / "quickstart.ipynb"]
DURATION = re.compile(r"\d+(?:\.\d+)?\s*(?:minutes?|seconds?|min|s)\b")


def test_every_tutorial_is_covered():
    names = {p.stem for p in TUTORIALS}
    assert {"auditing_game", "features", "grokking", "induction_heads", "mnist_kitchen_sink",
            "stdlib_lm", "what_fine_tuning_changes", "when_does_grokking_happen",
            "quickstart"} <= names  # fmt: skip


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_the_first_cell_states_a_measured_run_time(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell is not text"
    stated = [p for p in first.source.split("\n\n") if "**Run time:**" in p]
    assert stated, f"{path.name}: the first cell has no '**Run time:**' paragraph"
    sentence = " ".join(stated[0].split("**Run time:**", 1)[1].split())
    assert DURATION.search(sentence), f"{path.name}: the run time needs a number and a unit"
    assert "2-core" in sentence, f"{path.name}: say which machine (2-core) it was measured on"
    assert "measured" in sentence, f"{path.name}: say where the figure comes from"
