"""What a store can hold is checked at the API, the same on SQLite and PostgreSQL: text with a
NUL, or longer than its column, is refused with a sentence naming the field, its length and
the limit; so an export one back-end accepted imports into the other. An import never files a
verdict under a hypothesis it did not judge, and no database error reaches the user as SQL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import sqlalchemy as sa
from test_hypothesis_store import _verdict

from explorer.hypotheses import HypothesisStore, from_json, to_json
from explorer.hypotheses.schema import labels_table


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda s, h: s.save(h.replace(claim="fires\x00 on loops")), r"claim contains a NUL .* 5"),
        (lambda s, h: s.save(h, author="a" * 201), r"author is 201 characters long.* at most 200"),
        (lambda s, h: s.save(h, project="p" * 201), r"project is 201 characters long.*at most 200"),
        (lambda s, h: s.save(h.replace(id="i" * 65)), r"hypothesis id is 65 .* at most 64"),
        (lambda s, h: s.label("u" * 101, "loop", rater="ada"), r"unit is 101 .* at most 100"),
        (lambda s, h: s.label("neuron 0.3", "lo\x00op", rater="ada"), r"label contains a NUL"),
        (lambda s, h: s.label("neuron 0.3", "loop", rater="r" * 201), r"rater is 201 .* 200"),
        (lambda s, h: s.label("neuron 0.3", "loop", rater="ada", item="\ud800"), "lone surrogate"),
    ],
)
def test_text_a_store_cannot_hold_is_refused_alike_on_both_backends(
    backend, make_hypothesis, write, message
):
    store = HypothesisStore(backend)
    with pytest.raises(ValueError, match=message) as caught:
        write(store, make_hypothesis())
    assert "[SQL" not in str(caught.value)
    assert store.count("hypotheses") == store.count("labels") == 0
    store.close()


def test_a_verdict_a_store_cannot_hold_is_refused_alike(backend, make_hypothesis):
    store = HypothesisStore(backend)
    h = make_hypothesis(id="h1")
    store.save(h)
    with pytest.raises(ValueError, match="model fingerprint is 65 .* at most 64"):
        store.record(replace(_verdict("h1"), model_fingerprint="f" * 65))
    with pytest.raises(ValueError, match="timestamp is 41 .* at most 40"):
        store.record(replace(_verdict("h1"), timestamp="t" * 41))
    assert store.count("verdicts") == 0


def _at_the_limits(store: HypothesisStore, make_hypothesis) -> str:
    """A project whose every text sits at its column's limit, in non-ASCII characters."""
    project = "é" * 200
    h = make_hypothesis(id="x" * 64, claim="fires on 🔁 loops\tand ‘quotes’ " + "ü" * 5000)
    store.save(h, project=project, author="ß" * 200)
    store.record(replace(_verdict(h.id), model_fingerprint="f" * 64))
    store.label("n" * 100, "loop ✓", rater="r" * 200, item="i" * 200, project=project)
    return project


def test_a_sqlite_export_imports_into_postgresql_unchanged(
    tmp_path, postgres_server, make_hypothesis
):
    sqlite = HypothesisStore(tmp_path / "room.db")
    project = _at_the_limits(sqlite, make_hypothesis)
    text = to_json(sqlite, project)
    server = HypothesisStore(postgres_server.new_database())
    report = from_json(text, server)
    assert (len(report.added), report.verdicts_added, report.labels) == (1, 1, 1)
    assert to_json(server, project) == text
    back = HypothesisStore(tmp_path / "back.db")  # and the other way round
    from_json(to_json(server, project), back)
    assert to_json(back, project) == text


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e["hypotheses"][0].update(author="a" * 201), "author is 201 characters"),
        (lambda e: e["hypotheses"][0]["hypothesis"].update(claim="x\x00"), "claim contains a NUL"),
        (lambda e: e["labels"][0].update(unit="u" * 101), "label 1: unit is 101 characters"),
        (lambda e: e.update(project="p" * 201), "project is 201 characters"),
    ],
)
def test_an_export_one_backend_refuses_the_other_refuses_too(
    backend, make_hypothesis, edit, message
):
    source = HypothesisStore(":memory:")
    source.save(make_hypothesis(), project="room", author="ada")
    source.label("neuron 0.3", "loop", rater="ada", project="room")
    data = json.loads(to_json(source, "room"))
    edit(data)
    target = HypothesisStore(backend)
    with pytest.raises((ValueError, TypeError), match=message) as caught:
        from_json(json.dumps(data), target)
    assert "[SQL" not in str(caught.value)
    assert target.count("hypotheses") == target.count("labels") == 0


def test_a_database_error_reads_as_a_sentence_without_sql(backend):
    store = HypothesisStore(backend)
    store.label("neuron 0.3", "loop", rater="ada")
    with pytest.raises(ValueError, match="refused the record") as caught:
        with store._writing() as conn:  # around the API's checks, as a damaged caller would
            conn.execute(labels_table.insert().values(project_id=1, unit="u", item="i",
                                                      rater="r", label=None, created="now"))  # fmt: skip
    assert "[SQL" not in str(caught.value) and "INSERT" not in str(caught.value)
    assert store.count("labels") == 1


def _two_judged(make_hypothesis) -> dict:
    store = HypothesisStore(":memory:")
    for hid, value in (("A", 0.2), ("B", 0.95)):
        store.save(make_hypothesis(id=hid, claim=f"claim {hid}"), project="room")
        store.record(_verdict(hid, value=value, status="refuted" if value < 0.9 else "supported"))
    return json.loads(to_json(store, "room"))


@pytest.mark.parametrize("into", ["A", "B"])
def test_a_verdict_filed_under_another_hypothesis_is_refused(make_hypothesis, into):
    data = _two_judged(make_hypothesis)
    a, b = data["hypotheses"]
    if into == "A":  # B's supported verdict filed with A's entry
        a["verdicts"], b["verdicts"] = b["verdicts"], []
    else:
        b["verdicts"] = a["verdicts"] + b["verdicts"]
    target = HypothesisStore(":memory:")
    with pytest.raises(ValueError, match=r"judged hypothesis '[AB]', not this one.*never re-attr"):
        from_json(json.dumps(data), target)
    assert target.count("hypotheses") == target.count("verdicts") == 0


def test_a_verdict_filed_under_another_hypothesis_is_refused_through_the_api(make_hypothesis):
    source = HypothesisStore(":memory:")
    data = _two_judged(make_hypothesis)
    from_json(json.dumps(data), source)
    a, b = source.hypotheses("room")
    target = HypothesisStore(":memory:")
    with pytest.raises(ValueError, match="imported hypothesis 1 \\(id 'A'\\): its verdict 1"):
        target.import_hypotheses([replace(a, verdicts=b.verdicts)], [], "room")
    assert target.count("verdicts") == 0
    with target._reading() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM hypotheses")).scalar() == 0
