"""A long request in a real JupyterLab: the page shows it pending with the time elapsed, the
kernel runs other cells meanwhile, and Cancel stops it, leaving the view as it was.

The sweep is made slow on purpose (its metric sleeps 0.3 s per ablated copy; four layers of
16 neurons, one chunk per layer), so it runs for about 20 s unless cancelled; Cancel lands
at the next layer's chunk.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from lab_driver import kernel_json, open_notebook, run_all, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

SETUP = """\
import time, torch
from explorer.models import zoo
from explorer.analysis import metrics
from explorer.views import InterventionPanel
m = zoo.mnist_mlp(hidden=(16, 16, 16, 16), seed=0)
x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
accuracy = metrics.accuracy(y)
def slow_accuracy(logits):
    time.sleep(0.3)
    return accuracy(logits)
panel = InterventionPanel(m, (x, y), {"slow accuracy": slow_accuracy})
panel"""


def test_a_slow_sweep_shows_pending_keeps_the_kernel_free_and_cancels(lab_server, page, artifacts):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, lab_server.root / "long_requests.ipynb")
    open_notebook(page, lab_server.lab("long_requests.ipynb"), "long_requests.ipynb")
    run_all(page, timeout_s=180)
    panel = page.locator('[data-testid="intervention-panel"]').first
    sweep = panel.locator('[data-testid="sweep"]')
    sweep.wait_for(state="visible")
    pending = panel.locator('[data-testid="pending-text"]')
    assert not pending.is_visible()

    sweep.click()
    pending.wait_for(state="visible", timeout=30_000)
    assert pending.inner_text().startswith("running sweep…")
    wait_until(
        lambda: re.fullmatch(r"running sweep… [1-9]\d* s", pending.inner_text()) is not None,
        what="the elapsed seconds to count up",
    )
    panel.screenshot(path=str(artifacts / "sweep-pending.png"))
    # the kernel is free: another cell runs (and sees the sweep still running)
    seen = kernel_json(page, "import json; print(json.dumps([panel.busy, 6 * 7]))")
    assert seen == ["sweep", 42]

    panel.locator('[data-testid="cancel"]').click()
    cancelled = panel.locator('[data-testid="cancelled"]')
    cancelled.wait_for(state="visible", timeout=30_000)
    assert cancelled.inner_text().startswith("sweep cancelled after ")
    assert not pending.is_visible()
    assert panel.locator('[data-testid="sweep-heatmap"]').count() == 0  # nothing half-drawn
    wait_until(
        lambda: sweep.is_enabled() and sweep.inner_text().startswith("Sweep"),
        what="the Sweep button to come back",
    )
    panel.screenshot(path=str(artifacts / "sweep-cancelled.png"))
    state = kernel_json(
        page,
        "import json; print(json.dumps([panel.busy, panel.last_run['outcome'], "
        "panel.sweep_effects['shape'], panel.error]))",
    )
    assert state == ["", "cancelled", [0], ""]
    assert page.js_errors == []
