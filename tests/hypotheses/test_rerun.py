"""Re-running a project: every hypothesis tested again, verdicts recorded, failures named."""

from __future__ import annotations

import pytest

from explorer.hypotheses import HypothesisStore, Label, label_counts, pick_data, rerun_project


def test_rerun_project_records_verdicts_and_names_what_could_not_run(
    tmp_path, make_hypothesis, concept_model, concept_data
):
    store = HypothesisStore(tmp_path / "h.db")
    good = make_hypothesis(dataset="concepts")
    elsewhere = make_hypothesis(claim="on another dataset", dataset="other")
    store.save(good, project="p", author="ana")
    store.save(elsewhere, project="p", author="bo")
    outcome = rerun_project(store, "p", concept_model, {"concepts": concept_data})
    assert outcome[good.id].status == "supported"
    assert outcome[elsewhere.id] == (
        "ValueError: no data named 'other' for this hypothesis (have 'concepts')"
    )
    stored = {s.hypothesis.id: s for s in store.hypotheses("p")}
    assert [v.status for v in stored[good.id].verdicts] == ["supported"]
    assert stored[elsewhere.id].verdicts == ()  # nothing recorded for a failure
    outcome = rerun_project(store, "p", concept_model, concept_data)  # one dataset for all
    assert {v.status for v in outcome.values()} == {"supported"}


def test_pick_data_and_label_counts(make_hypothesis, concept_data):
    h = make_hypothesis()
    assert pick_data(concept_data, h) is concept_data
    with pytest.raises(ValueError, match="no data to test on"):
        pick_data(None, h)
    labels = [
        Label("neuron 0.3", "bo", "concept", "x1"),
        Label("neuron 0.3", "ana", "other", "x1"),
        Label("neuron 0.3", "ana", "concept", "x2"),
        Label("head 1.0", "ana", "concept", "x1"),
        Label("neuron 0.3", "ana", "concept", "x3"),
    ]
    assert label_counts(labels) == {
        "head 1.0": {"ana": {"concept": 1}},
        "neuron 0.3": {"ana": {"concept": 2, "other": 1}, "bo": {"concept": 1}},
    }
    assert list(label_counts(labels)) == ["head 1.0", "neuron 0.3"]
