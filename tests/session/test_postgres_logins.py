"""On a server that asks for passwords (as a real one does), who a participant is rests on
their login: the join code is the lobby's password, each participant's key their own, and
nobody logs in as someone else. (The other session tests use a trusting test server.)"""

from __future__ import annotations

import psycopg
import pytest
import torch
from sqlalchemy.engine import make_url

from explorer.session import Handout, SessionError, _postgres, join, start
from explorer.session.room import room_id


@pytest.fixture(scope="module")
def password_server():
    from postgres_server import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer(password="mentor-secret")
    try:
        yield server.start()
    finally:
        server.stop()


def test_logins_need_the_code_or_the_participants_own_key(password_server):
    mentor_url = password_server.new_database()
    mentor = start(mentor_url, mentor="Ada", title="week 3")
    url = make_url(mentor_url)
    room_url = mentor.room_url  # what participants get: no login in it
    assert make_url(room_url).username is None and "mentor-secret" not in room_url
    bo = join(room_url, mentor.code, name="Bo")
    cy = join(room_url, mentor.code, name="Cy")
    mentor.hand_out("Bo", Handout("planted.concept_neuron_model"), budget=10)
    bo.open_model()(torch.zeros(2, 8))
    other = "ABCDE-FGHJK" if mentor.code != "ABCDE-FGHJK" else "ABCDE-FGHJM"
    with pytest.raises(SessionError, match="no session with join code"):
        join(room_url, other, name="Dee")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=url.host, port=url.port, dbname=url.database,
            user=_postgres.lobby_role(room_id(mentor.code)), password="WRONG-CODE1",
        )  # fmt: skip
    with pytest.raises(SessionError, match="rejoining session .* as 'Cy' was refused: the key"):
        join(room_url, mentor.code, name="Cy", key=bo.key)  # Bo posing as Cy
    with pytest.raises(SessionError, match="the name 'Cy' is taken"):
        join(room_url, mentor.code, name="Cy")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=url.host, port=url.port, dbname=url.database,
            user=make_url(cy.store.url).username, password=bo.key,
        )  # fmt: skip
    back = join(room_url, mentor.code, name="Bo", key=bo.key)  # Bo's kernel restarted
    assert back.passes == 1 and back.budget == 10
    for s in (mentor, bo, cy, back):
        s.close()
