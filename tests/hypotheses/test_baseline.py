"""The random baseline: a verdict is supported only above the threshold *and* above the 95th
percentile of >= 20 random unit sets of the claim's size and kind."""

from __future__ import annotations

import pytest
import torch

import explorer
from explorer.analysis.units import Head
from explorer.hypotheses import (
    MIN_BASELINE_SETS,
    AblationEffect,
    Hypothesis,
    Split,
    UserFunction,
)
from explorer.hypotheses.planted import PREVIOUS_TOKEN_HEAD

LAYER_1 = ["head 1.0", "head 1.1", "head 1.2", "head 1.3"]


@pytest.fixture(scope="module")
def quickstart():
    from explorer.data import repeated_tokens

    model = explorer.load("shipped:quickstart-induction")
    return model, repeated_tokens(64, half_len=20, d_vocab=64, seed=2)


def _together(**changes):
    fields = dict(
        claim="the layer-1 induction heads together carry the copying",
        units=LAYER_1,
        measure=AblationEffect(metric="repeated_half_loss", ablation="mean"),
        threshold=1.0,
        formation=Split(range(32)),
        held_out=Split(range(32, 64)),
    )
    return Hypothesis(**{**fields, **changes})


def test_a_claim_above_its_threshold_but_not_above_random_sets_is_not_supported(quickstart):
    """The quickstart's case: four layer-1 heads ablated together cost > 1 nat, but so do
    random sets of four heads (those holding head 0.1, the previous-token head)."""
    model, tokens = quickstart
    verdict = _together().test(model, tokens)
    assert verdict.ci_low > verdict.threshold  # the old rule said "supported"
    assert verdict.baseline_n_sets >= MIN_BASELINE_SETS
    assert verdict.ci_low <= verdict.baseline_p95
    assert verdict.status == "inconclusive" and verdict.beats_baseline is False
    assert "random units do as well" in verdict.note
    assert "95th pct of 20 random head sets" in verdict.summary()


def test_the_baseline_has_20_distinct_sets_of_the_claims_size_and_kind(quickstart):
    model, tokens = quickstart
    verdict = _together().test(model, tokens)
    sets = [frozenset(s) for s in verdict.baseline_units]
    assert len(sets) == len(set(sets)) == len(verdict.baseline_values) == 20
    assert all(len(s) == 4 and all(u.startswith("head ") for u in s) for s in sets)
    assert frozenset(LAYER_1) not in sets
    # drawn from every eligible head, not only from the claim's layer
    assert any(u.startswith("head 0.") for s in sets for u in s)
    expected = float(
        torch.quantile(torch.tensor(verdict.baseline_values, dtype=torch.float64), 0.95)
    )
    assert verdict.baseline_p95 == pytest.approx(expected)
    assert verdict.baseline == pytest.approx(sum(verdict.baseline_values) / 20)


def test_head_0_1_beats_every_other_head(quickstart):
    """Where fewer than 20 sets exist (one head of eight), all are used, and said so."""
    model, tokens = quickstart
    verdict = _together(claim="head 0.1 is the bottleneck", units="head 0.1").test(model, tokens)
    assert verdict.status == "supported", verdict
    assert verdict.baseline_n_sets == 7 and "all 7 other head sets" in verdict.summary()
    assert {s for (s,) in verdict.baseline_units} == {
        f"head {layer}.{h}" for layer in range(2) for h in range(4)
    } - {"head 0.1"}


def test_a_measure_every_unit_passes_is_not_supported(prev_model, prev_data):
    """Any head scores 1.0 on this measure: above the threshold, but no better than random."""
    h = Hypothesis(
        claim=f"head {PREVIOUS_TOKEN_HEAD[0]}.{PREVIOUS_TOKEN_HEAD[1]} is special",
        units=[Head(*PREVIOUS_TOKEN_HEAD), Head(0, 2)],
        measure=UserFunction.of(lambda model, examples, units: torch.ones(len(examples))),
        threshold=0.5,
        formation=Split(range(80)),
        held_out=Split(range(80, 160)),
    )
    verdict = h.test(prev_model, prev_data)
    assert (verdict.ci_low, verdict.baseline_p95) == (1.0, 1.0)
    assert verdict.status == "inconclusive"


def test_n_baseline_below_20_is_refused_and_old_records_are_raised_to_20(make_hypothesis):
    with pytest.raises(ValueError, match=r"n_baseline must be an integer >= 20"):
        make_hypothesis(n_baseline=8)
    old = make_hypothesis().to_dict()
    old.update(version="1.2", n_baseline=8)
    old.pop("parent_id", None)
    assert Hypothesis.from_dict(old).n_baseline == 20
