"""A sweep's runs as a prediction's table, which measures move first, and the shipped sweep."""

from __future__ import annotations

import json
import math

import pytest
import torch

from explorer.analysis.curves import detect_phase_change
from explorer.hypotheses import Prediction
from explorer.sweep import (
    CHECKPOINT_RUNS,
    HEAD_SCORES,
    INDUCTION_LOSSES,
    INTERNAL_MEASURES,
    PHASE_GRID,
    PHASE_SEEDS,
    SHIPPED_INDUCTION_SWEEP,
    SHIPPED_SWEEP,
    Sweep,
    loss_bump_table,
    measure_leads,
    phase_sweep,
    prediction_table,
    ship_sweep,
    sweep,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep") / "tiny"
    return sweep(
        "grokking", {"weight_decay": [0.3, 3.0]}, seeds=[0, 1], folder=folder,
        base={"p": 11, "d_model": 16, "steps": 60, "lr": 0.01, "train_frac": 0.6},
        executor="serial", progress=False,
    )  # fmt: skip


def test_the_table_holds_only_what_was_logged_by_the_step(tiny):
    table = prediction_table(tiny, step=20, by=60, keep_decided=True)
    assert sorted(table.index) == sorted(tiny.finished)
    for run in tiny.finished:
        metrics = tiny.run(run).metrics()
        for m in (*INTERNAL_MEASURES, "test_loss"):
            curve = metrics.get(m)
            logged = [
                (int(s), float(v))
                for s, v in zip(curve.steps, curve.values)
                if s <= 20 and math.isfinite(v)
            ]
            half = [
                (int(s), float(v))
                for s, v in zip(curve.steps, curve.values)
                if s <= 10 and math.isfinite(v)
            ]
            assert table.loc[run, m] == pytest.approx(logged[-1][1], abs=1e-5)
            assert table.loc[run, f"{m}_change"] == pytest.approx(
                logged[-1][1] - half[-1][1], abs=1e-5
            )
        acc = metrics.get("test_acc")
        reached = [int(s) for s, v in zip(acc.steps, acc.values) if float(v) >= 0.95]
        assert table.loc[run, "groks"] == int(bool(reached) and reached[0] <= 60)
    assert set(table.weight_decay) == {0.3, 3.0}


def test_runs_decided_by_the_step_are_left_out_and_named(tiny):
    everyone = prediction_table(tiny, step=20, by=60, reach=0.0)  # reached at step 0
    assert len(everyone) == 0 and sorted(everyone.attrs["decided"]) == sorted(tiny.finished)
    kept = prediction_table(tiny, step=20, by=60, reach=0.0, keep_decided=True)
    assert (kept.grok_step == 0).all() and (kept.groks == 1).all()
    nobody = prediction_table(tiny, step=20, by=60, reach=1.01)  # never reached
    assert len(nobody) == len(tiny.finished) and nobody.attrs["decided"] == []
    assert nobody.grok_step.isna().all() and (nobody.groks == 0).all()


def test_bad_steps_and_measures_get_sentences(tiny):
    with pytest.raises(ValueError, match="by \\(20\\) must come after step \\(20\\)"):
        prediction_table(tiny, step=20, by=20)
    with pytest.raises(ValueError, match="step must be a step >= 1"):
        prediction_table(tiny, step=0, by=20)
    with pytest.raises(KeyError, match="logged no \\['llc'\\]"):
        prediction_table(tiny, step=20, by=60, measures=["llc"])


def test_a_prediction_is_judged_on_a_sweeps_table(tiny):
    table = prediction_table(tiny, step=20, by=60, keep_decided=True)
    names = sorted(table.index)
    p = Prediction(claim="the embedding's sparsity at step 20 says which runs grok by 60",
                   outcome="groks", features=("embedding_gini",), formation=names[:2],
                   held_out=names[2:], step=20, by=60, dataset="tiny")  # fmt: skip
    v = p.test(table).verdict
    assert v.status == "inconclusive" and "2 held-out runs" in v.note  # four runs decide nothing


def test_measure_leads_compare_each_measure_with_the_test_loss(tiny):
    grokked = [r for r in tiny.finished if tiny.records[r]["outcomes"]["test_95"] is not None]
    assert set(measure_leads(tiny).run) == set(grokked)
    leads = measure_leads(tiny, runs=tiny.finished)
    assert set(leads.run) == set(tiny.finished)
    assert {"restricted_loss", "excluded_loss", "weight_norm"} <= set(leads.measure)
    finite = leads.dropna()
    assert (finite.lead == finite.reference_half_step - finite.half_step).all()


def test_shipping_keeps_every_curve_and_outcome_and_few_checkpoints(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(CHECKPOINT_RUNS, "train_frac", 0.6)  # the tiny sweep's fraction
    monkeypatch.setitem(CHECKPOINT_RUNS, "seed", 1)
    shipped = ship_sweep(tiny.folder, tmp_path / "shipped")
    assert shipped.outcomes().equals(tiny.outcomes())
    assert shipped.to_dataframe().equals(tiny.to_dataframe())
    for run in shipped.finished:
        steps = shipped.run(run).steps
        source = tiny.run(run).steps
        assert steps == ((source[0], source[-1]) if run.endswith("seed=1") else ())
        table = json.loads((shipped.run(run).path / "progress.json").read_text())
        assert table["checkpoints"] == len(source)
    size = sum(f.stat().st_size for f in (tmp_path / "shipped").rglob("*") if f.is_file())
    full = sum(f.stat().st_size for f in tiny.folder.rglob("*") if f.is_file())
    assert size < full / 4


def test_the_shipped_phase_sweep_opens_complete_and_copies_once(tmp_path):
    s = phase_sweep(tmp_path / "phase")
    n = len(PHASE_GRID["weight_decay"]) * len(PHASE_GRID["train_frac"]) * len(PHASE_SEEDS)
    assert len(s.finished) == n == 48
    assert Sweep.open(SHIPPED_SWEEP).outcomes().equals(s.outcomes())
    size = sum(f.stat().st_size for f in SHIPPED_SWEEP.rglob("*") if f.is_file())
    assert size < 3_000_000
    with_checkpoints = [r for r in s.finished if s.run(r).steps]
    assert len(with_checkpoints) == len(PHASE_GRID["weight_decay"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "note.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no sweep"):
        phase_sweep(tmp_path / "other")


# ----------------------------------------------- the induction bump, from head scores
def test_the_loss_bump_table_holds_only_what_was_logged_by_the_step():
    shipped = Sweep.open(SHIPPED_INDUCTION_SWEEP)
    table = loss_bump_table(shipped, step=400, by=1200, keep_decided=True)
    assert sorted(table.index) == sorted(shipped.finished) and len(table) == 10
    for run in shipped.finished:
        metrics = shipped.run(run).metrics()
        for m in (*HEAD_SCORES, *INDUCTION_LOSSES):
            curve = metrics.get(m)
            pairs = [(int(s), float(v)) for s, v in zip(curve.steps, curve.values)]
            now = [v for s, v in pairs if s <= 400][-1]
            then = [v for s, v in pairs if s <= 200][-1]
            assert table.loc[run, m] == pytest.approx(now, abs=1e-6)
            assert table.loc[run, f"{m}_change"] == pytest.approx(now - then, abs=1e-6)
        loss = metrics.get("train_loss")
        change = detect_phase_change(loss.steps, loss.values)
        bumped = change.before - change.after >= 0.2
        assert table.loc[run, "bump"] == int(bumped and change.step <= 1200)
        if bumped:
            assert table.loc[run, "bump_step"] == change.step
    # the later bumps are what the sweep shows: the widest runs, none of the narrowest
    assert table.bump.sum() == 4
    assert set(table[table.bump == 1].d_model) == {32, 64} and table.attrs["decided"] == []
    # a run whose bump came by the step is decided and left out
    late = loss_bump_table(shipped, step=800, by=1200)
    assert sorted(late.attrs["decided"]) == ["d_model=64_seed=0", "d_model=64_seed=1"]
    assert len(late) == 8
    with pytest.raises(ValueError, match="min_drop must be a positive number"):
        loss_bump_table(shipped, step=400, by=1200, min_drop=0)
    with pytest.raises(KeyError, match="logged no \\['test_acc'\\]"):
        loss_bump_table(shipped, step=400, by=1200, measures=["test_acc"])


def test_a_prediction_of_the_loss_bump_from_head_scores_gets_a_verdict():
    shipped = Sweep.open(SHIPPED_INDUCTION_SWEEP)
    table = loss_bump_table(shipped, step=400, by=1200)
    features = tuple(c for m in HEAD_SCORES for c in (m, f"{m}_change"))
    prediction = Prediction(
        claim="the induction bump has happened, judged from head scores, before the loss shows it",
        outcome="bump",
        features=features,
        baseline_features=("train_loss", "train_loss_change"),
        formation=[r for r in table.index if r.endswith("seed=0")],
        held_out=[r for r in table.index if r.endswith("seed=1")],
        step=400, by=1200, dataset="induction-size-sweep",
    )  # fmt: skip
    result = prediction.test(table)
    # 5 held-out runs (2 that bump): too few for any verdict, and the note says so
    assert result.verdict.status == "inconclusive"
    assert "too few to decide: 5 held-out runs" in result.verdict.note
    assert result.verdict.n_examples == 5 and int(result.outcomes.sum()) == 2
    assert len(result.probabilities) == len(result.baseline_probabilities) == 5
