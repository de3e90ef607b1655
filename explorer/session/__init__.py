"""A live session: a mentor and a room of participants, each in their own kernel, on one
store (PostgreSQL for a room, SQLite for one machine).

``start`` opens a room and gives the mentor a join code; ``join`` gives each participant a
``Session`` whose labels, hypotheses and verdicts carry the room and their name. The mentor
hands out models (``Handout``: a study on an allow-list, a seed, JSON parameters) with a
budget of forward passes, watches the ``Board`` update itself, reveals the hidden records
and the truth when ready, and exports the room. Who may read or write what is enforced by
the store: PostgreSQL roles and row-level security (``_postgres``); on SQLite, which has no
server roles, by this package's checks only.

>>> import tempfile, torch
>>> url = tempfile.mkdtemp() + "/room.db"
>>> mentor = start(url, mentor="Ada", title="Induction heads, week 3")
>>> bo = join(url, mentor.code, name="Bo")
>>> mentor.hand_out("Bo", Handout("planted.concept_neuron_model", seed=3), budget=2)
>>> model = bo.open_model()
>>> _ = model(torch.zeros(1, 8)); _ = model(torch.zeros(1, 8))
>>> model(torch.zeros(1, 8))
Traceback (most recent call last):
...
explorer.session.SessionError: a forward pass was refused: budget of 2 forward passes spent (2 used): ask the mentor for more
"""

from __future__ import annotations

from explorer.session.board import Board, BoardRecord, LeaderRow, ParticipantRow, UnitRow
from explorer.session.handout import STUDIES, Handout
from explorer.session.lobby import join, start
from explorer.session.room import Session, SessionError
from explorer.session.watch import Watcher

__all__ = [
    "STUDIES",
    "Board",
    "BoardRecord",
    "Handout",
    "LeaderRow",
    "ParticipantRow",
    "Session",
    "SessionError",
    "UnitRow",
    "Watcher",
    "join",
    "start",
]
