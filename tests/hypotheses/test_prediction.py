"""Predictions as hypotheses: formed on some runs, judged on held-out runs against a
loss-only baseline, with calibration, saved and loaded as data."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from explorer.hypotheses import (
    MIN_HELD_OUT_RUNS,
    HypothesisStore,
    Prediction,
    claim_from_dict,
    rerun_project,
    split_runs,
)
from explorer.hypotheses.predictors import fit_predictor


def planted_runs(n: int = 60, *, signal_in: str = "internal", seed: int = 0) -> pd.DataFrame:
    """Runs whose outcome follows a hidden cause: ``signal_in`` carries it (with a little
    noise); the others are pure noise."""
    g = torch.Generator().manual_seed(seed)
    cause = torch.rand(n, generator=g)
    groks = (cause > 0.5).long()
    noise = lambda: torch.rand(n, generator=g)
    columns = {
        "internal": noise(),
        "train_loss": noise(),
        "test_loss": noise(),
        "weight_decay": torch.tensor([0.1, 0.3, 1.0, 3.0]).repeat(n // 4 + 1)[:n],
    }
    columns[signal_in] = cause + 0.05 * noise()
    frame = pd.DataFrame({k: v.numpy() for k, v in columns.items()})
    frame["groks"] = groks.numpy()
    frame.index = [f"run{i}" for i in range(n)]
    return frame


def halves(frame: pd.DataFrame, seed: int = 0) -> dict:
    formation, held_out = split_runs(frame.index, seed=seed)
    return {"formation": formation, "held_out": held_out}


def test_an_internal_measure_that_carries_the_signal_beats_the_loss_only_baseline():
    runs = planted_runs()
    p = Prediction(claim="the internal measure says which runs grok", outcome="groks",
                   features=("internal",), **halves(runs))  # fmt: skip
    result = p.test(runs)
    v = result.verdict
    assert v.status == "supported" and result.beats_baseline
    assert v.ci_low > 0  # the paired interval of the Brier gain clears the margin
    assert v.details["accuracy"] >= 0.9 > v.details["baseline_accuracy"]
    assert v.details["brier"] < v.details["baseline_brier"]
    assert v.baseline_source.startswith("the same logistic predictor given train_loss, test_loss")
    assert "beat train_loss, test_loss" in result.headline()
    # the threshold rule finds it too, and states its cutoff
    rule = p.replace(predictor="threshold", score="accuracy").test(runs)
    assert rule.verdict.status == "supported"
    assert rule.fitted.startswith("internal >= ")


def test_when_the_loss_carries_the_signal_the_internals_do_not_beat_it():
    runs = planted_runs(signal_in="test_loss")
    p = Prediction(claim="internals predict grokking", outcome="groks", features=("internal",),
                   **halves(runs))  # fmt: skip
    result = p.test(runs)
    assert result.verdict.status == "refuted" and not result.beats_baseline
    assert "do not beat" in result.headline()


def test_features_equal_to_the_baseline_never_beat_it():
    runs = planted_runs(signal_in="test_loss")
    runs["copy"] = runs["test_loss"]
    runs["copy_train"] = runs["train_loss"]
    for score in ("brier", "accuracy"):
        p = Prediction(claim="a copy of the losses", outcome="groks", score=score,
                       features=("copy_train", "copy"), **halves(runs))  # fmt: skip
        v = p.test(runs).verdict
        assert v.value == 0.0 and v.ci_low == v.ci_high == 0.0  # the same predictions
        assert v.status != "supported"
        # a stated margin above zero: the same predictions are refuted
        assert p.replace(margin=0.01).test(runs).verdict.status == "refuted"


def test_too_few_held_out_runs_are_inconclusive_and_say_how_many_are_needed():
    runs = planted_runs(24)
    names = list(runs.index)
    p = Prediction(claim="internals predict grokking", outcome="groks", features=("internal",),
                   formation=names[:18], held_out=names[18:])  # fmt: skip
    v = p.test(runs).verdict
    assert v.status == "inconclusive"
    assert f"6 held-out runs; a verdict needs >= {MIN_HELD_OUT_RUNS} (4 more)" in v.note
    # enough runs, but one outcome only among them: still too few to decide
    runs.loc[names[6:], "groks"] = 1
    v = p.replace(formation=names[:6], held_out=names[6:]).test(runs).verdict
    assert v.status == "inconclusive" and "0 held-out runs with outcome no" in v.note
    # the formation runs all alike: nothing to learn from
    runs.loc[names, "groks"] = 1
    runs.loc[names[20:], "groks"] = 0
    runs = pd.concat([runs, planted_runs(24, seed=3).rename(lambda n: "x" + n)])
    held = [n for n in runs.index if n.startswith("x")]
    v = p.replace(formation=names[:18], held_out=held).test(runs).verdict
    assert v.status == "inconclusive" and "every formation run has outcome yes" in v.note


def test_a_settings_rule_against_the_base_rate():
    runs = planted_runs(signal_in="weight_decay")  # weight_decay + noise: the cause
    runs["weight_decay"] = runs["weight_decay"].round(1)
    p = Prediction(claim="runs with enough weight decay grok", outcome="groks",
                   features=("weight_decay",), baseline_features=(), predictor="threshold",
                   **halves(runs))  # fmt: skip
    result = p.test(runs)
    assert result.fitted.startswith("weight_decay >= 0.")
    assert result.baseline_fitted.startswith("the base rate")
    assert result.verdict.status == "supported"
    assert "the base rate" in result.headline()


def test_calibration_bins_predictions_against_outcomes_for_both_predictors():
    runs = planted_runs()
    result = Prediction(claim="c", outcome="groks", features=("internal",), **halves(runs)).test(
        runs
    )
    cal = result.calibration.to_dataframe()
    assert set(cal.predictor) == {"features", "baseline"}
    for _, group in cal.groupby("predictor"):
        assert group.runs.sum() == len(result.runs)
        assert (
            (group.mean_predicted >= group.bin_low) & (group.mean_predicted <= group.bin_high)
        ).all()
    # observed frequency per bin, recomputed from the per-run table
    per_run = result.to_dataframe()
    assert len(per_run) == 2 * len(result.runs)
    feats = per_run[per_run.predictor == "features"]
    first = cal[cal.predictor == "features"].iloc[0]
    inside = feats[(feats.probability >= first.bin_low) & (feats.probability < first.bin_high)]
    assert math.isclose(inside.outcome.mean(), first.observed)
    mine = cal[cal.predictor == "features"]
    gap = (mine.runs * (mine.mean_predicted - mine.observed).abs()).sum() / mine.runs.sum()
    assert math.isclose(result.calibration.error("features"), gap)
    fig = result.calibration.figure()
    assert [t.name.split(" (")[0] for t in fig.data] == ["calibrated", "features", "baseline"]
    assert "ECE" in repr(result.calibration) and len(repr(result)) <= 300


def test_a_prediction_and_its_verdict_round_trip_through_the_store(tmp_path):
    runs = planted_runs()
    p = Prediction(claim="internals predict grokking", outcome="groks", features=("internal",),
                   step=200, by=600, dataset="planted", **halves(runs))  # fmt: skip
    verdict = p.test(runs).verdict
    store = HypothesisStore(tmp_path / "store.db")
    store.save(p, author="ada")
    store.record(verdict)
    again = HypothesisStore(tmp_path / "store.db").get(p.id)
    assert isinstance(again.hypothesis, Prediction)
    assert again.hypothesis == p and again.hypothesis.to_dict() == p.to_dict()
    assert again.verdicts[0].to_dict() == verdict.to_dict() and again.status == "supported"
    assert again.hypothesis.test(runs).verdict.value == verdict.value  # re-runnable from data
    # the spec is plain JSON data, no code
    spec = json.loads(p.to_json())
    assert spec["kind"] == "prediction" and spec["features"] == ["internal"]
    assert claim_from_dict(spec) == p
    # a judged prediction is never changed in place: an edit is a new version
    with pytest.raises(ValueError, match="new version"):
        store.save(Prediction.from_dict({**p.to_dict(), "margin": 0.05}))
    edited = p.replace(margin=0.05)
    assert edited.parent_id == p.id
    store.save(edited)
    assert [s.hypothesis.id for s in store.hypotheses()] == [p.id, edited.id]
    # re-running a project on a model skips predictions, saying why
    reasons = rerun_project(store, "default", None, None)
    assert reasons[p.id].startswith("a prediction is judged on runs")


def test_bad_inputs_get_sentences():
    runs = planted_runs(20)
    names = list(runs.index)
    ok = dict(claim="c", outcome="groks", features=("internal",), formation=names[:10],
              held_out=names[10:])  # fmt: skip
    with pytest.raises(ValueError, match="must be disjoint"):
        Prediction(**{**ok, "held_out": names[5:]})
    with pytest.raises(ValueError, match="at least one feature"):
        Prediction(**{**ok, "features": ()})
    with pytest.raises(ValueError, match="cannot be one of the features"):
        Prediction(**{**ok, "features": ("groks",)})
    with pytest.raises(ValueError, match="predictor must be one of|choose one of|logistic"):
        Prediction(**{**ok, "predictor": "forest"})
    with pytest.raises(KeyError, match="lacks columns \\['nope'\\]"):
        Prediction(**{**ok, "features": ("nope",)}).test(runs)
    with pytest.raises(KeyError, match="2 held_out runs are not in the table"):
        Prediction(**{**ok, "held_out": (*names[10:], "ghost", "ghost2")}).test(runs)
    bad = runs.copy()
    bad["groks"] = 0.5
    with pytest.raises(ValueError, match="must be yes/no"):
        Prediction(**ok).test(bad)
    bad = runs.copy()
    bad.loc[names[0], "internal"] = float("nan")
    with pytest.raises(ValueError, match="run 'run0' has no finite value of 'internal'"):
        Prediction(**ok).test(bad)
    with pytest.raises(TypeError, match="runs must be a table"):
        Prediction(**ok).test([1, 2])
    with pytest.raises(ValueError, match="not a prediction record"):
        Prediction.from_dict({"claim": "c"})


def test_the_logistic_fit_is_deterministic_and_finite_on_separable_runs():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    y = torch.tensor([0, 0, 1, 1])
    a = fit_predictor("logistic", x, y, ("f",))
    assert a == fit_predictor("logistic", x, y, ("f",))
    assert all(math.isfinite(w) for w in a.weights)  # the penalty keeps separable data finite
    probs = a.probabilities(x)
    assert probs[0] < 0.5 < probs[3]


def test_a_project_with_a_prediction_exports_and_imports(tmp_path):
    from explorer.hypotheses import from_json, to_json, to_markdown

    runs = planted_runs()
    p = Prediction(claim="internals predict grokking", outcome="groks", features=("internal",),
                   **halves(runs))  # fmt: skip
    store = HypothesisStore(tmp_path / "a.db")
    store.save(p)
    store.record(p.test(runs).verdict)
    text = to_markdown(store)
    assert "internals predict grokking" in text and "30 held-out runs" in text
    other = HypothesisStore(tmp_path / "b.db")
    report = from_json(to_json(store), other)
    assert report.added == (p.id,)
    again = other.get(p.id)
    assert again.hypothesis == p and again.status == "supported"
