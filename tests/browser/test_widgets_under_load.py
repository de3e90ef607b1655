"""Run All while two busy processes keep both cores busy: every widget still initialises.

anywidget gives each widget model 2 s of wall-clock time, from its creation in the page, to
load the widget's module and initialise; after that the model logs "[anywidget] Failed to
initialize model." and drops every later message from the kernel (the view stops following
its Python object). A message sent to a model that is still loading holds up JupyterLab's
handling of every later kernel message until the model is ready; the backlog is then handled
in one long task (measured 1.4-2.4 s under load) in which the next widgets are created and
their 2 s run out. Our views used to open their comm and then send their computed state as
updates, i.e. exactly such messages; now each view opens once, complete
(``ExplorerWidget``), and draws in the next frame rather than inside ``render``.

That made the timeout rarer, not impossible: any other long task on the page can still
outlast anywidget's window (the CI run of 2026-12-06 logged it twice). So the views also
recover from it: once it has happened on the page, each relinks its comm and asks its kernel
object for its whole state (``explorer/views/_link.js``; test_views_relink.py forces it on
every model). A timeout may therefore be logged here, but only with the relink beside it.

The test runs the MNIST tutorial (where the failure was seen; about 2-3 minutes) beside two
busy loops it starts and stops, then checks that the page logged no initialisation failure
and that every view on the page still hears its kernel object: each widget's ``error``
trait is set from the kernel and every view's banner must show it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from lab_driver import (
    ANYWIDGET_TIMEOUT,
    RELINKED,
    anywidget_timeouts,
    error_outputs,
    open_notebook,
    run_all,
    views_follow_their_kernel,
    wait_until,
)
from test_tutorials_in_lab import NOTEBOOKS, WIDGET_OUTPUT, WIDGET_STATE

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """Two busy loops (one per core of the test machine), stopped by their own PIDs."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            burner.wait(timeout=30)


def test_every_widget_initialises_under_cpu_load(lab_server, page, busy_cores):
    name = "mnist_kitchen_sink"
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    # anywidget's rejection is unhandled: it reaches Playwright as a page error, not a log line
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    shutil.copy(NOTEBOOKS[name], lab_server.root / f"{name}.ipynb")
    open_notebook(page, lab_server.lab(f"{name}.ipynb"), f"{name}.ipynb")
    run_all(page, timeout_s=900)
    assert error_outputs(page) == []
    wait_until(
        lambda: page.evaluate(WIDGET_STATE, WIDGET_OUTPUT)["loading"] == 0,
        timeout_s=120,
        what="every widget to load",
    )
    failed = anywidget_timeouts(console)
    relinked = [line for line in console if RELINKED in line]
    assert not failed or relinked, f"{failed} and no view relinked: {ANYWIDGET_TIMEOUT}"
    assert page.js_errors == []  # nothing else failed (the timeouts are filed apart)
    print(f"anywidget timeouts: {len(failed)}, views relinked: {len(relinked)}")

    views_follow_their_kernel(page, least=4)
