"""Editing a hypothesis makes a new version: its own id, linked to its parent; verdicts stay
with the claim they judged, and the store and exports keep both."""

from __future__ import annotations

import dataclasses

import pytest

import explorer
from explorer.hypotheses import (
    HeadScore,
    Hypothesis,
    HypothesisStore,
    Split,
    from_json,
    from_markdown,
    to_json,
    to_markdown,
)


@pytest.fixture(scope="module")
def quickstart():
    from explorer.data import repeated_tokens

    model = explorer.load("shipped:quickstart-induction")
    return model, repeated_tokens(32, half_len=20, d_vocab=64, seed=2)


def _claim():
    return Hypothesis(
        claim="head 0.1 is an induction head",
        units="head 0.1",
        measure=HeadScore("induction"),
        threshold=0.4,
        formation=Split(range(16)),
        held_out=Split(range(16, 32)),
        n_boot=200,
    )


def test_editing_head_0_1_to_head_1_3_after_a_verdict_keeps_both(quickstart):
    model, tokens = quickstart
    store = HypothesisStore(":memory:")
    old = _claim()
    store.save(old, project="p", author="ada")
    store.record(old.test(model, tokens))

    new = old.replace(claim="head 1.3 is an induction head", units="head 1.3")
    assert new.id != old.id and new.parent_id == old.id and old.parent_id is None
    store.save(new, project="p", author="ada")

    kept, edited = store.get(old.id), store.get(new.id)
    assert [str(u) for u in kept.hypothesis.units] == ["head 0.1"]
    assert len(kept.verdicts) == 1 and kept.verdicts[0].measure.endswith("of head 0.1")
    assert edited.verdicts == () and edited.hypothesis.parent_id == old.id
    store.record(new.test(model, tokens))
    assert len(store.get(old.id).verdicts) == 1 and len(store.get(new.id).verdicts) == 1

    for export, load in ((to_json, from_json), (to_markdown, from_markdown)):
        other = HypothesisStore(":memory:")
        report = load(export(store, "p"), other)
        assert set(report.added) == {old.id, new.id}
        a, b = other.get(old.id), other.get(new.id)
        assert b.hypothesis.parent_id == old.id and a.hypothesis.parent_id is None
        assert [v.to_dict() for v in a.verdicts] == [v.to_dict() for v in kept.verdicts]
        assert [str(u) for u in b.hypothesis.units] == ["head 1.3"] and len(b.verdicts) == 1
    report = to_markdown(store, "p")
    assert "edited from" in report
    v = kept.verdicts[0]  # the baseline distribution's summary is in the report
    assert f"({v.baseline_n_sets} sets, mean" in report and v.baseline_n_sets == 7


def test_a_judged_claim_is_never_overwritten_in_place(quickstart):
    model, tokens = quickstart
    store = HypothesisStore(":memory:")
    old = _claim()
    store.save(old)
    store.record(old.test(model, tokens))
    same_id = dataclasses.replace(old, units=("head 1.3",))
    with pytest.raises(ValueError, match="an edit is a new version, never an overwrite"):
        store.save(same_id)
    assert [str(u) for u in store.get(old.id).hypothesis.units] == ["head 0.1"]
    store.save(old.replace(budget_spent=(5, 0, 10)))  # not the claim: allowed in place
    assert store.get(old.id).hypothesis.budget_spent == (5, 0, 10)


def test_unchanged_copies_and_given_ids_keep_their_ids():
    h = _claim()
    assert h.replace(threshold=0.4).id == h.id
    assert h.replace(id="mine", units="head 1.3").id == "mine"
    assert h.replace(units="head 1.2", parent_id="elsewhere").parent_id == "elsewhere"
    assert Hypothesis.from_dict(h.replace(units="head 1.2").to_dict()).parent_id == h.id
    old_record = h.to_dict()
    old_record.update(version="1.2")
    del old_record["parent_id"]
    assert Hypothesis.from_dict(old_record).parent_id is None
    with pytest.raises(ValueError, match="parent_id must be a hypothesis id"):
        h.replace(parent_id="")


def test_rebinding_a_reloaded_measure_is_not_an_edit():
    from explorer.hypotheses import UserFunction

    h = _claim().replace(id="kept", measure=UserFunction.named("not_registered_here"))
    rebound = h.with_function(lambda model, examples, units: examples.inputs[:, 0].double())
    assert rebound.id == "kept" and rebound.parent_id is None
    assert rebound.measure.name == "not_registered_here" and rebound.rerunnable
