"""Bad inputs to the store and to hypothesis files get a clear explorer error naming the field
and what is allowed: never raw SQL, an OverflowError, or a number accepted that no test can
run with (``n_boot: 10**400``)."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from test_hypothesis_store import _verdict

from explorer.hypotheses import HypothesisStore, from_json, to_json
from explorer.hypotheses.schema import hypotheses_table


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.hypotheses(project=["a"]),
        lambda s: s.labels(project=["a"]),
        lambda s: s.agreement(project=["a"]),
        lambda s: s.unreadable(project=["a"]),
        lambda s: to_json(s, ["a"]),
        lambda s: s.label("neuron 0.3", "loop", rater="ada", project=["a"]),
    ],
)
def test_a_project_that_is_not_a_name_is_refused_in_words(backend, call):
    store = HypothesisStore(backend)
    with pytest.raises(TypeError, match=r"project must be a project's name \(a string\), got list"):
        call(store)


def test_an_id_that_is_not_a_string_is_refused_in_words():
    store = HypothesisStore(":memory:")
    with pytest.raises(TypeError, match="hypothesis id must be a string, got int 7"):
        store.get(7)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"n_boot": 10**400}, "n_boot must be an integer from 1 to 100,000, got a 401-digit"),
        ({"n_boot": 10**6}, "n_boot must be an integer from 1 to 100,000, got 1000000"),
        ({"n_baseline": 10**5}, "n_baseline must be an integer from 1 to 1,000"),
        ({"seed": -1}, "seed must be an integer from 0 to 9,223,372,036,854,775,807, got -1"),
        ({"seed": 2**64}, "seed must be an integer from 0 to"),
        ({"threshold": 10**400}, "threshold must be a finite number, got a 401-digit integer"),
        ({"baseline": float("inf")}, "baseline must be a finite number, got inf"),
        ({"confidence": 10**400}, "confidence must be a finite number"),
    ],
)
def test_a_hypothesis_number_no_test_can_run_with_is_refused(make_hypothesis, changes, message):
    with pytest.raises(ValueError, match=message):
        make_hypothesis(**changes)


def _export(make_hypothesis, judged: bool = False) -> dict:
    store = HypothesisStore(":memory:")
    h = make_hypothesis(id="h1")
    store.save(h, project="room")
    if judged:
        store.record(_verdict("h1"))
    return json.loads(to_json(store, "room"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(n_boot=10**400), "n_boot is a 401-digit number"),
        (lambda d: d.update(n_boot=10**9), "n_boot must be an integer from 1 to 100,000"),
        (lambda d: d.update(seed=2**70), "seed is a 22-digit number"),
        (
            lambda d: d["measure"].update(fire_threshold=float("nan")),
            "fire_threshold must be a finite",
        ),
        (
            lambda d: d["held_out"].update(ranges=[[200, 10**12]]),
            "lists more than 10,000,000 examples",
        ),
        (
            lambda d: d["formation"].update(ranges=[[0, 1e300]]),
            "ranges\\[0\\] stop must be an integer",
        ),
    ],
)
def test_a_hypothesis_file_with_such_numbers_is_refused_before_anything_runs(
    make_hypothesis, edit, message
):
    data = _export(make_hypothesis)
    edit(data["hypotheses"][0]["hypothesis"])
    target = HypothesisStore(":memory:")
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"{message}.*nothing was imported"):
        from_json(json.dumps(data), target)
    assert time.perf_counter() - started < 5  # a trillion-example split is never expanded
    assert target.count("hypotheses") == 0


def test_a_verdict_number_out_of_range_in_a_file_is_a_sentence(make_hypothesis):
    data = _export(make_hypothesis, judged=True)
    data["hypotheses"][0]["verdicts"][0]["value"] = 10**400
    with pytest.raises(ValueError, match="export hypothesis 1 .* is malformed: .*too large"):
        from_json(json.dumps(data), HypothesisStore(":memory:"))


def test_a_stored_row_with_such_numbers_is_reported_not_fatal(backend, make_hypothesis):
    store = HypothesisStore(backend)
    store.save(make_hypothesis(id="bad"), project="room")
    store.save(make_hypothesis(id="good"), project="room")
    spec = make_hypothesis(id="bad").to_dict() | {"n_boot": 10**30}
    with store._writing() as conn:  # as a hand edit of the database would leave it
        conn.execute(
            sa.update(hypotheses_table)
            .where(hypotheses_table.c.id == "bad")
            .values(spec=json.dumps(spec))
        )
    listed = store.hypotheses("room")
    assert [s.hypothesis.id for s in listed] == ["good"]
    assert [u.id for u in listed.unreadable] == ["bad"]
    assert "n_boot is a 31-digit number" in listed.unreadable[0].reason
