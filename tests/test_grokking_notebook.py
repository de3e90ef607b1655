"""tutorials/grokking.ipynb runs top to bottom in its CI setting (EXPLORER_CI=1).

The notebook reuses the session's CI grokking run (the same folder tests/training uses),
so the model is trained once per test session; the notebook replays it, computes the
progress measures and tests its hypotheses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "tutorials" / "grokking.ipynb"


def test_the_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_grokking_notebook_runs(tmp_path, tmp_path_factory, monkeypatch):
    import nbformat
    import torch
    from nbclient import NotebookClient

    from explorer.training import CI_SETTING, train_grokking

    torch.set_num_threads(1)
    run = train_grokking(tmp_path_factory.getbasetemp() / "grokking-ci", CI_SETTING, progress=False)
    monkeypatch.setenv("EXPLORER_CI", "1")
    monkeypatch.setenv("EXPLORER_GROKKING_RUN", str(run.path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "key frequencies carry" in text
    assert "test accuracy reached 95% at epoch" in text
    assert "supported" in text
