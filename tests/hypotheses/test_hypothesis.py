"""Done-when: true planted hypotheses are supported and false ones refuted on held-out data."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.hypotheses import (
    AblationEffect,
    HeadScore,
    Hypothesis,
    NeuronSelectivity,
    PatchingRecovery,
    Split,
    UserFunction,
    random_unit_sets,
    register_measure,
    unregister_measure,
)
from explorer.hypotheses.planted import CONCEPT_NEURON, PREVIOUS_TOKEN_HEAD

FORMATION, HELD_OUT = Split(range(80), name="formation"), Split(range(80, 160), name="held-out")
TRUE_HEAD, FALSE_HEAD = f"head {PREVIOUS_TOKEN_HEAD[0]}.{PREVIOUS_TOKEN_HEAD[1]}", "head 0.2"
TRUE_NEURON, FALSE_NEURON = f"neuron {CONCEPT_NEURON[0]}.{CONCEPT_NEURON[1]}", "neuron 0.5"


def mean_activation_gap(model, examples, units):
    """A user test: each example's activation, signed by whether it shows the concept."""
    _, cache = model.cache_pass(examples.inputs, names=[units[0].hook(model)])
    act = cache[units[0].hook(model)][:, units[0].neuron]
    return torch.where(examples.concept, act, -act)


HEAD_CLAIMS = [
    (HeadScore("previous_token"), 0.4, "above"),
    (AblationEffect("accuracy", ablation="zero"), -0.5, "below"),
    (AblationEffect("neg_cross_entropy", ablation="resample"), -2.0, "below"),
    (PatchingRecovery("logit_diff"), 0.8, "above"),
]


@pytest.mark.parametrize(("measure", "threshold", "direction"), HEAD_CLAIMS)
def test_planted_previous_token_head_supported_and_another_head_refuted(
    prev_model, prev_data, measure, threshold, direction
):
    def verdict(unit):
        h = Hypothesis(
            claim=f"{unit} moves the previous token forward",
            units=unit,
            measure=measure,
            threshold=threshold,
            direction=direction,
            formation=FORMATION,
            held_out=HELD_OUT,
            n_boot=500,
        )
        return h.test(prev_model, prev_data)

    true, false = verdict(TRUE_HEAD), verdict(FALSE_HEAD)
    assert true.status == "supported", true.summary()
    assert false.status == "refuted", false.summary()
    assert true.n_examples == false.n_examples == len(HELD_OUT)
    assert true.ci_low <= true.value <= true.ci_high
    assert true.beats_baseline is True  # random heads do not do what head 0.0 does


@pytest.mark.parametrize("score", ["auroc", "precision", "recall"])
def test_planted_concept_neuron_supported_and_a_random_neuron_refuted(
    concept_model, concept_data, make_hypothesis, score
):
    true = make_hypothesis(measure=NeuronSelectivity(score)).test(concept_model, concept_data)
    false = make_hypothesis(units=FALSE_NEURON, measure=NeuronSelectivity(score)).test(
        concept_model, concept_data
    )
    assert (true.status, false.status) == ("supported", "refuted")
    assert true.value == pytest.approx(1.0)
    assert true.details["concept_mean"] > 2.5 and true.details["other_mean"] == 0.0


def test_a_claim_at_the_edge_of_the_evidence_is_inconclusive(
    concept_model, concept_data, make_hypothesis
):
    probe = make_hypothesis(units=FALSE_NEURON).test(concept_model, concept_data)
    edge = make_hypothesis(units=FALSE_NEURON, threshold=probe.value)
    verdict = edge.test(concept_model, concept_data)
    assert verdict.ci_low < verdict.threshold < verdict.ci_high
    assert verdict.status == "inconclusive"


def test_verdict_records_model_split_baseline_and_time(
    concept_model, concept_data, make_hypothesis
):
    h = make_hypothesis()
    v = h.test(concept_model, concept_data)
    assert v.hypothesis_id == h.id and v.claim == h.claim
    assert v.model_fingerprint == concept_model.fingerprint() and v.model_name == concept_model.name
    assert v.split == "held-out: 200 examples (indices 200..399)"
    # the planted MLP has 16 hidden neurons: fewer than 20 sets exist, so all 15 others
    assert len(v.baseline_units) == len(v.baseline_values) == v.baseline_n_sets == 15
    assert all(TRUE_NEURON not in units for units in v.baseline_units)
    assert "all 15 other neuron sets" in v.baseline_source
    assert v.baseline == pytest.approx(sum(v.baseline_values) / 15)
    assert v.baseline_p95 == pytest.approx(
        float(torch.quantile(torch.tensor(v.baseline_values, dtype=torch.float64), 0.95))
    )
    assert v.timestamp.endswith("+00:00")
    assert (
        make_hypothesis(baseline=0.5).test(concept_model, concept_data).baseline_source == "given"
    )
    again = h.test(concept_model, concept_data)
    assert (again.value, again.ci_low, again.ci_high) == (v.value, v.ci_low, v.ci_high)


def test_only_the_held_out_split_is_measured(concept_model, concept_data, make_hypothesis):
    # Break the concept labels on the formation split only: the verdict must not change.
    broken = concept_data.subset(Split(range(400)))
    concept = broken.concept.clone()
    concept[:200] = ~concept[:200]
    broken = type(broken)(inputs=broken.inputs, labels=broken.labels, concept=concept)
    h = make_hypothesis()
    assert h.test(concept_model, broken).value == h.test(concept_model, concept_data).value
    flipped = make_hypothesis(formation=Split(range(200, 400)), held_out=Split(range(200)))
    assert flipped.test(concept_model, broken).status == "refuted"


def test_bad_hypotheses_are_refused_with_clear_messages(
    concept_model, concept_data, make_hypothesis
):
    with pytest.raises(ValueError, match="neuron 0.99, which planted-concept-mlp lacks"):
        make_hypothesis(units="neuron 0.99").test(concept_model, concept_data)
    with pytest.raises(ValueError, match="neuron 3.0, which planted-concept-mlp lacks: layer 3"):
        make_hypothesis(units="neuron 3.0").check(concept_model)
    with pytest.raises(ValueError, match="overlaps the formation split in 1 examples"):
        make_hypothesis(formation=Split(range(201)))
    with pytest.raises(ValueError, match="is empty"):
        make_hypothesis(held_out=Split([]))
    with pytest.raises(ValueError, match="names example 400 but the data has 400"):
        make_hypothesis(held_out=Split(range(200, 401))).test(concept_model, concept_data)
    with pytest.raises(ValueError, match="claim in words"):
        make_hypothesis(claim="  ")
    with pytest.raises(ValueError, match="applies to neuron or feature units, not head 0.0"):
        make_hypothesis(units="head 0.0")
    with pytest.raises(ValueError, match="'above' or 'below'"):
        make_hypothesis(direction="over")
    with pytest.raises(ValueError, match="finite"):
        make_hypothesis(threshold=float("nan"))
    with pytest.raises(ValueError, match="repeat"):
        make_hypothesis(units=["neuron 0.3", "L0N3"])


def test_json_round_trip_and_rerun_on_a_new_checkpoint(prev_model, prev_data):
    h = Hypothesis(
        claim="head 0.0 is a previous-token head",
        units=TRUE_HEAD,
        measure=HeadScore("previous_token"),
        threshold=0.4,
        formation=FORMATION,
        held_out=HELD_OUT,
        n_boot=300,
    )
    reloaded = Hypothesis.from_json(json.dumps(json.loads(h.to_json())))
    assert reloaded == h and reloaded.rerunnable
    before = reloaded.test(prev_model, prev_data)

    checkpoint = prev_model.copy()  # "later in training": the positional query is gone
    with torch.no_grad():
        checkpoint.model.blocks[0].attn.W_Q[PREVIOUS_TOKEN_HEAD[1]].zero_()
    after = reloaded.test(checkpoint, prev_data)
    assert before.status == "supported" and after.status == "refuted"
    assert before.model_fingerprint != after.model_fingerprint


def test_user_measures_are_stored_by_name_and_found_in_this_sessions_registry(
    concept_model, concept_data, make_hypothesis
):
    named = make_hypothesis(measure=mean_activation_gap, threshold=0.5)
    assert isinstance(named.measure, UserFunction) and named.rerunnable
    stored = named.to_dict()["measure"]
    assert stored == {"kind": "user_function", "name": "mean_activation_gap", "statistic": "mean"}
    reloaded = Hypothesis.from_dict(named.to_dict())
    assert not reloaded.rerunnable  # a name, and nothing registered under it here
    verdict = reloaded.test(concept_model, concept_data)
    assert verdict.status == "unavailable"
    assert verdict.summary().startswith(
        "unavailable: measure 'mean_activation_gap' is not registered here"
    )
    register_measure("mean_activation_gap", mean_activation_gap)
    try:
        assert reloaded.rerunnable
        assert reloaded.test(concept_model, concept_data).status == "supported"
        by_name = make_hypothesis(measure="mean_activation_gap", threshold=0.5)
        assert by_name.test(concept_model, concept_data).status == "supported"
    finally:
        unregister_measure("mean_activation_gap")


def test_a_function_runs_in_its_session_and_can_be_rebound(
    concept_model, concept_data, make_hypothesis
):
    local = make_hypothesis(measure=lambda model, examples, units: examples.concept.double())
    assert local.rerunnable  # runs in this session
    assert local.test(concept_model, concept_data).value == pytest.approx(
        float(concept_data.concept[200:].double().mean())
    )
    stale = Hypothesis.from_dict(local.to_dict())
    assert not stale.rerunnable
    assert stale.test(concept_model, concept_data).status == "unavailable"
    rebound = stale.with_function(lambda model, examples, units: examples.concept.double())
    assert rebound.test(concept_model, concept_data).value == pytest.approx(
        local.test(concept_model, concept_data).value
    )
    wrong_shape = make_hypothesis(measure=lambda model, examples, units: torch.zeros(3))
    with pytest.raises(ValueError, match=r"one value per example \(shape \[200\]\)"):
        wrong_shape.test(concept_model, concept_data)


def test_random_unit_sets_are_distinct_same_size_and_kind_from_every_layer(
    prev_model, concept_model
):
    from explorer.analysis.units import Head, Neuron

    sets = random_unit_sets(concept_model, [Neuron(0, 3)], 10, seed=0)
    assert len(sets) == 10 and len({frozenset(s) for s in sets}) == 10
    assert all(len(s) == 1 and isinstance(s[0], Neuron) and s[0] != Neuron(0, 3) for s in sets)
    assert random_unit_sets(concept_model, [Neuron(0, 3)], 10, seed=0) == sets
    assert len(random_unit_sets(concept_model, [Neuron(0, 3)], 20, seed=0)) == 15  # all there are
    # two heads of a 4-head model: every other pair (5 exist), the claimed pair never
    heads = random_unit_sets(prev_model, [Head(0, 0), Head(0, 1)], 20, seed=0)
    assert len(heads) == 5 and all(len(s) == 2 and len(set(s)) == 2 for s in heads)
    assert frozenset([Head(0, 0), Head(0, 1)]) not in {frozenset(s) for s in heads}
    assert random_unit_sets(prev_model, [Head(0, h) for h in range(4)], 20) == ()
    as_text = random_unit_sets(prev_model, ["head 0.0", "L0H1"], 20, seed=0)  # text is read too
    assert {frozenset(s) for s in as_text} == {frozenset(s) for s in heads}
