"""When anywidget's 2 s start-up window runs out, explorer's views still follow their kernel
objects (``explorer/views/_link.js``).

anywidget drops every kernel message to a model whose window ran out
(test_anywidget_init_timeout.py shows it with anywidget alone). On a busy machine that
happens to whichever models are created beside one long task on the page, which no test can
schedule reliably; here the window is shrunk to 1 ms instead (anywidget's front end served
with that one number changed, as test_anywidget_init_timeout.py does), so every model's runs
out before its module has even loaded. Each view must then relink, once: draw, show a value
set in the kernel while it was loading (dropped by anywidget: the relink's resync brings it
back), and show a value set afterwards. The page need not say anything about it: a kernel
message already waiting on the model's ``ready`` handles anywidget's rejection (an earlier
version waited for its unhandled rejection and, under load, never relinked). A control page
with the window as shipped shows nobody relinks.
"""

from __future__ import annotations

from typing import Any

import pytest
from lab_driver import RELINKED, run_cells, run_code, wait_until
from test_anywidget_init_timeout import FAILED, _patch_window

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = """\
import torch
torch.set_num_threads(1)
from explorer.models import zoo
from explorer.analysis import metrics
from explorer.views import InterventionPanel, NeuronView
m = zoo.mnist_mlp(hidden=(8, 8), seed=0)
x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
views = [InterventionPanel(m, (x, y), metric={"accuracy": metrics.accuracy(y)}), NeuronView(m, x)]
for v in views:
    display(v)
    v.error = "set while loading"  # anywidget drops this on a model whose window ran out"""
BANNERS = """(text) => {
  const banners = [...document.querySelectorAll('.ex-root [data-testid="error"]')];
  return {count: banners.length, shown: banners.filter((b) => b.textContent === text).length};
}"""


def _watch(page: Any) -> list[str]:
    lines: list[str] = []
    page.on("console", lambda m: lines.append(m.text))
    page.on("pageerror", lambda exc: lines.append(str(exc)))
    return lines


def _all_show(page: Any, text: str) -> bool:
    seen = page.evaluate(BANNERS, text)
    return seen["count"] == 2 and seen["shown"] == 2


def test_views_relink_when_anywidgets_window_runs_out(lab_server, page):
    _patch_window(page, 1)
    lines = _watch(page)
    run_cells(page, lab_server, "relink.ipynb", SETUP)
    assert any(page.anywidget_patched)  # the served front end had the window to patch
    # what the kernel set while the models were loading: dropped by anywidget, resynced
    wait_until(lambda: _all_show(page, "set while loading"), timeout_s=120, what="the resync")
    run_code(page, "for v in views:\n    v.error = 'set afterwards'")
    wait_until(lambda: _all_show(page, "set afterwards"), what="later updates to arrive")
    relinked = [line for line in lines if RELINKED in line]
    assert len(relinked) == len(set(relinked)) == 2, lines  # each view once
    # the page never sent anything the kernel refused, and nothing else failed
    assert page.js_errors == []


def test_nothing_relinks_on_a_page_where_the_window_never_runs_out(lab_server, page):
    lines = _watch(page)
    run_cells(page, lab_server, "relink_control.ipynb", SETUP)
    wait_until(lambda: _all_show(page, "set while loading"), what="the views to draw")
    run_code(page, "for v in views:\n    v.error = 'set afterwards'")
    wait_until(lambda: _all_show(page, "set afterwards"), what="later updates to arrive")
    assert [line for line in lines if FAILED in line or RELINKED in line] == []
