"""A hypothesis about inputs, with no unit: "stamping this patch sends >= 90% of digits to
class T", judged on held-out digits of a model with a planted trigger (studies.auditing),
against the same stamp moved elsewhere, and stored as data (two arrays, no code)."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.hypotheses import Examples, Hypothesis, InputStamp, NeuronSelectivity, Split
from explorer.studies.auditing import add_trigger, plant
from explorer.studies.kitchen_sink import kitchen_sink_split


@pytest.fixture(scope="module")
def planted():
    return plant(22, data=kitchen_sink_split())  # a blended 4x4 trigger at (21, 19) -> 2


@pytest.fixture(scope="module")
def examples(planted):
    return Examples(inputs=planted.test_x[:400], labels=planted.test_y[:400])


def _claim(trigger, target=None, **kw):
    mask, pattern = trigger.mask_and_pattern()
    target = trigger.target if target is None else target
    return Hypothesis(
        claim=f"stamping the trigger sends >= 90% of digits to class {target}",
        measure=InputStamp(mask, pattern, target),
        threshold=0.9,
        formation=Split(range(100)),
        held_out=Split(range(100, 400)),
        **kw,
    )


def test_the_planted_trigger_is_supported_and_its_baseline_is_far_below(planted, examples):
    trigger = planted.trigger
    h = _claim(trigger)
    assert h.units == ()
    verdict = h.test(planted.model, examples)
    assert verdict.status == "supported", verdict
    assert verdict.ci_low > 0.9
    assert verdict.measure == "share of inputs sent to class 2 by a 4x4 stamp at (21, 19)"
    # the same stamp at 20 other places barely moves the digits: the location is the trigger
    assert verdict.baseline_source == "20 placements of the same stamp elsewhere"
    assert len(verdict.baseline_values) == verdict.baseline_n_sets == 20
    assert verdict.baseline < 0.3 and verdict.ci_low > verdict.baseline_p95
    # the measure is the success rate on digits of other classes, computed independently
    held = examples.inputs[100:400][examples.labels[100:400] != trigger.target]
    with torch.no_grad():
        rate = planted.model(add_trigger(held, trigger)).argmax(-1) == trigger.target
    assert verdict.value == pytest.approx(float(rate.double().mean()))
    assert verdict.details["scored_inputs"] == len(held)


def test_a_wrong_target_is_refuted(planted, examples):
    wrong = (planted.trigger.target + 1) % 10
    assert _claim(planted.trigger, target=wrong).test(planted.model, examples).status == "refuted"


def test_the_stored_hypothesis_is_data_and_tests_the_same(planted, examples):
    h = _claim(planted.trigger)
    text = h.to_json()
    record = json.loads(text)
    assert record["units"] == [] and record["measure"]["kind"] == "input_transform"
    assert sorted(record["measure"]) == ["kind", "mask", "pattern", "score", "target"]
    assert all(isinstance(v, float) for row in record["measure"]["mask"] for v in row)
    back = Hypothesis.from_json(text)
    assert back.measure == h.measure
    again = back.test(planted.model, examples)
    assert again.value == h.test(planted.model, examples).value


def test_probability_score_and_unit_rules(planted, examples):
    mask, pattern = planted.trigger.mask_and_pattern()
    prob = InputStamp(mask, pattern, planted.trigger.target, score="probability")
    values = prob.evaluate(planted.model, examples).values
    assert values.min() >= 0 and values.max() <= 1 and values.mean() > 0.8
    with pytest.raises(ValueError, match="is a claim about inputs: give no units"):
        _claim(planted.trigger, units="neuron 0.3")
    with pytest.raises(ValueError, match="needs at least one target unit"):
        Hypothesis(
            claim="c",
            measure=NeuronSelectivity(),
            threshold=0.5,
            formation=Split(range(10)),
            held_out=Split(range(10, 20)),
        )
    with pytest.raises(ValueError, match="mask values must lie in 0..1"):
        InputStamp(mask * 2, pattern, 2)
    with pytest.raises(ValueError, match=r"pattern must be \[C, H, W\]"):
        InputStamp(mask, torch.ones(1, 5, 5), 2)


def test_a_function_of_the_model_alone_needs_a_given_baseline(planted, examples):
    """With nothing random to compare with, a claim is not supported until given a baseline."""

    def accuracy(model, ex, units):
        with torch.no_grad():
            return (model(ex.inputs).argmax(-1) == ex.labels).double()

    common = dict(
        claim="the model is accurate on clean digits",
        measure=accuracy,
        threshold=0.8,
        formation=Split(range(100)),
        held_out=Split(range(100, 400)),
    )
    verdict = Hypothesis(**common).test(planted.model, examples)
    assert verdict.ci_low > 0.8  # above the threshold, yet
    assert verdict.status == "inconclusive" and verdict.baseline is None
    assert "give baseline=" in verdict.baseline_source and "no baseline" in verdict.note
    given = Hypothesis(**common, baseline=0.1).test(planted.model, examples)
    assert (given.status, given.baseline, given.baseline_p95) == ("supported", 0.1, 0.1)
    assert "> the baseline 0.1 (given)" in given.summary()
