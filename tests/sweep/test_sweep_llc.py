"""The local learning coefficient as an opt-in sweep measure (``explorer.sweep.learning_coefficient``)."""

from __future__ import annotations

import math

import pytest

from explorer.models.learning_coefficient import learning_coefficient
from explorer.sweep import STUDIES, LLCSampler, read_learning_coefficients, sweep
from explorer.sweep.learning_coefficient import spread

BASE = {"p": 5, "steps": 20, "d_model": 8, "eval_every": 5}
SAMPLER = LLCSampler(draws=6, batch_size=8, init_batches=2)


def _sweep(folder, **kwargs):
    return sweep(
        "grokking", {"weight_decay": [1.0]}, folder=folder, base=BASE, executor="serial",
        progress=False, **kwargs,
    )  # fmt: skip


def test_the_llc_is_measured_at_the_stated_checkpoints_and_timed_apart(tmp_path):
    with_llc = _sweep(tmp_path / "llc", llc=SAMPLER, llc_checkpoints=3)
    without = _sweep(tmp_path / "plain")
    name = "weight_decay=1"
    run = with_llc.run(name)
    rows = read_learning_coefficients(run)
    assert [r["step"] for r in rows] == spread(run.steps, 3)
    assert rows[0]["step"] == run.steps[0] and rows[-1]["step"] == run.steps[-1]
    assert all(math.isfinite(r["llc"]) for r in rows)
    assert rows[0]["sampler"]["draws"] == 6
    # the number equals the estimator called on that checkpoint with the study's examples
    inputs, labels = STUDIES["grokking"].llc_data(with_llc.settings(name))
    direct = learning_coefficient(run.load_model(rows[-1]["step"]), inputs, labels=labels,
                                  sampler=SAMPLER)  # fmt: skip
    assert rows[-1]["llc"] == direct.mean
    # reported on its own, never inside the other measures' time
    table = with_llc.outcomes()
    assert table.loc[name, "llc_seconds"] > 0
    assert table.loc[name, "final_llc"] == rows[-1]["llc"]
    assert without.outcomes().loc[name, "llc_seconds"] is None
    curves = with_llc.to_dataframe()
    llc = curves[curves.measure == "llc"]
    assert list(llc.step) == [r["step"] for r in rows]
    # opt-in: the run without it trained to the same weights, and has no llc file
    assert read_learning_coefficients(without.run(name)) == []
    plain = without.run(name)
    for step in run.steps:
        a = (run.checkpoint_path(step) / "model.safetensors").read_bytes()
        assert a == (plain.checkpoint_path(step) / "model.safetensors").read_bytes()


def test_the_induction_study_gives_its_examples():
    inputs, labels = STUDIES["induction"].llc_data(dict(STUDIES["induction"].defaults))
    again, _ = STUDIES["induction"].llc_data(dict(STUDIES["induction"].defaults))
    assert labels is None and inputs.shape[0] == 64 and bool((inputs == again).all())


def test_bad_llc_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="llc must be an LLCSampler"):
        _sweep(tmp_path / "a", llc={"draws": 3})
    with pytest.raises(ValueError, match="llc_checkpoints must be a whole number >= 1"):
        _sweep(tmp_path / "b", llc=SAMPLER, llc_checkpoints=0)


def test_spread_keeps_the_ends():
    assert spread((0, 5, 10), 8) == [0, 5, 10]
    assert spread((0, 5, 10, 15, 20), 2) == [0, 20]
    assert spread((0, 5, 10), 1) == [10]
