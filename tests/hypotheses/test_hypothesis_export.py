"""Export to JSON and Markdown and import back: nothing lost, nothing injected."""

from __future__ import annotations

import json

import pytest

from explorer.hypotheses import HypothesisStore, from_json, from_markdown, to_json, to_markdown

NASTY = "neuron <b>0.3</b> | fires on `loops` & *closed* [curves](http://x) ```"


@pytest.fixture
def filled(make_hypothesis, concept_model, concept_data):
    store = HypothesisStore(":memory:")
    true = make_hypothesis(claim=NASTY, n_boot=200, n_baseline=2)
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
