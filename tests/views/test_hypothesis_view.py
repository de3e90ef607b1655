"""HypothesisWidget and HypothesisBoard without a browser: edits, Test, store, re-run all."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import torch
from page_requests import invoke

from explorer.hypotheses import (
    AblationEffect,
    HeadScore,
    Hypothesis,
    HypothesisStore,
    NeuronSelectivity,
    Split,
    planted,
)
from explorer.views.hypothesis_view import HypothesisBoard, HypothesisWidget

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def concept():
    return planted.concept_neuron_model(), planted.concept_examples(300, seed=4)


@pytest.fixture(scope="module")
def previous():
    return planted.previous_token_model(), planted.previous_token_examples(120, seed=5)


def neuron_hypothesis(**changes):
    fields = dict(
        claim="neuron 0.3 detects the concept",
        units="neuron 0.3",
        measure=NeuronSelectivity("auroc"),
        threshold=0.9,
        formation=Split(range(150)),
        held_out=Split(range(150, 300)),
        n_boot=300,
        dataset="concept",
    )
    fields.update(changes)
    return Hypothesis(**fields)


def head_hypothesis(**changes):
    fields = dict(
        claim="head 0.0 is a previous-token head",
        units="head 0.0",
        measure=HeadScore("previous_token"),
        threshold=0.4,
        formation=Split(range(60)),
        held_out=Split(range(60, 120)),
        n_boot=300,
        dataset="tokens",
    )
    fields.update(changes)
    return Hypothesis(**fields)


def test_test_button_runs_the_edited_hypothesis_and_saves_it(concept):
    model, data = concept
    store = HypothesisStore(":memory:")
    w = HypothesisWidget(
        neuron_hypothesis(), model, data, store=store, project="room", author="ada"
    )
    assert w.status == "untested" and w.verdict == {}
    assert w.units == "neuron 0.3" and w.held_out == "150 examples (indices 150..299)"

    invoke(w, "_page_test")

    w.wait()
    assert w.status == "supported" and w.verdict["status"] == "supported"
    assert w.verdict["value"] == pytest.approx(1.0)
    assert w.verdict["summary"].startswith("supported: auroc")

    first = w.hypothesis_id
    assert first == w.hypothesis.id and w.parent_id == ""

    # the page sends its edited fields with the press: a claim about another neuron, which
    # is a new version (the judged claim keeps its verdict), not an overwrite
    invoke(w, "_page_test", claim="neuron 0.5 too", units="L0N5", threshold=0.9)
    w.wait()
    assert w.units == "neuron 0.5" and w.claim == "neuron 0.5 too"
    assert w.status == "refuted"
    assert w.hypothesis_id != first and w.parent_id == first
    assert [v["status"] for v in w.history] == ["refuted"]  # this version's verdicts only

    stored = store.get(w.hypothesis_id)
    assert stored.hypothesis.claim == "neuron 0.5 too" and stored.author == "ada"
    assert stored.hypothesis.parent_id == first
    assert [v.status for v in stored.verdicts] == ["refuted"]
    original = store.get(first)
    assert original.hypothesis.claim == "neuron 0.3 detects the concept"
    assert [str(u) for u in original.hypothesis.units] == ["neuron 0.3"]
    assert [v.status for v in original.verdicts] == ["supported"]
    # testing the same version again adds to its history, under the same id
    w.test()
    assert w.hypothesis_id == stored.hypothesis.id and len(w.history) == 2
    # a new widget on the same hypothesis shows its stored history
    again = HypothesisWidget(store.get(w.hypothesis_id).hypothesis, model, data, store=store)
    assert again.status == "refuted" and len(again.history) == 2 and again.parent_id == first


def test_edits_before_any_verdict_change_the_draft_in_place(concept):
    model, data = concept
    w = HypothesisWidget(neuron_hypothesis(), model, data)
    draft = w.hypothesis_id
    w.units = "neuron 0.5"
    assert w.hypothesis.id == draft and w.hypothesis.parent_id is None
    w.test()
    assert w.hypothesis_id == draft and w.parent_id == ""


def test_bad_edits_show_an_error_and_keep_the_last_verdict(concept):
    model, data = concept
    w = HypothesisWidget(neuron_hypothesis(), model, data)
    w.test()
    invoke(w, "_page_test", units="neuron 0.99")
    w.wait()
    assert "neuron 0.99, which planted-concept-mlp lacks" in w.error
    assert w.status == "supported" and len(w.history) == 1
    invoke(w, "_page_test", units="the third neuron")
    w.wait()
    assert "cannot read a unit" in w.error
    invoke(w, "_page_test", units="neuron 0.3", claim="  ")
    w.wait()
    assert "claim in words" in w.error
    invoke(w, "_page_test", claim="neuron 0.3 detects it", threshold=0.5)
    w.wait()
    assert w.error == "" and w.status == "supported" and w.verdict["threshold"] == 0.5
    assert w.requests == 4  # every press is answered, so the page re-enables Test even on errors
    with pytest.raises(Exception, match="finite"):
        w.threshold = float("inf")


def test_set_model_tests_a_new_checkpoint(previous):
    model, data = previous
    w = HypothesisWidget(head_hypothesis(), model, {"tokens": data})
    assert w.test().status == "supported"
    checkpoint = model.copy()
    with torch.no_grad():
        checkpoint.model.blocks[0].attn.W_Q[0].zero_()
    w.set_model(checkpoint)
    assert w.model_name.endswith(checkpoint.fingerprint())
    assert w.test().status == "refuted"
    assert w.history[0]["model_fingerprint"] != w.history[1]["model_fingerprint"]


def _filled_store(concept, previous):
    store = HypothesisStore(":memory:")
    for author, h in (
        ("bob", neuron_hypothesis(claim="<img src=x onerror=alert(1)>")),
        ("ada", head_hypothesis()),
        ("ada", neuron_hypothesis(claim="neuron 0.5 detects it", units="neuron 0.5")),
        (
            "cy",
            head_hypothesis(
                claim="ablating head 0.0 breaks it",
                measure=AblationEffect("accuracy"),
                threshold=-0.5,
                direction="below",
            ),
        ),
    ):
        store.save(h, project="room", author=author)
    for rater, labels in (("ada", "llln"), ("bob", "lllc"), ("cy", "llnn")):
        for item, label in enumerate(labels):
            store.label(
                "neuron 0.3",
                {"l": "loop", "n": "none", "c": "curve"}[label],
                rater=rater,
                item=str(item),
                project="room",
            )
    store.label("neuron 0.5", "noise", rater="ada", project="room")
    return store


def test_board_lists_by_author_with_agreement_and_reruns_all(concept, previous):
    store = _filled_store(concept, previous)
    data = {"concept": concept[1], "tokens": previous[1]}
    board = HypothesisBoard(store, "room", inputs=data)
    assert [r["author"] for r in board.rows] == ["ada", "ada", "bob", "cy"]
    assert {r["status"] for r in board.rows} == {"untested"}
    assert board.rows[2]["claim"] == "<img src=x onerror=alert(1)>"  # text; the page escapes it
    units = [a["unit"] for a in board.agreement]
    assert units == ["neuron 0.3", "neuron 0.5"]
    n3 = board.agreement[0]
    assert n3["method"] == "fleiss" and n3["n_items"] == 4
    assert n3["labels"]["bob"] == "curve x1, loop x3"
    assert board.agreement[1]["kappa"] is None

    invoke(board, "_page_rerun")

    board.wait()
    assert "no model to re-run on" in board.error and board.requests == 1

    # one model at a time: hypotheses naming units that model lacks say why and are skipped
    outcome = board.rerun_all(concept[0])
    assert sum(isinstance(v, str) for v in outcome.values()) == 2  # the head hypotheses
    assert "re-ran 2 of 4" in board.message and "lacks" in board.message
    statuses = {r["claim"]: r["status"] for r in board.rows}
    assert statuses["<img src=x onerror=alert(1)>"] == "supported"
    assert statuses["neuron 0.5 detects it"] == "refuted"
    assert statuses["head 0.0 is a previous-token head"] == "untested"

    board.rerun_all(previous[0])
    statuses = {r["claim"]: r["status"] for r in board.rows}
    assert statuses["head 0.0 is a previous-token head"] == "supported"
    assert statuses["ablating head 0.0 breaks it"] == "supported"
    assert store.count("verdicts") == 4


def test_board_follows_the_store_and_the_project(concept, previous):
    store = _filled_store(concept, previous)
    board = HypothesisBoard(store, "room")
    assert board.projects == ["room"]
    store.save(neuron_hypothesis(claim="a late idea"), project="room", author="dee")
    invoke(board, "_page_refresh")
    board.wait()
    assert board.rows[-1]["author"] == "dee"
    store.save(neuron_hypothesis(claim="elsewhere"), project="other")
    board.project = "other"
    assert [r["claim"] for r in board.rows] == ["elsewhere"] and board.agreement == []


@pytest.mark.parametrize("name", ["_hypothesis.js", "hypothesis_widget.js", "hypothesis_board.js"])
def test_page_code_never_writes_html_from_data(name):
    js = (resources.files("explorer.views") / name).read_text()
    code = "\n".join(line for line in js.splitlines() if not line.lstrip().startswith("//"))
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", code)
    assert "import " not in code  # plain ESM, nothing fetched
    assert ("export default" in js) == (not name.startswith("_"))  # one module per widget


def test_the_widget_sends_the_passes_spent_before_the_claim_and_shows_them(concept):
    model, data = concept
    w = HypothesisWidget(neuron_hypothesis(budget_spent=(3_900, 93, 120_000)), model, data)
    state = w.get_state()
    assert state["budget_spent"] == {"forward": 3_900, "backward": 93, "examples": 120_000}
    w.test()
    assert w.get_state()["budget_spent"]["forward"] == 3_900  # testing spends after the claim
    forward, backward, examples = model.spent.snapshot()  # the test above ran passes
    assert forward > 0
    unknown = HypothesisWidget(neuron_hypothesis(), model, data)  # recorded now, from the handle
    assert unknown.get_state()["budget_spent"] == {
        "forward": forward,
        "backward": backward,
        "examples": examples,
    }
    assert "written after " in w._esm and '"budget_spent"' in w._esm
