"""tutorials/features.ipynb runs top to bottom from the shipped SAE (EXPLORER_CI=1), and what
it states is what it computed.

Every number checked here is one the notebook wrote to ``summary.json``; the answer to "are
features more monosemantic than neurons?" and the hypotheses' verdicts are checked against
the printed text, so the prose cannot say one thing while the numbers say another.

It runs once, in JupyterLab: the ``lab_run`` fixture (tutorial_lab.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_runner import PLOTLY, figure_problems, printed

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "features.ipynb"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def executed(lab_run):
    out = lab_run.folder / "features-out"  # the notebook's default OUT
    return out, json.loads((out / "summary.json").read_text()), printed(lab_run.nb), lab_run.nb


@pytest.mark.slow
def test_it_runs_in_lab_and_every_widget_renders(lab_run):
    assert lab_run.failure is None, lab_run.failure


@pytest.mark.slow
def test_the_shipped_sae_is_good_on_held_out_files(executed):
    _, summary, text, _ = executed
    assert "Traceback" not in text
    q = summary["quality"]
    assert q["explained_variance"] > 0.7 and q["ce_loss_recovered"] > 0.7, q
    assert q["l0"] == pytest.approx(16, abs=0.5)  # TopK, k = 16
    assert "shipped weights: 65 KB (float16)" in text


@pytest.mark.slow
def test_it_finds_a_feature_for_each_kind_of_token(executed):
    _, summary, text, _ = executed
    kinds = summary["kind_features"]
    assert set(kinds) == {"indentation", "quote", "keyword", "identifier"}
    assert len(set(kinds.values())) == 4  # four different features
    for kind, feature in kinds.items():
        assert f"{kind:12s} feature {feature:3d}: purity" in text


@pytest.mark.slow
def test_the_monosemanticity_answer_is_the_measured_one(executed):
    _, summary, text, _ = executed
    sim = summary["simulation"]
    assert sim["neuron"]["n"] == 256 and sim["resid dim"]["n"] == 64
    assert sim["feature"]["n"] > 200  # every live feature, not a chosen few
    for other, a in summary["answer"].items():
        assert a["low"] <= a["high"]
        expected = "yes" if a["low"] > 0 else "no"
        assert a["text"].startswith(expected), a
        assert f"more monosemantic? {a['text']}" in text
        assert (a["auc"] > 0.5) == (sim["feature"]["median"] > sim[other]["median"]) or a[
            "low"
        ] <= 0


@pytest.mark.slow
def test_steering_and_hypotheses_are_reported(executed):
    out, summary, text, _ = executed
    s = summary["steering"]
    assert s["feature"] == summary["kind_features"]["quote"] and s["amount"] > 0
    assert "P(quote token) = " in text
    for kind, v in summary["verdicts"].items():
        assert v["status"] in ("supported", "refuted", "inconclusive")
        assert v["baseline"] is not None  # random features of the same SAE, computed
        assert f"{v['status']:12s} feature {summary['kind_features'][kind]} detects" in text
    assert summary["seconds"] > 0
    assert {p.name for p in out.glob("*.json") if p.name != "summary.json"} == {
        "purity.json",
        "simulation_scores.json",
        "steering.json",
    }


@pytest.mark.slow
def test_every_figure_draws_something(executed):
    nb = executed[3]
    shown = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if PLOTLY in o.get("data", {})
    ]
    assert len(shown) == 3
    assert figure_problems(nb) == []
