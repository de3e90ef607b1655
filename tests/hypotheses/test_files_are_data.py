"""Hypothesis files are data: nothing named in a file is imported, called or allowed to end
the kernel, and one unreadable row is reported, not fatal."""

from __future__ import annotations

import json
import sys

import pytest
import sqlalchemy as sa
from page_requests import invoke

from explorer.hypotheses import (
    AblationEffect,
    Hypothesis,
    HypothesisStore,
    PatchingRecovery,
    Split,
    from_json,
    register_measure,
    register_metric,
    unregister_measure,
    unregister_metric,
)
from explorer.hypotheses.schema import hypotheses_table
from explorer.views.hypothesis_view import HypothesisBoard, HypothesisWidget

EVIL = "explorer_evil_payload"


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """An importable module whose import and call both leave a mark (and would end the kernel)."""
    marker = tmp_path / "ran"
    (tmp_path / f"{EVIL}.py").write_text(
        "import pathlib, sys\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "def run(*args, **kwargs):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('called')\n"
        "    sys.exit(3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def _malicious_records(make_hypothesis):
    base = make_hypothesis(n_boot=50).to_dict()
    records = []
    for i, measure in enumerate(
        [
            {"kind": "user_function", "reference": "sys:exit", "name": "exit", "statistic": "mean"},
            {"kind": "user_function", "name": f"{EVIL}:run", "statistic": "mean"},
            {"kind": "user_function", "reference": f"{EVIL}:run", "statistic": "mean"},
        ]
    ):
        records.append({**base, "id": f"evil-{i}", "measure": measure})
    records.append({**base, "id": "evil-metric", "units": ["neuron 0.3"],
                    "measure": {"kind": "ablation_effect", "metric": f"{EVIL}:run", "ablation": "zero"}})  # fmt: skip
    return records


def test_a_malicious_file_runs_nothing_and_ends_nothing(
    evil_module, make_hypothesis, concept_model, concept_data
):
    for record in _malicious_records(make_hypothesis):
        h = Hypothesis.from_dict(json.loads(json.dumps(record)))
        assert not h.rerunnable
        verdict = h.test(concept_model, concept_data)  # no SystemExit, no import
        assert verdict.status == "unavailable"
        assert "is not registered here" in verdict.note
        assert json.loads(verdict.to_json())["value"] is None
    assert not evil_module.exists() and EVIL not in sys.modules
    assert "measure 'sys:exit' is not registered here" in (
        Hypothesis.from_dict(_malicious_records(make_hypothesis)[0])
        .test(concept_model, concept_data)
        .summary()
    )


def test_the_board_rerun_of_a_malicious_file_runs_nothing(
    evil_module, make_hypothesis, concept_model, concept_data
):
    store = HypothesisStore(":memory:")
    export = {"format": "explorer-hypotheses", "version": 1, "project": "shared",
              "hypotheses": [{"hypothesis": r} for r in _malicious_records(make_hypothesis)]}  # fmt: skip
    from_json(json.dumps(export), store)
    board = HypothesisBoard(store, "shared", model=concept_model, inputs=concept_data)
    assert len(board.rows) == 4 and not any(r["rerunnable"] for r in board.rows)
    assert all(r["test"].endswith("(its measure is not registered here)") for r in board.rows)
    outcome = board.rerun_all()
    assert all(isinstance(why, str) and "not registered here" in why for why in outcome.values())
    assert "re-ran 0 of 4" in board.message and "measure 'sys:exit'" in board.message
    assert store.count("verdicts") == 0  # unavailable is not evidence
    assert not evil_module.exists() and EVIL not in sys.modules


@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt()])
def test_a_measure_that_raises_systemexit_or_interrupt_does_not_end_the_kernel(
    exc, make_hypothesis, concept_model, concept_data
):
    def hostile(model, examples, units):
        raise exc

    register_measure("hostile", hostile)
    try:
        store = HypothesisStore(":memory:")
        h = make_hypothesis(measure="hostile", n_boot=50)
        good = make_hypothesis(n_boot=50)
        store.save(h, project="p")
        store.save(good, project="p")
        board = HypothesisBoard(store, "p", model=concept_model, inputs=concept_data)
        outcome = board.rerun_all()
        assert outcome[h.id].startswith(type(exc).__name__)
        assert outcome[good.id].status == "supported"  # the others still ran
        board.send_state()
        invoke(board, "_page_rerun")  # the page's button: same path
        board.wait()
        assert board.error == "" and "re-ran 1 of 2" in board.message
        widget = HypothesisWidget(h, concept_model, concept_data)
        assert widget.test() is None and widget.error.startswith(type(exc).__name__)
    finally:
        unregister_measure("hostile")


def test_registered_metrics_are_the_only_named_metrics(make_hypothesis):
    with pytest.raises(ValueError, match="metric must be a name"):
        AblationEffect(metric=None)
    assert not PatchingRecovery(metric="mine").rerunnable
    register_metric("mine", lambda examples: lambda logits: logits[:, 0])
    try:
        assert PatchingRecovery(metric="mine").rerunnable
        with pytest.raises(ValueError, match="built-in metric"):
            register_metric("accuracy", lambda ex: None)
    finally:
        unregister_metric("mine")


# ------------------------------------------------------------ unreadable rows
@pytest.fixture(scope="module")
def big_project(tmp_path_factory):
    """1,400 hypotheses in one project (written in one import transaction)."""
    from explorer.hypotheses import NeuronSelectivity
    from explorer.hypotheses.store import StoredHypothesis

    store = HypothesisStore(tmp_path_factory.mktemp("big") / "big.db")
    base = Hypothesis(claim="c", units="neuron 0.3", measure=NeuronSelectivity(), threshold=0.9,
                      formation=Split([0, 1]), held_out=Split([2, 3]), id="h0000")  # fmt: skip
    entries = [
        StoredHypothesis(base.replace(id=f"h{i:04d}", claim=f"claim {i}"), "big", "ada", "", "")
        for i in range(1400)
    ]
    store.import_hypotheses(entries, [], "big")
    return store


def _set_spec(store, hypothesis_id, spec):
    with store._engine.begin() as conn:
        conn.execute(
            sa.update(hypotheses_table)
            .where(hypotheses_table.c.id == hypothesis_id)
            .values(spec=json.dumps(spec))
        )


def test_one_bad_row_in_1400_is_reported_and_the_rest_load(big_project):
    store = big_project
    good = json.loads(store.get("h0700").hypothesis.to_json())
    _set_spec(store, "h0700", {**good, "version": "1.0", "colour": "red"})  # edited by hand
    try:
        loaded = store.hypotheses("big")
        assert len(loaded) == 1399
        [bad] = loaded.unreadable
        assert (bad.table, bad.id) == ("hypotheses", "h0700")
        assert "unknown hypothesis fields ['colour']" in bad.reason
        board = HypothesisBoard(store, "big")
        assert len(board.rows) == 1399
        assert board.unreadable == [{"table": "hypotheses", "id": "h0700", "reason": bad.reason}]
        with pytest.raises(ValueError, match="h0700.*is unreadable"):
            store.get("h0700")
    finally:
        _set_spec(store, "h0700", good)
    assert len(store.hypotheses("big")) == 1400


def test_rows_of_a_newer_minor_version_load_and_a_newer_major_is_reported(big_project):
    store = big_project
    good = json.loads(store.get("h0001").hypothesis.to_json())
    try:
        _set_spec(store, "h0001", {**good, "version": "1.9", "priority": "high"})
        assert store.get("h0001").hypothesis.claim == "claim 1"  # the new field is ignored
        _set_spec(store, "h0001", {**good, "version": "2.0"})
        [bad] = store.unreadable("big")
        assert "newer explorer (record version 2.0; this one reads 1.x)" in bad.reason
        _set_spec(store, "h0001", "not a dict")
        assert "must be a JSON object" in store.unreadable("big")[0].reason
    finally:
        _set_spec(store, "h0001", good)


def test_a_bad_store_path_is_named(tmp_path):
    missing = tmp_path / "no" / "such" / "folder" / "h.db"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*folder .* does not exist"):
        HypothesisStore(missing)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        HypothesisStore(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match=f"{junk}.* is not a hypothesis store"):
        HypothesisStore(junk)
