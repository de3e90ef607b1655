"""A live session for real: a mentor's page and three participants' pages in Chromium, each
notebook with its own kernel, on one throwaway PostgreSQL server.

The mentor runs ``notebooks/live_session.ipynb`` up to the hand-outs (which wait for the
three to join); each participant runs ``notebooks/participant.ipynb`` with the join code and
their name written into its first cell: they join, wait for their model, label 24 examples,
and test a hypothesis from code. Then two participants press Test in their widgets at the
same moment, and the third a little later. The mentor's board, never refreshed, must show
every record of the store within 2 s of its commit (the page's own clock when the record's
row first appears, against the store's commit time), each once. A participant's attempts to
read the truth or others' records, or to change another's record, fail with a sentence.
The mentor's Reveal button brings the truth onto the board.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_driver import (
    ALL_EXECUTED,
    NOTEBOOK_READY,
    error_outputs,
    kernel_json,
    lab_page,
    open_notebook,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NAMES = ("bo", "cy", "dee")
BOUND_S = 2.0  # the bound: commit to the mentor's page

# the page's own record of when each record's row first appeared on the mentor's board
WATCH_BOARD = """() => {
  window.__seen = {};
  const note = () => {
    for (const el of document.querySelectorAll('[data-testid="record"]')) {
      const key = el.getAttribute('data-record');
      if (!(key in window.__seen)) window.__seen[key] = Date.now() / 1000;
    }
  };
  note();
  new MutationObserver(note).observe(document.body, { childList: true, subtree: true });
}"""
RECORDS_SHOWN = """() => Array.from(document.querySelectorAll(
  '[data-testid="session-board"] [data-testid="record"]')).map((el) => el.getAttribute('data-record'))"""
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"  # not awaited


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    from postgres_server import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server.new_database()
    finally:
        server.stop()


# the kernel's own record of when each record first reached the mentor's SessionBoard: a
# late record's delay split into the kernel's part and the page's
KERNEL_SEEN = """\
import time
kernel_seen = {}
def _note(board):
    now = time.time()
    for r in board.records:
        kernel_seen.setdefault(f"{r.kind}:{r.id}", now)
live.on_board.append(_note)"""


def _notebook(
    source: Path, target: Path, keep: int, replace: dict[str, str], extra: str = ""
) -> None:
    """Copy the first ``keep`` cells of ``source`` to ``target``, with its first code cell's
    settings written in (as a person types them into the cell), and ``extra`` code run
    after the cell that shows the board."""
    nb = nbformat.read(source, as_version=4)
    nb.cells = nb.cells[:keep]
    if extra:
        at = next(i for i, c in enumerate(nb.cells) if "SessionBoard(mentor)" in c.source)
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(extra))
    setup = next(c for c in nb.cells if c.cell_type == "code")
    for old, new in replace.items():
        assert old in setup.source, old
        setup.source = setup.source.replace(old, new)
    nbformat.write(nb, target)


@contextmanager
def person(browser: Any, artifacts: Path, name: str) -> Iterator[Any]:
    """One person's browser: a page in a context of its own, its errors collected, a full
    screenshot of it at the end."""
    screenshot = artifacts / f"live-session-{name}.png"
    with lab_page(browser, screenshot, width=1300, full_page=True) as page:
        yield page


def _store_records(url: str) -> set[str]:
    """Every label, hypothesis and verdict in the store, read as its owner (not a participant)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as conn:
        rows = conn.execute(
            "SELECT kind || ':' || ref FROM session_events "
            "WHERE kind IN ('label', 'hypothesis', 'verdict')"
        ).fetchall()
    return {r[0] for r in rows}


def _refusals(page: Any) -> dict[str, Any]:
    code = """\
import json, psycopg
from sqlalchemy.engine import make_url
out = {}
try:
    me.truth()
except SessionError as refused:
    out["truth"] = str(refused)
try:
    me.save(Hypothesis(id="bo-2", claim="neuron 0.1 does it all", units="neuron 0.1",
                       measure=NeuronSelectivity(), threshold=0.5,
                       formation=formation, held_out=held_out))
except SessionError as refused:
    out["change"] = str(refused)
u = make_url(me.store.url)
with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                     dbname=u.database, autocommit=True) as conn:
    out["authors"] = sorted({r[0] for r in conn.execute("SELECT author FROM hypotheses")})
    out["raters"] = sorted({r[0] for r in conn.execute("SELECT rater FROM labels")})
    out["vandalised"] = conn.execute("UPDATE hypotheses SET claim = 'x' WHERE id = 'bo-2'").rowcount
print(json.dumps(out))"""
    return kernel_json(page, code)


def test_a_room_of_four_kernels_on_postgresql(
    lab_server, browser, artifacts, store_url, cpu_to_itself
):
    # cpu_to_itself: the 2 s bound is the room's, not that of a machine whose cores another
    # test keeps busy on purpose
    started = time.monotonic()
    mentor_nb, root = "mentor.ipynb", lab_server.root
    _notebook(REPO / "notebooks" / "live_session.ipynb", root / mentor_nb, keep=6, replace={
        'os.environ.get("EXPLORER_STORE", "live_session.db")': repr(store_url),
        'int(os.environ.get("EXPLORER_ROOM_SIZE", "0"))': str(len(NAMES)),
    }, extra=KERNEL_SEEN)  # fmt: skip
    with person(browser, artifacts, "mentor") as mentor:
        open_notebook(mentor, lab_server.lab(mentor_nb), mentor_nb)
        mentor.evaluate(RUN_ALL)  # its hand-out cell waits for the room
        board = mentor.locator('[data-testid="session-board"]').first
        code_shown = board.locator('[data-testid="join-code"]')
        code_shown.wait_for(state="visible", timeout=120_000)
        code = code_shown.inner_text().strip()
        mentor.evaluate(WATCH_BOARD)

        pages: dict[str, Any] = {}
        with (
            person(browser, artifacts, "bo") as bo,
            person(browser, artifacts, "cy") as cy,
            person(browser, artifacts, "dee") as dee,
        ):
            pages = {"bo": bo, "cy": cy, "dee": dee}
            for name, page in pages.items():
                path = f"{name}.ipynb"
                _notebook(REPO / "notebooks" / "participant.ipynb", root / path, keep=99, replace={
                    'os.environ.get("EXPLORER_STORE", "live_session.db")': repr(store_url),
                    'os.environ.get("EXPLORER_JOIN_CODE", "")': repr(code),
                    'os.environ.get("EXPLORER_NAME", "")': repr(name),
                })  # fmt: skip
                page.goto(lab_server.lab(path))  # the three open side by side
            for name, page in pages.items():
                path = f"{name}.ipynb"
                page.wait_for_function(NOTEBOOK_READY, arg=path, timeout=180_000)
                page.evaluate(RUN_ALL)
            for page in (*pages.values(), mentor):
                page.wait_for_function(ALL_EXECUTED, timeout=300_000, polling=500)
                assert error_outputs(page) == []

            # two participants press Test at the same moment, the third a moment later
            buttons = {n: p.locator('[data-testid="hypothesis-widget"] [data-testid="test"]')
                       for n, p in pages.items()}  # fmt: skip
            for button in buttons.values():
                button.wait_for(state="visible")
            buttons["bo"].click()
            buttons["cy"].click()
            for name in ("bo", "cy"):
                status = pages[name].locator('[data-testid="verdict-status"]').first
                status.wait_for(state="visible", timeout=60_000)
            buttons["dee"].click()
            dee.locator('[data-testid="verdict-status"]').first.wait_for(
                state="visible", timeout=60_000
            )

            # the store: 24 labels, two hypotheses and two verdicts per participant
            expected = _store_records(store_url)
            kinds = [key.split(":", 1)[0] for key in expected]
            assert (kinds.count("label"), kinds.count("hypothesis"), kinds.count("verdict")) == (
                24 * len(NAMES),
                2 * len(NAMES),
                2 * len(NAMES),
            )
            # the mentor's board, never refreshed, shows each of them, once
            wait_until(
                lambda: set(mentor.evaluate(RECORDS_SHOWN)) >= expected,
                timeout_s=10,
                what="every record on the mentor's board",
            )
            shown = mentor.evaluate(RECORDS_SHOWN)
            assert len(shown) == len(set(shown)) == len(expected)  # none lost, none twice
            assert set(shown) == expected
            assert mentor.locator('[data-testid="refresh"]').count() == 0
            committed, in_kernel = kernel_json(mentor, (
                "import json; print(json.dumps([{f'{r.kind}:{r.id}': r.committed_at "
                "for r in mentor.board().records}, kernel_seen]))"
            ))  # fmt: skip
            seen = mentor.evaluate("() => window.__seen")
            late = {k: {"page": round(seen[k] - committed[k], 3),
                        "kernel": round(in_kernel[k] - committed[k], 3)}
                    for k in expected if seen[k] - committed[k] > BOUND_S}  # fmt: skip
            delays = sorted(seen[k] - committed[k] for k in expected)
            kernel = sorted(in_kernel[k] - committed[k] for k in expected)
            print(f"board latency over {len(delays)} records, commit to the mentor's page: "
                  f"median {delays[len(delays) // 2]:.3f} s, p95 "
                  f"{delays[int(0.95 * (len(delays) - 1))]:.3f} s, max {delays[-1]:.3f} s; "
                  f"to the kernel's board: median {kernel[len(kernel) // 2]:.3f} s, "
                  f"max {kernel[-1]:.3f} s")  # fmt: skip
            assert late == {}, f"records on the mentor's page later than {BOUND_S} s: {late}"

            # a participant cannot read the hidden nor change another's: sentences
            refused = _refusals(cy)
            assert refused["truth"] == (
                "reading the truth was refused: it is hidden until the mentor reveals it"
            )
            assert "'bo-2'" in refused["change"] and "refused" in refused["change"]
            assert "may only write their own" in refused["change"]
            assert refused["authors"] == ["cy"] and refused["raters"] == ["cy"]
            assert refused["vandalised"] == 0
            assert kernel_json(bo, (
                "import json; print(json.dumps([h.hypothesis.claim for h in me.hypotheses() "
                "if h.hypothesis.id == 'bo-2']))"
            )) == ["neuron 0.3 fires on every example with the concept"]  # fmt: skip

            # the reveal: the mentor's button; the truth reaches every board
            assert board.locator('[data-testid="truth-hidden"]').is_visible()
            board.locator('[data-testid="reveal"]').click()
            truth = board.locator('[data-testid="truth-value"]')
            wait_until(lambda: truth.count() == len(NAMES), timeout_s=10, what="the truth")
            assert all("neuron 0.3" in t for t in truth.all_inner_texts())
            correct = board.locator('[data-testid="correct"]').all_inner_texts()
            assert len(correct) == len(NAMES) and "hidden" not in correct
            board.screenshot(path=str(artifacts / "live-session-board-revealed.png"))
            wait_until(
                lambda: cy.locator('[data-testid="truth-value"]').count() == len(NAMES),
                timeout_s=10,
                what="the truth on a participant's own board",
            )
            for page in (*pages.values(), mentor):
                assert page.js_errors == []
    lab_server.shutdown_kernels()
    print(f"the room took {time.monotonic() - started:.0f} s")
