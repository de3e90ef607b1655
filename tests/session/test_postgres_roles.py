"""On PostgreSQL the store enforces a session's rules: each participant's kernel logs in as
its own role, and raw SQL on that login is refused as the API is (row-level security, no
DELETE, no budget or truth of one's own). Every test here tries the forbidden thing."""

from __future__ import annotations

import psycopg
import pytest
import torch
from sqlalchemy.engine import make_url

from explorer.session import Handout, SessionError, join, start


@pytest.fixture
def room(pg_url, make_hypothesis):
    mentor = start(pg_url, mentor="Ada", title="week 3")
    bo = join(pg_url, mentor.code, name="Bo")
    cy = join(pg_url, mentor.code, name="Cy")
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=1), budget=5)
    mentor.hand_out("Cy", Handout("planted.concept_neuron_model", seed=2), budget=5)
    cy.save(make_hypothesis(id="cy-1", claim="Cy's claim"))
    cy.label("neuron 0.3", "concept")
    yield mentor, bo, cy
    for s in (mentor, bo, cy):
        s.close()


def sql_as(session):
    """A raw connection logged in as ``session``'s participant (autocommit)."""
    url = make_url(session.store.url)
    return psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password,
        dbname=url.database, autocommit=True,
    )  # fmt: skip


def refused(conn, statement, *params):
    with pytest.raises(psycopg.Error) as err:
        conn.execute(statement, params or None)
    return str(err.value).splitlines()[0]


def test_each_participant_logs_in_as_their_own_role(room):
    mentor, bo, cy = room
    with sql_as(bo) as conn:
        me = conn.execute("SELECT session_user, explorer_session_name()").fetchone()
    assert me[0].startswith("explorer_p_") and me[1] == "Bo"
    assert make_url(bo.store.url).username != make_url(cy.store.url).username
    assert make_url(mentor.store.url).username == "explorer"


def test_a_participant_cannot_change_or_delete_anothers_rows(room):
    mentor, bo, cy = room
    with sql_as(bo) as conn:
        changed = conn.execute("UPDATE hypotheses SET claim = 'vandalised' WHERE id = 'cy-1'")
        assert changed.rowcount == 0  # Cy's row is not even visible to Bo
        changed = conn.execute("UPDATE labels SET label = 'vandalised'")
        assert changed.rowcount == 0
        assert "permission denied for table hypotheses" in refused(
            conn, "DELETE FROM hypotheses WHERE id = 'cy-1'"
        )
        assert "permission denied for table labels" in refused(conn, "DELETE FROM labels")
        assert "row-level security" in refused(
            conn,
            "INSERT INTO labels (project_id, unit, item, rater, label, created) "
            "VALUES (explorer_session_project(), 'neuron 0.1', 'unit', 'Cy', 'forged', 'now')",
        )
        assert "row-level security" in refused(
            conn,
            "INSERT INTO hypotheses (id, project_id, author, claim, units, spec, created, updated)"
            " VALUES ('forged', explorer_session_project(), 'Cy', 'x', '', '{}', 'now', 'now')",
        )
        assert "row-level security" in refused(
            conn,
            "INSERT INTO verdicts (hypothesis_id, status, value, ci_low, ci_high, "
            "model_fingerprint, created, record) VALUES ('cy-1', 'refuted', 0, 0, 0, '', '', '{}')",
        )
    [stored] = mentor.hypotheses()
    assert (stored.author, stored.hypothesis.claim) == ("Cy", "Cy's claim")
    assert [(lab.rater, lab.label) for lab in mentor.labels()] == [("Cy", "concept")]


def test_the_api_translates_the_stores_refusal_into_a_sentence(room, make_hypothesis):
    mentor, bo, cy = room
    bo._check_own = lambda _id: None  # as if the kernel's own check were bypassed
    with pytest.raises(SessionError, match="id is another person's record.*may only write"):
        bo.save(make_hypothesis(id="cy-1", claim="Bo rewrites it"))
    bo.name = "Cy"  # a kernel that lies about its name: the store knows better
    with pytest.raises(
        SessionError, match="labelling neuron 0.3 was refused: .*only write their own"
    ):
        bo.label("neuron 0.3", "forged")
    assert [(lab.rater, lab.label) for lab in mentor.labels()] == [("Cy", "concept")]


def test_a_participant_cannot_read_others_hypotheses_or_the_truth_before_the_reveal(room):
    mentor, bo, cy = room
    bo.label("neuron 0.3", "other")
    with sql_as(bo) as conn:
        assert conn.execute("SELECT id FROM hypotheses").fetchall() == []
        assert conn.execute("SELECT rater FROM labels").fetchall() == [("Bo",)]
        assert "permission denied for table session_truth" in refused(
            conn, "SELECT * FROM session_truth"
        )
        assert "hidden until the mentor reveals it" in refused(
            conn, "SELECT * FROM explorer_session_truth()"
        )
        assert conn.execute("SELECT name FROM projects").fetchall() == [(mentor.project,)]
        assert "permission denied" in refused(conn, "UPDATE session_rooms SET revealed = true")
    bo._revealed = lambda conn: True  # as if the kernel's own check were bypassed
    with pytest.raises(SessionError, match="truth.*hidden until the mentor reveals it"):
        bo.truth()
    assert [h.hypothesis.id for h in bo.hypotheses()] == []
    mentor.reveal()
    with sql_as(bo) as conn:
        assert conn.execute("SELECT id FROM hypotheses").fetchall() == [("cy-1",)]
        truth = dict(conn.execute("SELECT * FROM explorer_session_truth()").fetchall())
    assert sorted(truth) == ["Bo", "Cy"]


def test_a_participant_cannot_raise_their_budget_or_reset_their_count(room):
    mentor, bo, cy = room
    model = bo.open_model()
    for _ in range(5):
        model(torch.zeros(1, 8))
    with sql_as(bo) as conn:
        for change in ("budget = 1000000", "passes = 0"):
            assert "permission denied for table session_participants" in refused(
                conn, f"UPDATE session_participants SET {change}"
            )
        assert "permission denied" in refused(conn, "DELETE FROM session_participants")
        assert "budget of 5 forward passes spent (5 used)" in refused(
            conn, "SELECT * FROM explorer_session_spend(1)"
        )
        assert "only ever added" in refused(conn, "SELECT * FROM explorer_session_spend(-5)")
    with pytest.raises(SessionError, match=r"budget of 5 forward passes spent \(5 used\)"):
        model(torch.zeros(1, 8))
    assert bo.passes == 5


def test_the_lobby_login_only_joins(room, pg_url):
    mentor, bo, cy = room
    from explorer.session import _postgres
    from explorer.session.room import room_id

    url = make_url(pg_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=_postgres.lobby_role(room_id(mentor.code)),
        password=mentor.code, dbname=url.database, autocommit=True,
    ) as conn:  # fmt: skip
        for table in ("hypotheses", "labels", "session_participants", "session_truth"):
            assert "permission denied" in refused(conn, f"SELECT * FROM {table}")
        assert "permission denied" in refused(conn, "SELECT * FROM explorer_session_spend(1)")
    with sql_as(bo) as conn:  # a participant cannot join others in
        assert "permission denied" in refused(conn, "SELECT explorer_session_join('Mallory', 'x')")


def test_a_stores_other_users_keep_their_rows(room, postgres_server, pg_url):
    """Row-level security on the shared tables applies to participants only: another user
    of the store (no participant) still reads every row of every project."""
    mentor, bo, cy = room
    url = make_url(pg_url)
    admin = dict(host=url.host, port=url.port, dbname=url.database, autocommit=True)
    with psycopg.connect(user="explorer", **admin) as conn:
        conn.execute("DROP ROLE IF EXISTS analyst")
        conn.execute("CREATE ROLE analyst LOGIN")
        conn.execute("GRANT SELECT ON hypotheses, labels TO analyst")
    with psycopg.connect(user="analyst", **admin) as conn:
        assert conn.execute("SELECT id FROM hypotheses").fetchall() == [("cy-1",)]


def test_ending_the_room_drops_its_roles(room):
    mentor, bo, cy = room
    logins = [make_url(s.store.url).username for s in (bo, cy)]
    mentor.end()
    with psycopg.connect(**_admin(mentor)) as conn:
        left = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) OR rolname LIKE %s",
            (logins, f"%{mentor.room_id}"),
        ).fetchall()
    assert left == []
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        sql_as(bo)
    with pytest.raises(SessionError, match="labelling neuron 0.3 was refused: .*no right"):
        bo.label("neuron 0.3", "late")  # a connection already open loses its privileges


def _admin(session):
    url = make_url(session.store.url)
    return dict(host=url.host, port=url.port, user=url.username, dbname=url.database)
