"""tutorials/grokking.ipynb runs top to bottom in its CI setting (EXPLORER_CI=1).

The notebook reuses the session's CI grokking run (the same folder tests/training uses),
so the model is trained once per test session; the notebook replays it, computes the
progress measures and tests its hypotheses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import execute, printed

NOTEBOOK = Path(__file__).resolve().parents[1] / "tutorials" / "grokking.ipynb"


@pytest.mark.slow
def test_the_grokking_notebook_runs(tmp_path, tmp_path_factory):
    import torch

    from explorer.studies.grokking import CI_SETTING, train_grokking

    torch.set_num_threads(1)
    run = train_grokking(tmp_path_factory.getbasetemp() / "grokking-ci", CI_SETTING, progress=False)
    nb = execute(NOTEBOOK, tmp_path, {"EXPLORER_CI": "1", "EXPLORER_GROKKING_RUN": str(run.path)})
    text = printed(nb)
    assert "key frequencies carry" in text
    assert "test accuracy reached 95% at epoch" in text
    assert "supported" in text
    assert "stayed below 20% until epoch" in text
    clashes = _overlapping_phase_labels(nb, run.last_step)
    assert clashes == [], clashes


PHASES = ("memorisation", "circuit formation", "cleanup")


def _overlapping_phase_labels(nb, last_step: int) -> list[tuple[str, str]]:
    """Pairs of phase labels drawn at the same height closer than their text is wide.

    A label starts at its phase's first epoch (xanchor left); its width is estimated at
    7 px per character, on a plot about 700 px wide spanning epochs 0 to ``last_step``.
    """
    clashes = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            fig = out.get("data", {}).get("application/vnd.plotly.v1+json")
            if not fig:
                continue
            labels = [a for a in fig["layout"].get("annotations", []) if a.get("text") in PHASES]
            if not labels:
                continue
            per_px = last_step / 700
            for i, a in enumerate(labels):
                for b in labels[i + 1 :]:
                    if a["y"] != b["y"]:
                        continue
                    left, right = sorted((a, b), key=lambda label: label["x"])
                    if right["x"] - left["x"] < 7 * len(left["text"]) * per_px:
                        clashes.append((left["text"], right["text"]))
    return clashes
