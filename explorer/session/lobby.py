"""``start`` (the mentor opens a room on a store) and ``join`` (a participant enters it
with the join code and a name, from their own kernel): each gives a ``Session``.

On PostgreSQL ``start`` installs the store's rules (``_postgres``) and creates the room's
roles; ``join`` logs in as the room's lobby (the code is its password), which may only call
the join function, and then as the participant's own new role. On SQLite the room's rows
are written directly (see ``room`` for what that does not enforce).

>>> import tempfile
>>> url = tempfile.mkdtemp() + "/room.db"
>>> mentor = start(url, mentor="Ada", title="week 3")
>>> bo = join(url, mentor.code, name="Bo")
>>> bo.label("neuron 0.3", "concept")
>>> mentor.board().units[0].labels
{'Bo': 'concept'}
>>> join(url, mentor.code, name="Bo")
Traceback (most recent call last):
...
explorer.session.SessionError: the name 'Bo' is taken in this session: choose another, or rejoin with the key you were given (join(..., key=session.key))
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa

from explorer.hypotheses.store import HypothesisStore
from explorer.session import _postgres
from explorer.session._tables import (
    create_tables,
    events_table,
    now_sql,
    participants_table,
    rooms_table,
)
from explorer.session.room import (
    ALPHABET,
    CODE_LENGTH,
    Session,
    SessionError,
    check_code,
    check_name,
    room_id,
)

__all__ = ["join", "start"]


def new_code() -> str:
    """A fresh join code: ``CODE_LENGTH`` symbols of ``ALPHABET`` from the OS's randomness."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def _postgres_url(url: str) -> bool:
    return url.startswith(("postgresql", "postgres://"))


def _with_login(url: str, user: str, password: str) -> str:
    """``url`` (a server URL) logged in as ``user``."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    parsed = sa.engine.make_url(url).set(username=user, password=password)
    return parsed.render_as_string(hide_password=False)


def start(store_url: str, *, mentor: str, title: str) -> Session:
    """Open a room on the store at ``store_url`` (PostgreSQL for a room of kernels, as a
    user that owns the store's tables and may create roles; SQLite for one machine) and
    return the mentor's Session; ``session.code`` is what participants join with."""
    check_name("mentor", mentor)
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise SessionError(f"a session's title is 1 to 200 characters, got {title!r}")
    store = HypothesisStore(store_url)
    code = new_code()
    rid = room_id(code)
    project = f"session-{rid}"
    with store._writing() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(0x6578706C6F726573)))
        create_tables(conn)
        group = lobby = None
        if conn.dialect.name == "postgresql":
            _postgres.install(conn)
            group, lobby = _postgres.open_room(conn, code, rid)
        pid = store._project_id(conn, project)
        conn.execute(
            rooms_table.insert().values(
                code=code, room_id=rid, title=title, mentor=mentor, project_id=pid,
                project=project, revealed=False, lobby_role=lobby, group_role=group,
                created=time.time(),
            )
        )  # fmt: skip
    return Session(store, code=code, name=mentor, role="mentor")


def join(store_url: str, code: str, *, name: str, key: str | None = None) -> Session:
    """Join the room ``code`` on the store at ``store_url`` as ``name`` (a participant's
    Session). A name already in the room is refused, unless ``key`` (``session.key`` of
    the earlier join) says it is the same person back after a restart."""
    code = check_code(code)
    check_name("participant", name)
    if _postgres_url(store_url):
        return _join_postgres(store_url, code, name, key)
    store = HypothesisStore(store_url)
    with store._writing() as conn:
        room = conn.execute(sa.select(rooms_table).where(rooms_table.c.code == code)).first()
        if room is None:
            store.close()
            raise SessionError(f"no session with join code {code} in {store!r}: check the code")
        if room.ended:
            store.close()
            raise SessionError(f"session {code} has ended: the mentor closed it")
        where = (participants_table.c.code == code) & (participants_table.c.name == name)
        row = conn.execute(sa.select(participants_table).where(where)).first()
        if row is not None or name == room.mentor:
            if key is None or row is None:
                store.close()
                raise SessionError(_taken(name))
            if _hash(key) != row.key_hash:
                store.close()
                raise SessionError(_wrong_key(name, code))
        else:
            key = secrets.token_hex(16)
            conn.execute(
                participants_table.insert().values(
                    code=code, name=name, key_hash=_hash(key), passes=0, joined=time.time()
                )
            )
            conn.execute(
                events_table.insert().values(
                    code=code, kind="join", ref=name, author=name, committed_at=now_sql(conn)
                )
            )
    return Session(store, code=code, name=name, role="participant", key=key)


def _first_line(err: sa.exc.DBAPIError) -> str:
    lines = str(err.orig).strip().splitlines()
    return lines[0] if lines else type(err.orig).__name__


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _wrong_key(name: str, code: str) -> str:
    return (
        f"rejoining session {code} as {name!r} was refused: the key is not the one {name!r} "
        "was given when joining (session.key of that join)"
    )


def _taken(name: str) -> str:
    return (
        f"the name {name!r} is taken in this session: choose another, or rejoin with the key "
        "you were given (join(..., key=session.key))"
    )


def _join_postgres(store_url: str, code: str, name: str, key: str | None) -> Session:
    rid = room_id(code)
    if key is None:
        key = secrets.token_hex(16)
        lobby = sa.create_engine(
            _with_login(store_url, _postgres.lobby_role(rid), code), poolclass=sa.pool.NullPool
        )
        try:
            with lobby.begin() as conn:
                conn.execute(
                    sa.text("SELECT explorer_session_join(:who, :secret)"),
                    {"who": name, "secret": key},
                )
        except sa.exc.OperationalError as err:  # the lobby's login failed: no such room
            raise SessionError(
                f"no session with join code {code} at {sa.engine.make_url(store_url).host}: "
                f"check the code (the server said: {_first_line(err)})"
            ) from None
        except sa.exc.DBAPIError as err:
            reason = _first_line(err)
            taken = ("is taken", "already exists", "duplicate key")  # two joins at once
            raise SessionError(
                _taken(name)
                if any(t in reason for t in taken)
                else f"joining was refused: {reason}"
            ) from None
        finally:
            lobby.dispose()
    login = "explorer_p_" + hashlib.sha256(f"{code}/{name}".encode()).hexdigest()[:24]
    try:
        store = HypothesisStore(_with_login(store_url, login, key))
    except (OSError, ValueError) as err:
        said = str(err).split(": ", 1)[-1].strip().splitlines()[0]
        raise SessionError(_wrong_key(name, code) + f" (the server said: {said})") from None
    return Session(store, code=code, name=name, role="participant", key=key)
