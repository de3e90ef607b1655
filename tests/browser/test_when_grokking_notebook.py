"""tutorials/when_does_grokking_happen.ipynb runs top to bottom from the sweep that ships.

The notebook copies the shipped sweep (``explorer.sweep.shipped``: 48 runs, metrics and a few
float16 checkpoints) into a folder beside it, so nothing is trained here. Its numbers are
checked against the same computations made here on the shipped sweep: the phase diagram's
cells, the measures that move first, and the prediction's verdict, which the notebook states
whichever way it goes.

It runs once, in JupyterLab: the ``lab_run`` fixture (tutorial_lab.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import PLOTLY, printed

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "when_does_grokking_happen.ipynb"

pytestmark = pytest.mark.browser


@pytest.mark.slow
def test_it_runs_in_lab_and_every_widget_renders(lab_run):
    assert lab_run.failure is None, lab_run.failure


@pytest.mark.slow
def test_the_when_grokking_notebook_runs_from_the_shipped_sweep(lab_run):
    from explorer.hypotheses import HypothesisStore, Prediction, split_runs
    from explorer.sweep import (
        SHIPPED_INDUCTION_SWEEP,
        SHIPPED_SWEEP,
        Sweep,
        emergence,
        measure_leads,
        prediction_table,
    )

    folder = lab_run.folder / "sweeps" / "grokking-wd-frac"  # the notebook's default FOLDER
    nb = lab_run.nb
    text = printed(nb)
    shipped = Sweep.open(SHIPPED_SWEEP)
    assert Sweep.open(folder).outcomes().equals(shipped.outcomes())  # a copy: nothing trained
    outcomes = shipped.outcomes()
    n_grokked = int(outcomes.test_95.notna().sum())
    assert f"48 runs, {n_grokked} reached 95% test accuracy within 400 epochs" in text

    leads = measure_leads(shipped).dropna().groupby("measure").lead.median()
    first = sorted(m for m, lead in leads.items() if lead > 0)
    line = next(x for x in text.splitlines() if "(they move first):" in x)
    assert sorted(line.split("(they move first): ")[1].split(", ")) == first
    assert "restricted_loss" in first  # Nanda et al.'s progress measure moves first

    # the headline: the same prediction judged here gives the same verdict the notebook states
    table = prediction_table(shipped, step=100, by=400)
    formation, held_out = split_runs(table.index, held_out=0.5, seed=0)
    result = Prediction(
        claim="c", outcome="groks", formation=formation, held_out=held_out,
        features=("weight_norm", "weight_norm_change", "embedding_gini", "embedding_gini_change"),
        baseline_features=("train_loss", "train_loss_change", "test_loss", "test_loss_change"),
    ).test(table)  # fmt: skip
    headline = next(x for x in text.splitlines() if x.startswith("HEADLINE: "))
    assert headline == "HEADLINE: " + result.headline()
    assert f"({result.verdict.status}: " in headline

    stored = HypothesisStore(lab_run.folder / "when_grokking.db").hypotheses()
    assert [type(s.hypothesis).__name__ for s in stored] == ["Prediction", "Prediction"]
    assert stored[0].status == result.verdict.status

    assert "RUN TIME: " in text

    # part 2: the shipped induction size sweep, and emergence read from it as the notebook does
    sizes = Sweep.open(SHIPPED_INDUCTION_SWEEP).outcomes()
    formed = sizes[sizes.final_max_induction_score > 0.4]
    assert len(sizes) == 10 and 0 < len(formed) < len(sizes)  # a transition within the sizes
    assert f"formed in {len(formed)} of 10 runs" in text
    sizes["has_induction_head"] = (sizes.final_max_induction_score > 0.4).astype(float)
    outcome = ("final_train_loss", "final_in_context_learning_score", "has_induction_head")
    scale = emergence(sizes, size="d_model", outcome=outcome)
    assert repr(scale) in text
    figures = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if PLOTLY in o.get("data", {})
    ]
    assert len(figures) == 5  # phase diagram, curves, leads, calibration, induction by width
