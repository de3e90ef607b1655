"""The quickstart runs top to bottom as a newcomer runs it, and shows what its text claims.

It runs with its default settings (the induction heads must actually form), one thread,
through nbclient; a final cell added here reads the numbers back from the kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_runner import execute

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"

CHECK = """
import json
scores = explorer.analysis.head_scores(model, prompts)
with torch.no_grad():
    logits = model(prompts)
views = [attention, panel, patching, neurons, *explorer_view.children]
print(json.dumps({
    "induction": float(scores.get("induction")[1].max()),
    "previous": float(scores.get("previous_token")[0].max()),
    "repeated_loss": float(metrics.repeated_half_loss(prompts)(logits).mean()),
    "first_loss": float(metrics.first_half_loss(prompts)(logits).mean()),
    "accuracy": test_accuracy,
    "errors": [v.error for v in views],
    "sweep_shape": panel.sweep_effects["shape"],
}))
"""


@pytest.mark.slow
def test_quickstart_trains_induction_heads_and_shows_every_view(tmp_path):
    env = {"EXPLORER_QUICKSTART_THREADS": "1", "EXPLORER_QUICKSTART_STEPS": None}
    nb = execute(NOTEBOOK, tmp_path, env, extra_cells=(CHECK,))

    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    widget_cells = [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(WIDGET in o.get("data", {}) for o in c.outputs)
    ]
    assert len(widget_cells) == 6  # attention, panel, patching, neurons, two Explorers
    result = json.loads(nb.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
    assert result["induction"] > 0.4  # ARENA's threshold for an induction head
    assert result["previous"] > 0.4
    assert result["repeated_loss"] < result["first_loss"] - 1.0
    assert result["accuracy"] > 0.9
    assert result["errors"] == [""] * len(result["errors"])
    assert result["sweep_shape"] == [2, 4]
