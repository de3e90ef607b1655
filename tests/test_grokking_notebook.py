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

    from explorer.training import CI_SETTING, train_grokking

    torch.set_num_threads(1)
    run = train_grokking(tmp_path_factory.getbasetemp() / "grokking-ci", CI_SETTING, progress=False)
    nb = execute(NOTEBOOK, tmp_path, {"EXPLORER_CI": "1", "EXPLORER_GROKKING_RUN": str(run.path)})
    text = printed(nb)
    assert "key frequencies carry" in text
    assert "test accuracy reached 95% at epoch" in text
    assert "supported" in text
