"""A room on each backend (SQLite file, PostgreSQL server): start, join, identity on every
record, the board, the watcher, two writers at once, hand-outs and budgets, the reveal,
the export. Enforcement by the store's roles is tested with raw SQL in test_postgres_roles."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from explorer.session import Board, Handout, SessionError, join, start


@pytest.fixture
def room(store_url):
    mentor = start(store_url, mentor="Ada", title="Induction heads, week 3")
    bo = join(store_url, mentor.code, name="Bo")
    cy = join(store_url, mentor.code, name="Cy")
    yield mentor, bo, cy
    for s in (mentor, bo, cy):
        s.close()


def test_identity_travels_with_every_label_hypothesis_and_verdict(
    room, make_hypothesis, concept_data
):
    mentor, bo, cy = room
    assert (mentor.role, bo.role, bo.name) == ("mentor", "participant", "Bo")
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=0))
    bo.label("neuron 0.3", "concept")
    cy.label("neuron 0.3", "concept")
    verdict = bo.test(make_hypothesis(id="bo-1"), concept_data)
    assert verdict.status == "supported"
    cy.save(make_hypothesis(id="cy-1", claim="neuron 0.3 again"))
    board = mentor.board()
    assert isinstance(board, Board) and board.code == mentor.code and not board.revealed
    authors = {(r.kind, r.id): r.author for r in board.records}
    assert authors[("hypothesis", "bo-1")] == "Bo" and authors[("hypothesis", "cy-1")] == "Cy"
    assert [a for (k, _), a in authors.items() if k == "verdict"] == ["Bo"]
    assert sorted(a for (k, _), a in authors.items() if k == "label") == ["Bo", "Cy"]
    rows = {p.name: p for p in board.participants}
    assert rows["Bo"].hypotheses == 1 and rows["Bo"].verdicts == {"supported": 1}
    assert rows["Cy"].hypotheses == 1 and rows["Cy"].verdicts == {}
    assert board.units[0].labels == {"Bo": "concept", "Cy": "concept"}
    assert board.units[0].raters == 2
    stored = {h.hypothesis.id: (h.author, h.project) for h in mentor.hypotheses()}
    assert stored == {"bo-1": ("Bo", mentor.project), "cy-1": ("Cy", mentor.project)}
    now = time.time()
    assert all(now - 60 < r.committed_at <= now + 1 for r in board.records)
    assert board.leaderboard[0] == type(board.leaderboard[0])(
        "Bo", 1, rows["Bo"].passes_spent, None
    )
    assert "Induction heads" in repr(board) and len(repr(board)) < 200
    assert "| Bo | 1 |" in board._repr_markdown_()


def test_a_bad_code_or_a_taken_name_is_refused_with_a_sentence(store_url):
    mentor = start(store_url, mentor="Ada", title="week 3")
    assert len(mentor.code) == 11 and mentor.code[5] == "-"
    assert mentor.code != start(store_url, mentor="Ada", title="again").code
    with pytest.raises(SessionError, match="not a join code.*no 0, 1, I, L or O"):
        join(store_url, "OOOO", name="Bo")
    wrong = "ABCDE-FGHJK" if mentor.code != "ABCDE-FGHJK" else "ABCDE-FGHJM"
    with pytest.raises(SessionError, match="no session with join code ABCDE-FGH"):
        join(store_url, wrong, name="Bo")
    bo = join(store_url, mentor.code.lower(), name="Bo")  # codes are read case-blind
    with pytest.raises(SessionError, match="the name 'Bo' is taken in this session"):
        join(store_url, mentor.code, name="Bo")
    with pytest.raises(SessionError, match="the name 'Ada' is taken"):
        join(store_url, mentor.code, name="Ada")
    with pytest.raises(SessionError, match="1 to 60 characters"):
        join(store_url, mentor.code, name="")
    back = join(store_url, mentor.code, name="Bo", key=bo.key)  # a restarted kernel
    assert back.name == "Bo" and back.role == "participant"


def test_the_watcher_pushes_each_commit_without_a_refresh(room):
    mentor, bo, cy = room
    seen: list[Board] = []
    with mentor.watch(seen.append, interval=0.1) as watcher:
        t0 = time.time()
        bo.label("neuron 0.3", "concept")
        assert watcher.wait_for(lambda b: len(b.records) == 1, timeout=2)
        assert time.time() - t0 < 2
        cy.label("neuron 0.3", "other")
        assert watcher.wait_for(lambda b: len(b.records) == 2, timeout=2)
    assert watcher.errors == []
    assert seen[-1].units[0].labels == {"Bo": "concept", "Cy": "other"}
    assert seen[-1].version > seen[0].version
    count = len(seen)
    bo.label("neuron 0.7", "other")
    time.sleep(0.4)
    assert len(seen) == count  # stopped


def test_two_participants_writing_at_once_lose_and_duplicate_nothing(room, make_hypothesis):
    mentor, bo, cy = room
    barrier = threading.Barrier(2)
    errors = []

    def write(session):
        try:
            barrier.wait()
            for i in range(15):
                session.label(f"neuron 0.{i}", f"{session.name}-{i}")
                if i % 3 == 0:
                    session.save(make_hypothesis(id=f"{session.name}-{i}"))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(s,)) for s in (bo, cy)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    board = mentor.board()
    keys = [(r.kind, r.id) for r in board.records]
    assert len(keys) == len(set(keys)) == 2 * (15 + 5)
    labels = mentor.labels()
    assert sorted((lab.rater, lab.label) for lab in labels) == sorted(
        (s, f"{s}-{i}") for s in ("Bo", "Cy") for i in range(15)
    )
    assert {p.name: p.hypotheses for p in board.participants} == {"Bo": 5, "Cy": 5}


def test_a_participant_cannot_overwrite_anothers_hypothesis(room, make_hypothesis):
    mentor, bo, cy = room
    cy.save(make_hypothesis(id="shared-id", claim="Cy's claim"))
    with pytest.raises(SessionError, match="may only write their own"):
        bo.save(make_hypothesis(id="shared-id", claim="Bo rewrites it"))
    [stored] = mentor.hypotheses()
    assert (stored.author, stored.hypothesis.claim) == ("Cy", "Cy's claim")


def test_only_the_mentor_hands_out_and_reveals(room):
    mentor, bo, cy = room
    with pytest.raises(SessionError, match="only the mentor can hand out"):
        bo.hand_out("Bo", Handout("planted.concept_neuron_model"), budget=10**6)
    with pytest.raises(SessionError, match="only the mentor can reveal"):
        bo.reveal()
    with pytest.raises(SessionError, match="no participant 'Dee'.*'Bo', 'Cy'"):
        mentor.hand_out("Dee", Handout("planted.concept_neuron_model"))


def test_a_handout_opens_exactly_that_model_and_counts_every_pass(room):
    mentor, bo, cy = room
    with pytest.raises(SessionError, match="has not handed 'Bo' a model yet"):
        bo.open_model()
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=3), budget=3)
    mentor.hand_out("Cy", Handout("planted.concept_neuron_model", seed=4))
    model = bo.open_model()
    assert bo.handout == Handout("planted.concept_neuron_model", seed=3)
    x = torch.randn(5, 8)
    from explorer.hypotheses import planted

    assert torch.equal(model(x), planted.concept_neuron_model(seed=3)(x))
    assert not torch.equal(cy.open_model()(x), model(x))
    assert bo.passes == 2 and bo.budget == 3
    model(x)
    with pytest.raises(SessionError, match=r"budget of 3 forward passes spent \(3 used\)"):
        model(x)
    assert bo.passes == 3 and model.spent.forward == 3  # the refused pass never ran
    # a restarted kernel: the count is in the store, not in the kernel
    again = join(_url_of(bo), mentor.code, name="Bo", key=bo.key)
    assert again.passes == 3
    with pytest.raises(SessionError, match=r"\(3 used\)"):
        again.open_model()(x)
    assert {p.name: (p.passes_spent, p.budget) for p in mentor.board().participants} == {
        "Bo": (3, 3),
        "Cy": (1, None),
    }


def _url_of(session):
    """The store URL a participant was given (without their own login)."""
    url = session.store.url
    if url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).set(username="explorer", password=None).render_as_string(False)


def test_the_reveal_opens_others_records_and_the_truth(room, make_hypothesis):
    mentor, bo, cy = room
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=1))
    mentor.hand_out("Cy", Handout("auditing.plant", seed=5, options={"steps": 1}))
    bo.save(make_hypothesis(id="bo-1"))
    cy.save(make_hypothesis(id="cy-1"))
    bo.label("neuron 0.3", "concept")
    cy.label("neuron 0.3", "other")
    assert [h.hypothesis.id for h in bo.hypotheses()] == ["bo-1"]
    assert [lab.rater for lab in bo.labels()] == ["Bo"]
    board = bo.board()
    assert board.truth is None and {r.author for r in board.records} == {"Bo"}
    with pytest.raises(SessionError, match="truth.*hidden until the mentor reveals it"):
        bo.truth()
    assert mentor.board().truth is None  # None until the reveal, for everyone
    mentor.reveal()
    assert sorted(h.hypothesis.id for h in bo.hypotheses()) == ["bo-1", "cy-1"]
    truth = bo.truth()
    assert truth["Bo"]["units"] == ["neuron 0.3"]
    from explorer.studies.auditing import random_trigger

    assert truth["Cy"]["trigger"] == random_trigger(5).to_dict()
    board = bo.board()
    assert board.revealed and board.truth == truth and board.units[0].raters == 2
    assert {r.author for r in board.records} == {"Bo", "Cy"}


def test_the_export_writes_the_rooms_records_as_markdown_and_json(room, make_hypothesis, tmp_path):
    mentor, bo, cy = room
    bo.save(make_hypothesis(id="bo-1", claim="neuron 0.3 <b>detects</b> it"))
    bo.label("neuron 0.3", "concept")
    cy.label("neuron 0.3", "concept")
    md, js = mentor.export(tmp_path / "out")
    data = json.loads(js.read_text())
    assert [h["author"] for h in data["hypotheses"]] == ["Bo"]
    assert sorted(lab["rater"] for lab in data["labels"]) == ["Bo", "Cy"]
    text = md.read_text()
    assert "&lt;b&gt;detects&lt;/b&gt;" in text and "<b>" not in text
    with pytest.raises(SessionError, match="only the mentor can export"):
        bo.export(tmp_path / "bo")
