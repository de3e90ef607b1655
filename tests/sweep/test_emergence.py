"""Emergence with scale (``explorer.sweep.emergence``): planted curves are found, with noise,
on sizes held out; loss and accuracy side by side (Schaeffer et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.sweep import emergence, sweep

SIZES = [2**k for k in range(2, 11)]  # 9 sizes, 4 .. 1024


def _table(curve, *, seeds=3, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    rows = {"size": [], "y": []}
    for s in SIZES:
        for _ in range(seeds):
            rows["size"].append(s)
            rows["y"].append(curve(s) + rng.normal(0, noise))
    return rows


def _sigmoid(s):
    return 0.1 + 0.8 / (1 + math.exp(-(math.log(s) - math.log(64)) / 0.3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_sigmoid_is_chosen_as_a_sigmoid(seed):
    e = emergence(_table(_sigmoid, seed=seed), size="size", outcome="y")
    assert e.chosen == {"y": "sigmoid"}
    assert 64 / 1.5 < e.midpoint("y") < 64 * 1.5
    # a step: 10%-90% within 0.6 decades (planted: 2 ln 9 x 0.3 / ln 10 = 0.57)
    assert e.width_decades["y"] == pytest.approx(2 * math.log(9) * 0.3 / math.log(10), rel=0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_power_law_is_chosen_as_a_power_law(seed):
    table = _table(lambda s: 5 * s**-0.5, noise=0.01, seed=seed)
    e = emergence(table, size="size", outcome="y")
    assert e.chosen == {"y": "power_law"}
    a, b = e.fits["y"]["power_law"]["params"]
    assert b == pytest.approx(-0.5, abs=0.05) and a == pytest.approx(5, rel=0.15)


def test_a_planted_line_in_log_size_is_chosen_as_linear():
    e = emergence(_table(lambda s: 0.2 + 0.1 * math.log(s)), size="size", outcome="y")
    assert e.chosen == {"y": "linear"}
    assert e.largest_jump["y"] < 0.3  # no step: about one eighth of the change per doubling


def test_loss_and_exact_match_of_the_same_runs_side_by_side():
    """Schaeffer et al.: per-token loss falls smoothly (a power law in size); exact match of
    10 tokens, ``exp(-10 loss)``, of the same runs looks like a step."""
    rng = np.random.default_rng(0)
    sizes = [2**k for k in range(2, 13)]
    loss = [2 * s**-0.5 * math.exp(rng.normal(0, 0.02)) for s in sizes]
    table = {"size": sizes, "loss": loss, "exact_match": [math.exp(-10 * v) for v in loss]}
    e = emergence(table, size="size", outcome=("loss", "exact_match"))
    assert e.chosen == {"loss": "power_law", "exact_match": "sigmoid"}
    # the same runs, a deterministic function of the same loss: only the metric differs
    assert (
        e.fits["exact_match"]["power_law"]["cv_error"]
        > e.fits["exact_match"]["sigmoid"]["cv_error"]
    )
    frame = e.to_dataframe()
    assert list(frame.columns[:3]) == ["outcome", "curve", "cv_error"]
    assert len(frame) == 6 and frame.chosen.sum() == 2
    assert "loss: power_law" in repr(e) and "exact_match: sigmoid" in repr(e)


def test_too_few_sizes_and_bad_columns_are_refused():
    few = {"size": [1, 2, 4, 8], "y": [0.1, 0.2, 0.3, 0.4]}
    with pytest.raises(ValueError, match="at least 5 distinct sizes"):
        emergence(few, size="size", outcome="y")
    with pytest.raises(ValueError, match=r"no columns \['acc'\]"):
        emergence(few, size="size", outcome="acc")
    with pytest.raises(ValueError, match="must be a number > 0"):
        emergence({"size": [0, 1, 2, 3, 4], "y": [1] * 5}, size="size", outcome="y")
    with pytest.raises(ValueError, match="must hold numbers"):
        emergence({"size": [1, 2, 3, 4, 5], "y": ["a"] * 5}, size="size", outcome="y")


def test_a_real_size_sweep_reads_outcomes_and_logged_measures(tmp_path):
    s = sweep(
        "grokking", {"d_model": [4, 8, 12, 16, 20]}, folder=tmp_path / "sizes",
        base={"p": 5, "steps": 10, "eval_every": 5}, executor="serial", progress=False,
    )  # fmt: skip
    e = emergence(s, size="d_model", outcome=("test_loss", "final_test_acc"))
    outcomes = s.outcomes()
    curves = s.to_dataframe()
    last_loss = (
        curves[curves.measure == "test_loss"].sort_values("step").groupby("run").value.last()
    )
    by_hand = emergence(
        {"d_model": outcomes.d_model.tolist(), "test_loss": last_loss[outcomes.index].tolist(),
         "final_test_acc": outcomes.final_test_acc.tolist()},
        size="d_model", outcome=("test_loss", "final_test_acc"),
    )  # fmt: skip
    assert e.sizes == (4, 8, 12, 16, 20)
    assert e.chosen == by_hand.chosen
    assert (
        e.fits["test_loss"]["linear"]["cv_error"] == by_hand.fits["test_loss"]["linear"]["cv_error"]
    )
    with pytest.raises(ValueError, match="nor a measure it logged"):
        emergence(s, size="d_model", outcome="exact_match")
