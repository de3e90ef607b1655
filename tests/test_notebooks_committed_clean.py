"""Every notebook is committed without outputs (a plotly or widget output stores MBs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*REPO.glob("notebooks/*.ipynb"), *REPO.glob("tutorials/*.ipynb")])


def test_the_notebooks_are_found():
    assert {p.stem for p in NOTEBOOKS} >= {
        "quickstart",
        "live_session",
        "grokking",
        "induction_heads",
        "mnist_kitchen_sink",
        "auditing_game",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert code
    dirty = [i for i, c in enumerate(code) if c["outputs"] or c["execution_count"] is not None]
    assert dirty == [], f"{path.name}: code cells {dirty} carry outputs; run nbstripout"
