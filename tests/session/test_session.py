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


def test_a_commit_right_after_watch_returns_is_never_missed(tmp_path):
    """The watcher's starting point is the room when watch() returned, not when its thread
    first ran: a commit landing in between is a change (SQLite's poller)."""
    url = str(tmp_path / "room.db")
    mentor = start(url, mentor="Ada", title="week 3")
    bo = join(url, mentor.code, name="Bo")
    version = mentor._version

    def late_first_poll():  # the thread's first look comes after Bo's commit
        if threading.current_thread() is not threading.main_thread() and not bo.labels():
            bo.label("neuron 0.3", "concept")
        return version()

    mentor._version = late_first_poll
    with mentor.watch(lambda board: None, interval=0.05) as watcher:
        assert watcher.wait_for(lambda b: len(b.records) == 1, timeout=2)


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
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=5), budget=10)
    assert torch.equal(bo.open_model()(x), planted.concept_neuron_model(seed=5)(x))
    assert bo.passes == 4


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


def test_two_people_joining_with_one_name_at_once_get_one_seat(store_url):
    mentor = start(store_url, mentor="Ada", title="week 3")
    barrier = threading.Barrier(4)
    got, refused = [], []

    def take():
        barrier.wait()
        try:
            got.append(join(store_url, mentor.code, name="Bo"))
        except SessionError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 1 and len(refused) == 3
    assert all("the name 'Bo' is taken" in r for r in refused)
    assert [p.name for p in mentor.board().participants] == ["Bo"]


def test_a_handout_is_data_from_an_allow_list_never_code(room):
    mentor, bo, cy = room
    with pytest.raises(ValueError, match="unknown study 'builtins.eval' for a hand-out: one of"):
        Handout("builtins.eval", seed=1)
    with pytest.raises(ValueError, match="takes no option 'data'"):
        Handout("auditing.plant", seed=1, options={"data": "x"})
    with pytest.raises(ValueError, match="option 'steps' must be int"):
        Handout("auditing.plant", seed=1, options={"steps": "10; import os"})
    # a hand-out edited in the store is read as data and refused, not run
    from explorer.session._tables import participants_table

    with mentor._writing() as conn:
        conn.execute(
            participants_table.update()
            .where(participants_table.c.name == "Bo")
            .values(handout=json.dumps({"study": "os.system", "seed": 0, "options": {}}))
        )
    with pytest.raises(ValueError, match="unknown study 'os.system'"):
        _ = bo.handout


def test_a_watcher_whose_listening_connection_fails_polls_instead(pg_url, monkeypatch):
    import psycopg

    mentor = start(pg_url, mentor="Ada", title="week 3")

    def refuse(*args, **kwargs):
        raise psycopg.OperationalError("the server closed the connection")

    monkeypatch.setattr(psycopg, "connect", refuse)
    with mentor.watch(lambda board: None, interval=0.05) as watcher:
        monkeypatch.undo()
        join(pg_url, mentor.code, name="Bo")
        assert watcher.wait_for(lambda b: len(b.participants) == 1, timeout=5)
    assert "closed the connection" in str(watcher.errors[0])


def test_the_mentor_ends_the_room_and_nobody_joins_or_writes_after(room, make_hypothesis):
    mentor, bo, cy = room
    bo.label("neuron 0.3", "concept")
    with pytest.raises(SessionError, match="only the mentor can end the session"):
        bo.end()
    mentor.end()
    with pytest.raises(SessionError, match="has ended|no session with join code"):
        join(mentor.room_url, mentor.code, name="Dee")
    with pytest.raises(SessionError, match="has ended|was refused"):
        cy.label("neuron 0.3", "other")
    with pytest.raises(SessionError, match="has ended|was refused"):
        bo.save(make_hypothesis(id="late"))
    assert [(lab.rater, lab.label) for lab in mentor.labels()] == [("Bo", "concept")]
    assert len(mentor.board().records) == 1
