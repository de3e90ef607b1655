"""tutorials/what_fine_tuning_changes.ipynb runs top to bottom on the shipped checkpoints
(EXPLORER_CI=1, one thread) and what it finds holds: the number checked are those the notebook
computed and wrote to ``tutorial_summary.json``.

It runs once, in JupyterLab: the ``lab_run`` fixture (tutorial_lab.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_runner import printed

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "what_fine_tuning_changes.ipynb"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def executed(lab_run):
    out = lab_run.folder / "finetune-out"  # the notebook's default OUT
    return json.loads((out / "tutorial_summary.json").read_text()), printed(lab_run.nb)


@pytest.mark.slow
def test_it_runs_in_lab_and_every_widget_renders(lab_run):
    assert lab_run.failure is None, lab_run.failure


@pytest.mark.slow
def test_the_change_grows_with_the_examples_from_a_base_that_prefers_single_quotes(executed):
    summary, text = executed
    assert "Traceback" not in text
    assert summary["base_preference"] < 0  # the behaviour is not already in the model
    scaling = {int(n): v for n, v in summary["scaling"].items()}
    assert sorted(scaling) == [10, 100, 1000, 10000]
    assert scaling[10] < scaling[100] < scaling[1000] < scaling[10000]


@pytest.mark.slow
def test_the_hypothesis_gets_a_computed_verdict_and_the_maps_are_measured(executed):
    summary, text = executed
    h = summary["hypothesis"]
    assert len(h["units"]) == 2 and all(u.startswith("head ") for u in h["units"])
    assert h["status"] in ("supported", "refuted", "inconclusive")
    assert f"verdict: {h['status']}" in text
    assert len(summary["weight_change_by_layer"]) == 2
    assert 0 <= summary["max_attention_divergence"] <= 1
    assert set(summary["group_shares"]) == {
        "heads of layer 0", "heads of layer 1", "MLP neurons of layer 0", "MLP neurons of layer 1"
    }  # fmt: skip


@pytest.mark.slow
def test_adversarial_training_buys_robustness_the_standard_mlp_lacks(executed):
    summary, _ = executed
    mnist = summary["mnist"]
    assert mnist["standard"]["clean"] > 0.9 and mnist["adversarial"]["clean"] > 0.9
    assert mnist["adversarial"]["pgd eps 0.1"] > mnist["standard"]["pgd eps 0.1"] + 0.4
    assert len(summary["mnist_weight_change_by_layer"]) >= 2


@pytest.mark.slow
def test_the_adversarial_first_layer_is_smaller_and_sparser(executed):
    summary, _ = executed
    first = summary["mnist_first_layer"]
    assert first["adversarial"]["mean |w|"] < 0.75 * first["standard"]["mean |w|"]
    assert first["adversarial"]["share |w| < 0.01"] > first["standard"]["share |w| < 0.01"]
