"""A hypothesis records the forward passes spent on the model before it was written."""

from __future__ import annotations

import pytest
import torch

from explorer.hypotheses import Hypothesis, HypothesisStore
from explorer.hypotheses.planted import concept_neuron_model as concept_mlp


def test_the_budget_is_read_from_the_model_when_the_claim_is_written(make_hypothesis):
    model = concept_mlp()
    with torch.no_grad():
        model(torch.rand(7, model.input_shape[0]))
        model(torch.rand(3, model.input_shape[0]))
    h = make_hypothesis(budget_spent=model)
    assert h.budget_spent == (2, 0, 10)
    model(torch.rand(1, model.input_shape[0]))  # later passes do not change the record
    assert h.budget_spent == (2, 0, 10)
    assert make_hypothesis().budget_spent is None  # unknown unless given
    assert make_hypothesis(budget_spent=(5, 1, 40)).budget_spent == (5, 1, 40)


def test_the_budget_survives_json_and_the_store(make_hypothesis):
    h = make_hypothesis(budget_spent=(120, 30, 4_000))
    record = h.to_dict()
    assert record["budget_spent"] == {"forward": 120, "backward": 30, "examples": 4_000}
    assert record["version"] == "1.3"
    assert Hypothesis.from_json(h.to_json()).budget_spent == (120, 30, 4_000)
    store = HypothesisStore("sqlite://")
    store.save(h, project="budget")
    assert store.get(h.id).hypothesis.budget_spent == (120, 30, 4_000)
    old = {k: v for k, v in record.items() if k != "budget_spent"} | {"version": "1.1"}
    assert Hypothesis.from_dict(old).budget_spent is None  # records from before 1.2 load


@pytest.mark.parametrize("bad", [(1, 2), (1, -2, 3), ("a", 0, 0), 12, (1.5, 0, 0)])
def test_a_bad_budget_is_refused(make_hypothesis, bad):
    with pytest.raises(ValueError, match=r"budget_spent must be the model handle"):
        make_hypothesis(budget_spent=bad)


def test_the_hypothesis_widget_records_the_passes_before_it(make_hypothesis, concept_data):
    from explorer.views import HypothesisWidget

    model = concept_mlp()
    with torch.no_grad():
        model(torch.rand(4, model.input_shape[0]))
    widget = HypothesisWidget(make_hypothesis(), model, concept_data)
    assert widget.hypothesis.budget_spent == (1, 0, 4)
    given = HypothesisWidget(make_hypothesis(budget_spent=(9, 9, 9)), model, concept_data)
    assert given.hypothesis.budget_spent == (9, 9, 9)  # a recorded budget is kept
