"""A held-out split too small to decide is inconclusive and names the count it needed.

The stdlib-LM tutorial's neuron 0.155 claim was "supported, 1.00 [1.00, 1.00]" on 3 concept
windows out of 200; a concept statistic (AUROC, precision, recall) now needs >= 10 concept
and >= 10 other held-out examples (``bootstrap.MIN_PER_CLASS``, justified there)."""

from __future__ import annotations

import pytest
import torch

from explorer.hypotheses import (
    MIN_PER_CLASS,
    HypothesisStore,
    NeuronSelectivity,
    Split,
    planted,
    rerun_project,
)
from explorer.hypotheses.bootstrap import Evidence, resample_weights


@pytest.fixture(scope="module")
def concept_data():
    return planted.concept_examples(700, seed=3)


@pytest.fixture
def make_hypothesis(make_hypothesis):
    return lambda **changes: make_hypothesis(formation=Split(range(100)), **changes)


def _split_with(concept_data, n_pos, n=200):
    """Held-out indices (after the formation's 100) holding exactly ``n_pos`` concept examples."""
    concept = concept_data.concept
    pos = [i for i in range(100, len(concept)) if concept[i]][:n_pos]
    neg = [i for i in range(100, len(concept)) if not concept[i]][: n - n_pos]
    assert len(pos) == n_pos and len(neg) == n - n_pos
    return Split(sorted(pos + neg), name="held-out")


@pytest.mark.parametrize("score", ["auroc", "precision", "recall"])
def test_three_positives_out_of_200_is_inconclusive_and_says_what_it_needed(
    concept_model, concept_data, make_hypothesis, score
):
    held = _split_with(concept_data, 3, n=200)
    h = make_hypothesis(measure=NeuronSelectivity(score), held_out=held)
    verdict = h.test(concept_model, concept_data)
    assert verdict.status == "inconclusive", verdict.summary()  # was "supported, 1.00 [1.00, 1.00]"
    assert "3 concept and 197 other examples" in verdict.note
    assert f"needs >= {MIN_PER_CLASS} of each (7 more concept examples)" in verdict.note
    assert verdict.note in verdict.summary() and verdict.baseline_n_sets == 0  # no passes spent
    assert verdict.recordable  # a value was measured: the store keeps it, as inconclusive


def test_no_positive_at_all_is_inconclusive_not_an_error(
    concept_model, concept_data, make_hypothesis
):
    h = make_hypothesis(held_out=_split_with(concept_data, 0, n=50))
    verdict = h.test(concept_model, concept_data)
    assert verdict.status == "inconclusive" and "0 concept and 50 other" in verdict.note
    assert "10 more concept examples" in verdict.note and not verdict.recordable


def test_ten_of_each_is_enough_to_decide(concept_model, concept_data, make_hypothesis):
    verdict = make_hypothesis(held_out=_split_with(concept_data, 10, n=20)).test(
        concept_model, concept_data
    )
    assert verdict.status == "supported", verdict.summary()
    assert (
        make_hypothesis(held_out=_split_with(concept_data, 9, n=20))
        .test(concept_model, concept_data)
        .status
        == "inconclusive"
    )


def test_the_bootstrap_is_stratified_every_resample_keeps_the_class_counts():
    positives = torch.arange(200) < 12
    ev = Evidence(
        torch.rand(200, generator=torch.Generator().manual_seed(0)), "auroc", positives=positives
    )
    weights = resample_weights(ev, 300, seed=1)
    assert torch.all(weights[:, positives].sum(1) == 12)
    assert torch.all(weights[:, ~positives].sum(1) == 188)


def test_small_splits_are_recorded_as_inconclusive_and_empty_ones_not_at_all(
    concept_model, concept_data, make_hypothesis
):
    store = HypothesisStore(":memory:")
    few = make_hypothesis(held_out=_split_with(concept_data, 3, n=200))
    none = make_hypothesis(held_out=_split_with(concept_data, 0, n=50))
    store.save(few)
    store.save(none)
    store.record(few.test(concept_model, concept_data))
    assert store.get(few.id).status == "inconclusive"
    with pytest.raises(ValueError, match="not recorded: too few to decide"):
        store.record(none.test(concept_model, concept_data))
    outcome = rerun_project(store, "default", concept_model, concept_data)
    assert outcome[few.id].status == "inconclusive"
    assert "10 more concept examples" in outcome[none.id] and store.count("verdicts") == 2


def test_precision_needs_ten_examples_that_fire(concept_model, concept_data, make_hypothesis):
    """Precision is a rate among the examples that fire: 3 firings decide nothing either."""
    held = _split_with(concept_data, 30, n=200)
    acts = (
        NeuronSelectivity("precision")
        .evaluate(concept_model, concept_data.subset(held), make_hypothesis().units)
        .values
    )
    high = float(acts.sort(descending=True).values[3])  # only the top 3 fire above it
    h = make_hypothesis(measure=NeuronSelectivity("precision", fire_threshold=high), held_out=held)
    verdict = h.test(concept_model, concept_data)
    assert verdict.status == "inconclusive" and "3 held-out examples fire" in verdict.note
    assert "precision needs >= 10 (7 more)" in verdict.note
