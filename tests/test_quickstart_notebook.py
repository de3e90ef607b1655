"""The quickstart runs top to bottom as a newcomer runs it, and shows what its text claims.

It loads the shipped trained models (no training), runs on one thread through nbclient, and
a final cell added here reads the numbers back from the kernel: the story its text tells
(redundant layer-1 induction heads, head 0.1 the bottleneck, zero vs mean ablation) and the
hypotheses it tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from notebook_runner import execute

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"

CHECK = """
import json
from explorer.analysis import ablation_sweep
scores = explorer.analysis.head_scores(model, prompts)
with torch.no_grad():
    logits = model(prompts)
zero = ablation_sweep(model, eval_prompts, metric=repeated_loss, ablation="zero")
views = [attention, panel, patching, neurons, claim_widget, board, *explorer_view.children]
print(json.dumps({
    "induction": scores.get("induction")[1].tolist(),
    "previous": scores.get("previous_token")[0].tolist(),
    "repeated_loss": float(metrics.repeated_half_loss(prompts)(logits).mean()),
    "first_loss": float(metrics.first_half_loss(prompts)(logits).mean()),
    "accuracy": test_accuracy,
    "errors": [v.error for v in views],
    "panel_kind": panel.kind,
    "sweep_shape": panel.sweep_effects["shape"],
    "mean_sweep": sweep.grid().tolist(),
    "zero_sweep_min_layer1": float(zero.grid()[1].min()),
    "together": [together.before_mean, together.after_mean, random_loss],
    "verdicts": [v.status for v in verdicts],
    "baselines": [v.baseline for v in verdicts],
    "board_rows": len(board.rows),
    "widget_status": claim_widget.status,
}))
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    env = {"EXPLORER_QUICKSTART_THREADS": "1", "EXPLORER_QUICKSTART_TRAIN": None}
    start = time.perf_counter()
    nb = execute(NOTEBOOK, tmp_path_factory.mktemp("quickstart"), env, extra_cells=(CHECK,))
    return nb, time.perf_counter() - start


@pytest.mark.slow
def test_quickstart_shows_every_view_without_training(executed):
    nb, _ = executed
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    widget_cells = [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(WIDGET in o.get("data", {}) for o in c.outputs)
    ]
    # attention, panel, hypothesis, board, patching, neurons, two Explorers
    assert len(widget_cells) == 8
    first_widget = next(i for i, c in enumerate(nb.cells) if c in widget_cells)
    code_before = [c for c in nb.cells[:first_widget] if c.cell_type == "code"]
    assert len(code_before) == 1  # one setup cell (loads the shipped model), then a widget
    result = json.loads(nb.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
    assert max(result["induction"]) > 0.4  # ARENA's threshold for an induction head
    assert max(result["previous"]) > 0.4
    assert result["repeated_loss"] < result["first_loss"] - 1.0
    assert result["accuracy"] > 0.9
    assert result["errors"] == [""] * len(result["errors"])
    assert result["panel_kind"] == "mean"
    assert result["sweep_shape"] == [2, 4]


@pytest.mark.slow
def test_quickstart_story_is_what_the_model_shows(executed):
    """Every sentence of "What the sweep shows, and why", against the numbers."""
    nb, _ = executed
    r = json.loads(nb.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
    assert min(r["induction"]) > 0.25  # all four layer-1 heads are induction heads
    assert max(r["mean_sweep"][1]) < 0.5  # each alone costs under half a nat: redundant
    before, after, random_loss = r["together"]
    assert abs(after - random_loss) < 0.3  # together: back to the loss on random tokens
    previous = r["previous"]
    assert previous[1] == max(previous) and sorted(previous)[-2] < previous[1] - 0.3
    layer0 = r["mean_sweep"][0]
    assert layer0[1] == max(max(row) for row in r["mean_sweep"])  # head 0.1 dominates
    assert r["zero_sweep_min_layer1"] < 0  # zero ablation can lower the loss
    # the layer-1 claim clears its threshold, not random 4-head sets holding head 0.1
    assert r["verdicts"] == ["supported", "inconclusive"]
    assert r["baselines"][0] < 1.0  # random layer-0 heads cost far less than head 0.1
    assert r["board_rows"] == 2 and r["widget_status"] == "supported"
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "redundant" in text and "Head 0.1 dominates" in text and "Zero vs mean" in text
    assert "layer-1 claim clears its 1.5 nats" in text and "**inconclusive**" in text
