"""anywidget's fixed 2 s model-initialization window, reproduced with anywidget alone.

The reproduction for upstream is scripts/anywidget_init_timeout_repro.py (cells marked
``# %%``; docs/troubleshooting.md has the issue text). This test runs its cells in
JupyterLab as a user would and checks what the page does: anywidget 0.11 rejects the
model's ``ready`` with "[anywidget] Failed to initialize model." (an unhandled rejection,
Playwright's ``pageerror``) 2 s after the model's creation; the view still renders once the
module has loaded, but every later message from the kernel to that model is dropped, while
other models on the page keep updating.

Case 1 (an ``initialize`` that takes 2.5 s) fails every time. Case 2 (a one-line module,
created while another widget blocks the main thread for 2.5 s in one task) races: after
the long task, anywidget's timer and the module's last loading steps are both due. The
timer ran first in 17 of 23 tries on a 2-core machine at a load average of 3-5, so the test
tries up to 8 times (all 8 lost: about 0.1% at that rate) and stops at the first timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lab_driver import run_cells, run_code

pytestmark = pytest.mark.browser

REPRO = Path(__file__).resolve().parents[2] / "scripts" / "anywidget_init_timeout_repro.py"
FAILED = "[anywidget] Failed to initialize model."
VIEWS = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .map((o) => o.innerText.trim()).filter((t) => t.startsWith('value = '))"""
TRIES = 8  # case 2 is a race the timer usually wins (module docstring)


def _cells() -> list[str]:
    """The repro's code cells, in order (its first cell is Markdown)."""
    chunks = REPRO.read_text().split("\n# %%")
    return [c.split("\n", 1)[1].strip() for c in chunks[1:]]


def _views_after(page: Any, seconds: float) -> list[str]:
    page.wait_for_timeout(seconds * 1000)  # lets Playwright deliver the page's events
    return page.evaluate(VIEWS)


def test_the_repro_has_its_cells():
    setup, slow, slow_update, busy, trivial, trivial_update = _cells()
    assert setup.startswith("import anywidget")
    assert (slow, slow_update) == ("slow = SlowInitialize()\ndisplay(slow)", "slow.value = 1")
    assert busy == "busy = Busy()\ndisplay(busy)"
    assert trivial == 'trivial = Trivial()\nbusy.send({"block_ms": 2500})\ndisplay(trivial)'
    assert trivial_update == "trivial.value = 1"


def _patch_window(page: Any, ms: int) -> None:
    """Serve anywidget's front end with its 2 s window set to ``ms`` (the only change)."""
    pattern = "AbortSignal.timeout(2000).addEventListener"

    def handle(route: Any) -> None:
        response = route.fetch()
        body = response.text()
        route.fulfill(
            response=response, body=body.replace(pattern, pattern.replace("2000", str(ms)))
        )
        patched.append(pattern in body)

    patched: list[bool] = []
    page.route("**/anywidget/static/*.js", handle)
    page.anywidget_patched = patched


def _run(page: Any, lab_server: Any, tries: int) -> tuple[list[str], list[str], list[str]]:
    """Run the repro's cells; return the page's errors and the views after case 1 and 2."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    setup, slow, slow_update, busy, trivial, trivial_update = _cells()

    # control: a one-line widget on an idle page initializes and follows its Python object
    run_cells(page, lab_server, "anywidget_repro.ipynb", setup, "control = Trivial()\ncontrol")
    assert _views_after(page, 2) == ["value = 0"]
    run_code(page, "control.value = 1")
    assert _views_after(page, 1) == ["value = 1"]
    assert errors == []

    # case 1: initialize takes 2.5 s; then its kernel object (and the control) change
    run_code(page, slow)
    page.wait_for_timeout(3500)
    run_code(page, f"{slow_update}\ncontrol.value = 2")
    case_1 = _views_after(page, 2)

    # case 2: a one-line module created while the page is busy for 2.5 s in one task
    n_errors = len(errors)
    run_code(page, busy)
    page.wait_for_timeout(1000)
    for attempt in range(1, tries + 1):
        run_code(page, trivial)
        page.wait_for_timeout(3500)
        if len(errors) > n_errors:
            print(f"case 2 timed out on try {attempt} of {tries}")
            break
    run_code(page, f"{trivial_update}\ncontrol.value = 3")
    case_2 = _views_after(page, 2)
    return errors, case_1, case_2


def test_anywidget_gives_up_on_a_model_after_2_s_and_drops_its_messages(lab_server, page):
    errors, case_1, case_2 = _run(page, lab_server, tries=TRIES)
    # each case's view rendered (value = 0) but never heard its object's update (value = 1),
    # while the control on the same page did (value = 2, then 3)
    assert case_1 == ["value = 2", "value = 0"], case_1
    assert errors[:1] == [FAILED], errors
    assert errors == [FAILED, FAILED], f"case 2 never timed out in {TRIES} tries: {errors}"
    assert case_2[0] == "value = 3" and case_2[-1] == "value = 0", case_2


def test_the_same_cells_work_with_a_longer_window(lab_server, page):
    """The cause is that timer: with only its 2000 ms raised to 20 s, no model fails and
    every view follows its object."""
    _patch_window(page, 20_000)
    errors, case_1, case_2 = _run(page, lab_server, tries=1)
    assert any(page.anywidget_patched)  # the served front end had the window to patch
    assert errors == []
    assert case_1 == ["value = 2", "value = 1"], case_1
    assert case_2 == ["value = 3", "value = 1", "value = 1"], case_2
