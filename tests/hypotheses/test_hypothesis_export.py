"""Export to JSON and Markdown and import back: nothing lost, nothing injected."""

from __future__ import annotations

import dataclasses
import json

import pytest

from explorer.hypotheses import (
    HypothesisStore,
    ImportConflict,
    from_json,
    from_markdown,
    to_json,
    to_markdown,
)

NASTY = "neuron <b>0.3</b> | fires on `loops` & *closed* [curves](http://x) ```"


@pytest.fixture
def filled(make_hypothesis, concept_model, concept_data):
    store = HypothesisStore(":memory:")
    true = make_hypothesis(claim=NASTY, n_boot=200)
    false = make_hypothesis(claim="neuron 0.5 detects the concept", units="neuron 0.5", n_boot=200)
    for h, author in ((true, "ada"), (false, "bob <i>")):
        store.save(h, project="room", author=author)
        store.record(h.test(concept_model, concept_data))
    store.record(true.test(concept_model, concept_data))
    for rater, label in (("ada", "loop"), ("bob", "loop"), ("cy", "line")):
        store.label("neuron 0.3", label, rater=rater, item="7", project="room")
    return store


def test_json_round_trip(filled):
    text = to_json(filled, "room")
    other = HypothesisStore(":memory:")
    record = from_json(text, other)
    assert record.project == "room"
    assert to_json(other, "room") == text
    assert [s.hypothesis for s in other.hypotheses("room")] == [
        s.hypothesis for s in filled.hypotheses("room")
    ]
    from_json(text, other)  # importing twice adds nothing
    assert other.count("verdicts") == 3 and other.count("labels") == 3
    from_json(text, other, project="copy")
    assert other.count("labels") == 6


def test_markdown_round_trip_and_escaping(filled):
    text = to_markdown(filled, "room")
    other = HypothesisStore(":memory:")
    from_markdown(text, other)
    assert to_json(other, "room") == to_json(filled, "room")
    report = text[: text.index("<!-- explorer-record")]
    assert "<b>" not in report and "<i>" not in report
    assert "&lt;b&gt;0.3&lt;/b&gt; \\| fires on \\`loops\\` &amp; \\*closed\\*" in report
    block = text[text.index("```json") + 7 : text.rindex("```")]
    assert "```" not in block and "<" not in block
    assert json.loads(block)["hypotheses"][0]["hypothesis"]["claim"] == NASTY
    assert "| neuron 0.3 | fleiss |" in report
    assert report.count("| supported |") == 2 and report.count("| refuted |") == 1


def test_bad_imports_are_refused():
    store = HypothesisStore(":memory:")
    with pytest.raises(ValueError, match="no explorer record"):
        from_markdown("# just notes", store)
    with pytest.raises(ValueError, match="not an explorer hypotheses export"):
        from_json('{"format": "other"}', store)
    with pytest.raises(ValueError, match="newer"):
        from_json('{"format": "explorer-hypotheses", "version": 99, "project": "p"}', store)


# ------------------------------------------------------------------ import conflicts
def _export(store, project="room"):
    return to_json(store, project)


def test_an_import_reusing_an_id_is_a_conflict_and_writes_nothing(
    filled, concept_model, concept_data
):
    theirs = HypothesisStore(":memory:")
    ours = filled.hypotheses("room")[0].hypothesis
    # someone else's store holds another claim under our id (an edit keeps no id, so it
    # comes from a store that never saw ours)
    reversed_claim = dataclasses.replace(
        ours, claim="neuron 0.3 ignores the concept", direction="below"
    )
    theirs.save(reversed_claim, project="room", author="mallory")
    theirs.label("neuron 9.9", "new", rater="zed", project="room")
    before = (to_json(filled, "room"), filled.count("labels"), filled.count("verdicts"))
    with pytest.raises(ImportConflict, match=rf"{ours.id} \(claim, direction differ\).*skip"):
        from_json(_export(theirs), filled)
    assert (to_json(filled, "room"), filled.count("labels"), filled.count("verdicts")) == before


def test_conflict_choices_skip_keep_both_replace(filled):
    ours = filled.hypotheses("room")[0]
    theirs_store = HypothesisStore(":memory:")
    flipped = dataclasses.replace(ours.hypothesis, claim="reversed", direction="below")
    theirs_store.save(flipped, project="room", author="mallory")
    text = _export(theirs_store)

    skip_store = HypothesisStore(":memory:")
    from_json(_export(filled), skip_store)
    report = from_json(text, skip_store, on_conflict="skip")
    assert report.skipped == (ours.hypothesis.id,)
    assert skip_store.get(ours.hypothesis.id).hypothesis.claim == ours.hypothesis.claim

    both = HypothesisStore(":memory:")
    from_json(_export(filled), both)
    report = from_json(text, both, on_conflict="keep_both")
    new_id = report.renamed[ours.hypothesis.id]
    assert both.get(new_id).hypothesis.claim == "reversed"
    assert both.get(ours.hypothesis.id).status == ours.status  # ours and its verdicts intact
    assert len(both.get(ours.hypothesis.id).verdicts) == 2
    assert from_json(text, both, on_conflict="keep_both").renamed == {ours.hypothesis.id: new_id}
    assert both.count("hypotheses") == 3  # importing the same file again adds nothing

    rep = HypothesisStore(":memory:")
    from_json(_export(filled), rep)
    report = from_json(text, rep, on_conflict="replace")
    assert report.replaced == (ours.hypothesis.id,)
    replaced = rep.get(ours.hypothesis.id)
    assert replaced.hypothesis.direction == "below" and replaced.verdicts == ()
    assert replaced.status == "untested"  # the old verdicts judged another claim
    with pytest.raises(ValueError, match="on_conflict"):
        from_json(text, rep, on_conflict="overwrite")


def test_importing_into_another_project_copies(filled):
    text = _export(filled)
    before = [(s.hypothesis, len(s.verdicts)) for s in filled.hypotheses("room")]
    report = from_json(text, filled, project="copy")
    assert [(s.hypothesis, len(s.verdicts)) for s in filled.hypotheses("room")] == before
    copies = filled.hypotheses("copy")
    assert len(copies) == 2 and set(report.renamed.values()) == {s.hypothesis.id for s in copies}
    assert [s.hypothesis.claim for s in copies] == [h.claim for h, _ in before]
    assert [len(s.verdicts) for s in copies] == [n for _, n in before]
    from_json(text, filled, project="copy")
    assert len(filled.hypotheses("copy")) == 2
    with pytest.raises(ValueError, match="belongs to another project"):
        filled.save(before[0][0], project="copy")


def test_an_import_failing_part_way_writes_nothing(filled, monkeypatch, backend):
    text = _export(filled)
    target = HypothesisStore(backend)
    target.label("neuron 1.1", "kept", rater="ada", project="room")
    calls = []
    insert = HypothesisStore._insert_verdict

    def failing(conn, verdict):
        calls.append(verdict)
        if len(calls) == 3:
            raise OSError("disk full")
        return insert(conn, verdict)

    monkeypatch.setattr(HypothesisStore, "_insert_verdict", staticmethod(failing))
    with pytest.raises(OSError, match="disk full"):
        from_json(text, target)
    assert len(calls) == 3
    assert target.count("hypotheses") == 0 and target.count("verdicts") == 0
    assert [lab.label for lab in target.labels("room")] == ["kept"]


def test_malformed_exports_name_what_is_wrong():
    store = HypothesisStore(":memory:")
    with pytest.raises(ValueError, match="no 'project' name"):
        from_json('{"format": "explorer-hypotheses", "version": 1}', store)
    with pytest.raises(ValueError, match="not valid JSON"):
        from_json("{", store)
    bad = {"format": "explorer-hypotheses", "version": 1, "project": "p",
           "hypotheses": [{"hypothesis": {"id": "x", "claim": "c"}}]}  # fmt: skip
    with pytest.raises(ValueError, match=r"hypothesis 1 \(id 'x'\) is malformed: .*lacks"):
        from_json(json.dumps(bad), store)
    assert store.count("hypotheses") == 0 and store.count("projects") == 0
