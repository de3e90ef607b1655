"""A session's rules written into PostgreSQL: roles, row-level security, the functions a
participant may call, and the triggers that log and announce every commit.

Design (one store, many rooms; every name here is installed once per database):

- ``explorer_participant`` (NOLOGIN) holds the table privileges every participant has; each
  room has a group role (``explorer_room_<room id>``) inside it, and each participant a
  LOGIN role (``explorer_p_<hash of code and name>``) inside their room's group, with a
  password only their kernel knows (it chose it when joining).
- Joining: the room's lobby role (``explorer_lobby_<room id>``, password: the join code)
  may do one thing, call ``explorer_session_join(name, password)``, a SECURITY DEFINER
  function (owned by the mentor, who needs CREATEROLE) that refuses a taken name and
  creates the participant's role. A wrong code fails to log in.
- Row-level security on the hypothesis tables: a participant reads their own project's rows,
  only their own until the reveal; inserts and updates only rows whose author or rater is
  their own name (the store, not their kernel, says who they are: ``session_user``); has no
  DELETE at all. Roles that are no participant keep every row (policy ``explorer_others``);
  the tables' owner (the mentor) bypasses RLS.
- Budget and truth: participants have no privilege on ``session_participants`` beyond
  SELECT and none on ``session_truth``; ``explorer_session_spend(n)`` adds passes and refuses
  beyond the budget, ``explorer_session_truth()`` refuses before the reveal.
- ``explorer_session_log`` (a trigger on labels, hypotheses, verdicts) appends to
  ``session_events`` with the server's clock and NOTIFYs the room's channel.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

GROUP = "explorer_participant"
_ME = "SELECT {col} FROM session_participants p JOIN session_rooms r ON r.code = p.code WHERE p.role_name = session_user"
_TOUCHED = ("hypotheses", "labels", "verdicts", "projects")
_ROOM_TABLES = ("session_rooms", "session_participants", "session_events")


def _definer(name: str, args: str, returns: str, body: str, *, stable: bool = False) -> str:
    volatility = "STABLE " if stable else ""
    return (
        f"CREATE OR REPLACE FUNCTION {name}({args}) RETURNS {returns} LANGUAGE plpgsql "
        f"{volatility}SECURITY DEFINER SET search_path = public, pg_temp AS $fn$ {body} $fn$"
    )


def _functions() -> list[str]:
    lookups = [
        ("explorer_session_name", "text", "p.name"),
        ("explorer_session_code", "text", "p.code"),
        ("explorer_session_project", "integer", "r.project_id"),
        ("explorer_session_revealed", "boolean", "r.revealed"),
    ]
    out = [
        _definer(name, "", returns, f"BEGIN RETURN ({_ME.format(col=col)}); END", stable=True)
        for name, returns, col in lookups
    ]
    out.append(
        _definer(
            "explorer_session_spend",
            "n integer",
            "TABLE(passes integer, budget integer)",
            """
            DECLARE row record;
            BEGIN
              SELECT p.code, p.passes, p.budget, r.room_id INTO row FROM session_participants p
                JOIN session_rooms r ON r.code = p.code WHERE p.role_name = session_user FOR UPDATE OF p;
              IF NOT FOUND THEN RAISE EXCEPTION 'this login is no participant of a session'; END IF;
              IF n < 0 THEN RAISE EXCEPTION 'passes are only ever added, got %', n; END IF;
              IF row.budget IS NOT NULL AND row.passes + n > row.budget THEN
                RAISE EXCEPTION 'budget of % forward passes spent (% used)',
                  to_char(row.budget, 'FM999,999,999,999'), to_char(row.passes, 'FM999,999,999,999')
                  USING ERRCODE = 'check_violation';
              END IF;
              UPDATE session_participants p SET passes = p.passes + n WHERE p.role_name = session_user;
              PERFORM pg_notify('explorer_session_' || row.room_id, 'passes');
              RETURN QUERY SELECT row.passes + n, row.budget;
            END""",
        )
    )
    out.append(
        _definer(
            "explorer_session_truth",
            "",
            "TABLE(name text, truth text)",
            """
            BEGIN
              IF NOT coalesce(explorer_session_revealed(), false) THEN
                RAISE EXCEPTION 'the truth is hidden until the mentor reveals it'
                  USING ERRCODE = 'insufficient_privilege';
              END IF;
              RETURN QUERY SELECT t.name::text, t.truth FROM session_truth t
                WHERE t.code = explorer_session_code();
            END""",
            stable=True,
        )
    )
    out.append(
        _definer(
            "explorer_session_join",
            "who text, secret text",
            "text",
            """
            DECLARE room record; login text;
            BEGIN
              SELECT * INTO room FROM session_rooms WHERE lobby_role = session_user;
              IF NOT FOUND THEN RAISE EXCEPTION 'this login is no session''s lobby'; END IF;
              IF who IS NULL OR length(btrim(who)) = 0 OR length(who) > 60 OR who ~ '[[:cntrl:]]' THEN
                RAISE EXCEPTION 'a participant''s name is 1 to 60 printable characters, got %',
                  quote_literal(coalesce(who, '')) USING ERRCODE = 'check_violation';
              END IF;
              IF who = room.mentor OR EXISTS (SELECT 1 FROM session_participants
                  WHERE code = room.code AND name = who) THEN
                RAISE EXCEPTION 'the name % is taken in this session: choose another, or rejoin with the key you were given',
                  quote_literal(who) USING ERRCODE = 'unique_violation';
              END IF;
              login := 'explorer_p_' || substr(encode(sha256(convert_to(room.code || '/' || who, 'UTF8')), 'hex'), 1, 24);
              EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', login, secret, room.group_role);
              INSERT INTO session_participants (code, name, role_name, passes, joined)
                VALUES (room.code, who, login, 0, extract(epoch FROM clock_timestamp()));
              INSERT INTO session_events (code, kind, ref, author, committed_at)
                VALUES (room.code, 'join', who, who, extract(epoch FROM clock_timestamp()));
              PERFORM pg_notify('explorer_session_' || room.room_id, 'join');
              RETURN login;
            END""",
        )
    )
    out.append(
        _definer(
            "explorer_session_log",
            "",
            "trigger",
            """
            DECLARE room record; who text; ref text; kind text;
            BEGIN
              IF TG_TABLE_NAME = 'verdicts' THEN
                SELECT r.code, r.room_id, h.author AS author INTO room FROM hypotheses h
                  JOIN session_rooms r ON r.project_id = h.project_id WHERE h.id = NEW.hypothesis_id;
                who := room.author; ref := NEW.id::text; kind := 'verdict';
              ELSIF TG_TABLE_NAME = 'labels' THEN
                SELECT r.code, r.room_id INTO room FROM session_rooms r WHERE r.project_id = NEW.project_id;
                who := NEW.rater; ref := NEW.id::text; kind := 'label';
              ELSE
                SELECT r.code, r.room_id INTO room FROM session_rooms r WHERE r.project_id = NEW.project_id;
                who := NEW.author; ref := NEW.id; kind := 'hypothesis';
              END IF;
              IF room.code IS NOT NULL THEN
                INSERT INTO session_events (code, kind, ref, author, committed_at)
                  VALUES (room.code, kind, ref, who, extract(epoch FROM clock_timestamp()));
                PERFORM pg_notify('explorer_session_' || room.room_id, kind);
              END IF;
              RETURN NEW;
            END""",
        )
    )
    return out


_SIGNATURES = {
    "explorer_session_name": "()",
    "explorer_session_code": "()",
    "explorer_session_project": "()",
    "explorer_session_revealed": "()",
    "explorer_session_spend": "(integer)",
    "explorer_session_truth": "()",
    "explorer_session_join": "(text, text)",
}


def _policies() -> list[str]:
    # each lookup in a scalar subquery: evaluated once per statement (an InitPlan), not per row
    me, mine = "(SELECT explorer_session_name())", "(SELECT explorer_session_project())"
    hidden = "(SELECT explorer_session_revealed())"
    rules = {
        "hypotheses": [
            ("read", "SELECT", f"project_id = {mine} AND (author = {me} OR {hidden})", None),
            ("insert", "INSERT", None, f"project_id = {mine} AND author = {me}"),
            ("update", "UPDATE", f"project_id = {mine} AND author = {me}",
             f"project_id = {mine} AND author = {me}"),
        ],
        "labels": [
            ("read", "SELECT", f"project_id = {mine} AND (rater = {me} OR {hidden})", None),
            ("insert", "INSERT", None, f"project_id = {mine} AND rater = {me}"),
            ("update", "UPDATE", f"project_id = {mine} AND rater = {me}",
             f"project_id = {mine} AND rater = {me}"),
        ],
        "verdicts": [
            ("read", "SELECT", "EXISTS (SELECT 1 FROM hypotheses h WHERE h.id = hypothesis_id)", None),
            ("insert", "INSERT", None, "EXISTS (SELECT 1 FROM hypotheses h WHERE "
             f"h.id = hypothesis_id AND h.author = {me} AND h.project_id = {mine})"),
        ],
        "projects": [("read", "SELECT", f"id = {mine}", None)],
        "session_rooms": [("read", "SELECT", "code = (SELECT explorer_session_code())", None)],
        "session_participants": [("read", "SELECT", "code = (SELECT explorer_session_code())", None)],
        "session_events": [
            ("read", "SELECT", "code = (SELECT explorer_session_code()) AND (author = "
             f"{me} OR {hidden} OR kind NOT IN ('label', 'hypothesis', 'verdict'))", None),
        ],
    }  # fmt: skip
    out = []
    for table, policies in rules.items():
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if table in _TOUCHED:  # a store's other users (no participants) keep every row
            others = f"NOT pg_has_role(current_user, '{GROUP}', 'MEMBER')"
            out.append(f"DROP POLICY IF EXISTS explorer_others ON {table}")
            out.append(
                f"CREATE POLICY explorer_others ON {table} USING ({others}) WITH CHECK ({others})"
            )
        for name, command, using, check in policies:
            out.append(f"DROP POLICY IF EXISTS explorer_{name} ON {table}")
            text = f"CREATE POLICY explorer_{name} ON {table} FOR {command} TO {GROUP}"
            text += f" USING ({using})" if using else ""
            text += f" WITH CHECK ({check})" if check else ""
            out.append(text)
    return out


def _grants() -> list[str]:
    out = [f"REVOKE ALL ON session_truth FROM {GROUP}"]
    for fn, args in _SIGNATURES.items():
        out.append(f"REVOKE ALL ON FUNCTION {fn}{args} FROM PUBLIC")
        if fn != "explorer_session_join":
            out.append(f"GRANT EXECUTE ON FUNCTION {fn}{args} TO {GROUP}")
    out += [
        f"GRANT SELECT, INSERT, UPDATE ON hypotheses, labels TO {GROUP}",
        f"GRANT SELECT, INSERT ON verdicts TO {GROUP}",
        f"GRANT SELECT ON projects, schema_version, {', '.join(_ROOM_TABLES)} TO {GROUP}",
        f"GRANT USAGE ON SEQUENCE labels_id_seq, verdicts_id_seq TO {GROUP}",
    ]
    return out


def _triggers() -> list[str]:
    out = []
    for table, ops in (("labels", "INSERT OR UPDATE"), ("hypotheses", "INSERT OR UPDATE"),
                       ("verdicts", "INSERT")):  # fmt: skip
        out.append(f"DROP TRIGGER IF EXISTS explorer_session_log ON {table}")
        out.append(
            f"CREATE TRIGGER explorer_session_log AFTER {ops} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION explorer_session_log()"
        )
    return out


def _run(conn: Connection, statement: str) -> None:
    """One statement through the driver's cursor, without parameters (plpgsql's ``%``
    placeholders must reach the server as they are)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def install(conn: Connection) -> None:
    """Install (or refresh) the roles, functions, triggers and policies; in the caller's
    transaction, which holds the store's schema lock."""
    _run(
        conn,
        f"DO $do$ BEGIN CREATE ROLE {GROUP} NOLOGIN; EXCEPTION WHEN duplicate_object OR "
        "unique_violation THEN NULL; END $do$",
    )
    for statement in [*_functions(), *_triggers(), *_policies(), *_grants()]:
        _run(conn, statement)


def open_room(conn: Connection, code: str, room_id: str) -> tuple[str, str]:
    """The room's group and lobby roles (the lobby's password is the join code)."""
    group, lobby = f"explorer_room_{room_id}", f"explorer_lobby_{room_id}"
    _run(conn, f"CREATE ROLE {group} NOLOGIN IN ROLE {GROUP}")
    # a utility statement takes no bound parameters; the code is of the join alphabet only
    _run(conn, f"CREATE ROLE {lobby} LOGIN PASSWORD '{code}'")
    _run(conn, f"GRANT EXECUTE ON FUNCTION explorer_session_join(text, text) TO {lobby}")
    return group, lobby


def close_room(conn: Connection, group: str, lobby: str, logins: list[str]) -> None:
    """Drop the room's lobby, every participant's login and the group: nobody joins, logs
    in or writes any more (a login still connected loses every privilege with its group)."""
    _run(conn, f"REVOKE EXECUTE ON FUNCTION explorer_session_join(text, text) FROM {lobby}")
    for role in [lobby, *logins, group]:
        _run(conn, f"DROP ROLE IF EXISTS {role}")


def lobby_role(room_id: str) -> str:
    return f"explorer_lobby_{room_id}"
