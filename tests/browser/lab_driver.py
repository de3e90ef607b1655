"""Driving JupyterLab / Notebook 7 from Playwright through the app object they expose.

``--LabApp.expose_app_in_browser`` puts the application at ``window.jupyterapp``; its
command registry runs cells exactly as the menus do, and the notebook model gives the
outputs back, so a test can ask the kernel for the numbers a view should be showing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOTEBOOK_READY = """(path) => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) return false;
  const session = panel.sessionContext && panel.sessionContext.session;
  const kernel = session && session.kernel;
  return !!(kernel && kernel.status === 'idle' && panel.content && panel.content.widgets.length);
}"""

ALL_EXECUTED = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const session = panel && panel.sessionContext && panel.sessionContext.session;
  const kernel = session && session.kernel;
  if (!kernel) return false;
  const cells = panel.content.widgets.filter((c) => c.model.type === 'code');
  return kernel.status === 'idle' && cells.every((c) => c.model.executionCount !== null);
}"""

ERROR_OUTPUTS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const errors = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    for (const out of cell.model.outputs.toJSON()) {
      if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
    }
  }
  return errors;
}"""

RUN_CODE = """async (code) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const nb = panel.content;
  nb.activeCellIndex = nb.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  const cell = nb.activeCell;
  cell.model.sharedModel.setSource(code);
  await app.commands.execute('notebook:run-cell');
  const kernel = panel.sessionContext.session.kernel;
  const deadline = Date.now() + 300000;
  while (!(cell.model.executionCount !== null && kernel.status === 'idle')) {
    if (Date.now() > deadline) throw new Error('the cell did not finish in 300 s: ' + code);
    await new Promise((r) => setTimeout(r, 100));
  }
  return cell.model.outputs.toJSON();
}"""


def open_notebook(page: Any, url: str, path: str, timeout_s: float = 180) -> None:
    """Open the notebook at ``path`` (relative to the server root) and wait for its kernel."""
    page.goto(url)
    page.wait_for_function(NOTEBOOK_READY, arg=path, timeout=timeout_s * 1000)


def run_all(page: Any, timeout_s: float = 900) -> None:
    """Run every cell (as Run > Run All Cells) and wait until all have run."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_EXECUTED, timeout=timeout_s * 1000, polling=1000)


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def run_cells(page: Any, lab_server: Any, name: str, *sources: str, timeout_s: float = 180) -> None:
    """Write a notebook ``name`` of code cells ``sources`` into the Lab server's root, open
    it and run all its cells."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, lab_server.root / name)
    open_notebook(page, lab_server.lab(name), name)
    run_all(page, timeout_s=timeout_s)


def error_outputs(page: Any) -> list[str]:
    return page.evaluate(ERROR_OUTPUTS)


def run_code(page: Any, code: str) -> list[dict[str, Any]]:
    """Append a cell with ``code``, run it in the notebook's kernel, return its outputs."""
    return page.evaluate(RUN_CODE, code)


def kernel_json(page: Any, code: str) -> Any:
    """Run ``code`` (whose last line prints one JSON document) and parse what it printed."""
    outputs = run_code(page, code)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o.get("output_type") == "error"]
    if errors:
        raise AssertionError(f"kernel code failed: {errors}")
    return json.loads(text.strip().splitlines()[-1])


def number(locator: Any) -> float:
    """The exact value behind a number shown by a view (its data-value attribute)."""
    return float(locator.get_attribute("data-value"))


def wait_until(predicate: Any, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _cell_centre(canvas: Any, row: int, col: int, rows: int, cols: int) -> dict[str, float]:
    box = canvas.bounding_box()
    return {"x": (col + 0.5) * box["width"] / cols, "y": (row + 0.5) * box["height"] / rows}


def hover_cell(canvas: Any, row: int, col: int, rows: int, cols: int) -> None:
    """Move the mouse to the centre of cell (row, col) of a heatmap canvas (scrolled into view)."""
    canvas.scroll_into_view_if_needed()
    canvas.hover(position=_cell_centre(canvas, row, col, rows, cols))


def click_cell(canvas: Any, row: int, col: int, rows: int, cols: int) -> None:
    canvas.scroll_into_view_if_needed()
    canvas.click(position=_cell_centre(canvas, row, col, rows, cols))


ANYWIDGET_TIMEOUT = (
    "anywidget's fixed 2 s initialization window ran out (AbortSignal.timeout(2000) in its "
    "front end's Runtime). This is upstream, not our modules: each loads in well under 0.4 s "
    "with the CPU slowed 6x (test_esm_load_time.py). Any one task on the page's main thread "
    "longer than 2 s while a model loads times it out; scripts/anywidget_init_timeout_repro.py "
    "reproduces that with anywidget alone (test_anywidget_init_timeout.py), and "
    "docs/troubleshooting.md has the upstream issue"
)


def anywidget_timeouts(lines: list[str]) -> list[str]:
    """The page errors or console lines that are anywidget's initialization timeout."""
    return [line for line in lines if "[anywidget] Failed to initialize model" in line]


RELINKED = "[explorer] relinked view"
_SET_MARKER = """
from ipywidgets.widgets.widget import _instances
from explorer.views._base import ExplorerWidget
views = [w for w in list(_instances.values()) if isinstance(w, ExplorerWidget)]
for w in views:
    w.error = {marker!r}
print(len(views))
"""
_BANNERS = """(marker) => {
  const banners = [...document.querySelectorAll('.ex-root [data-testid="error"]')];
  return {count: banners.length, shown: banners.filter((b) => b.textContent === marker).length};
}"""


def views_follow_their_kernel(page: Any, least: int = 1, marker: str = "kernel-to-page") -> int:
    """Set every explorer view's ``error`` in the kernel and wait until every view's banner on
    the page shows it (a view whose model stopped hearing its kernel never does); the number
    of explorer views in the kernel."""
    outputs = run_code(page, _SET_MARKER.format(marker=marker))
    n_models = int("".join(o.get("text", "") for o in outputs).split()[-1])
    assert n_models >= least, f"expected at least {least} explorer views, found {n_models}"
    wait_until(
        lambda: (lambda b: b["count"] >= least and b["shown"] == b["count"])(
            page.evaluate(_BANNERS, marker)
        ),
        timeout_s=60,
        what="every view to show the value set in the kernel",
    )
    return n_models


@contextmanager
def snapshot_in_browser(browser: Any, html: Path, views: list, n: int = 1) -> Iterator[Any]:
    """Write ``views`` (``(title, widget)`` pairs) as a snapshot page at ``html``, open it in a
    1280 px page and wait until ``n`` views have drawn; yields ``(page, errors)``, the page's
    errors collected as they come."""
    from explorer.views.snapshot import snapshot_page  # lazy: the driver serves non-view tests

    html.write_text(snapshot_page(views))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())
        page.wait_for_function(
            f"document.querySelectorAll('.explorer-snapshot[data-rendered]').length >= {n}",
            timeout=30_000,
        )
        yield page, errors
    finally:
        context.close()


def page_error(exc: Any, page: Any, errors: list[str], timeouts: list[str]) -> None:
    """File a page error. anywidget's start-up window running out on a busy machine
    (upstream: docs/troubleshooting.md) goes apart, to ``timeouts``: explorer's views
    survive it by relinking (explorer/views/_link.js, test_views_relink.py), and each test
    still checks that its views answer the kernel and its clicks. Every other error counts."""
    text = f"{exc} at {page.url}\n{exc.stack}"
    (timeouts if "[anywidget] Failed to initialize model" in str(exc) else errors).append(text)


@contextmanager
def lab_page(browser: Any, screenshot: Path, *, lab_server: Any = None, width: int = 1400,
             full_page: bool = False) -> Iterator[Any]:  # fmt: skip
    """A page of ``browser`` in a context of its own (one person's browser), ``width`` px wide,
    whose JavaScript errors go to ``page.js_errors`` and anywidget's start-up timeouts to
    ``page.anywidget_timeouts`` (``page_error``). On the way out, a screenshot of the page as
    it was left at ``screenshot`` (the first thing to look at when a test fails), then the
    page closed and, with ``lab_server``, every kernel of that server ended (each notebook's
    kernel holds a model)."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    timeouts: list[str] = []
    page.on("pageerror", lambda exc: page_error(exc, page, errors, timeouts))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.js_errors = errors
    page.anywidget_timeouts = timeouts
    try:
        yield page
    finally:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(screenshot), full_page=full_page)
        except Exception as exc:  # a crashed page still has to be closed
            print(f"no final screenshot {screenshot.name}: {exc}")
        context.close()
        if lab_server is not None:
            lab_server.shutdown_kernels()
