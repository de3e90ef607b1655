"""A tutorial run once, in a real JupyterLab, checked as a user sees it and handed back.

Each tutorial runs top to bottom once per test run, with Run All in the browser, in its CI
setting (EXPLORER_CI=1, one thread: the Lab server's environment, conftest.py). What a user
sees is checked there (``check_in_lab``): no cell errors, every widget output renders (none
stays "Loading widget..." or shows "Error displaying widget"), the page raises no JavaScript
error (but anywidget's start-up timeout, after which the views relink), every figure shows
drawn content and every widget canvas has content, and every view still hears its kernel
object; each widget is saved as a screenshot under test-artifacts/browser/tutorials/ to look
at. What the notebook computed comes back as the notebook the page holds (``LabRun.nb``, its
outputs as Lab keeps them) and the files it wrote in its own folder (its kernel's working
folder): the tests of its numbers read those, so no tutorial runs twice (once through
nbclient for the numbers and again in Lab for the views).

anywidget gives each widget model 2 s of wall-clock time, from its creation in the page, to
load the widget's module and initialise; after that the model drops every later message
from the kernel. A message sent to a model that is still loading holds up JupyterLab's
handling of every later kernel message until the model is ready; the backlog is then handled
in one long task (measured 1.4-2.4 s under load) in which the next widgets are created and
their 2 s run out. Our views used to open their comm and then send their computed state as
updates, i.e. exactly such messages; now each view opens once, complete
(``ExplorerWidget``). That made the timeout rarer, not impossible, so the views also
recover from it (``explorer/views/_link.js``; test_views_relink.py forces it on every
model): a timeout may be logged, but every view must still hear its kernel object.
"""

from __future__ import annotations

import json
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from figure_checks import canvas_problems, figure_problems
from lab_driver import (
    ANYWIDGET_TIMEOUT,
    RELINKED,
    error_outputs,
    lab_page,
    open_notebook,
    run_all,
    views_follow_their_kernel,
    wait_until,
)

# Lab marks every rendered output with its MIME type except widget views (a Lumino panel).
WIDGET_OUTPUT = ".jp-OutputArea-output:not([data-mime-type])"
WIDGET_STATE = """(selector) => {
  const outputs = [...document.querySelectorAll(selector)];
  const text = outputs.map((o) => o.innerText || '');
  return {
    count: outputs.length,
    loading: text.filter((t) => t.includes('Loading widget')).length,
    failed: text.filter((t) => t.includes('Error displaying widget')),
    empty: outputs.filter((o) => o.getBoundingClientRect().height < 20).length,
  };
}"""
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"


def _notebook(page: Any) -> nbformat.NotebookNode:
    """The notebook as the page holds it, outputs included (Lab's model gives a markdown cell
    without attachments ``"attachments": null``, which nbformat does not take: dropped)."""
    data = page.evaluate(NOTEBOOK_JSON)
    for cell in data["cells"]:
        for key in [k for k, v in cell.items() if v is None]:
            del cell[key]
    return nbformat.reads(json.dumps(data), as_version=4)


def copy_into_lab(lab_server: Any, notebook: Path, name: str) -> str:
    """Copy ``notebook`` into a folder of its own under the Lab server's root (its kernel's
    working folder, where it writes what it computed); its path there."""
    folder = lab_server.root / name
    folder.mkdir(exist_ok=True)
    shutil.copy(notebook, folder / f"{name}.ipynb")
    return f"{name}/{name}.ipynb"


def check_in_lab(page: Any, lab_server: Any, path: str, name: str, artifacts: Path, *,
                 least_views: int = 1, after_run: Any = None) -> nbformat.NotebookNode:  # fmt: skip
    """Run the notebook at ``path`` (under the server's root) with Run All and check what a
    user sees (module docstring); ``after_run(page)``, when given, checks more before the
    views are touched. Returns the notebook as the page held it after Run All."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    open_notebook(page, lab_server.lab(path), path)
    run_all(page, timeout_s=900)
    nb = _notebook(page)
    assert error_outputs(page) == []

    wait_until(
        lambda: page.evaluate(WIDGET_STATE, WIDGET_OUTPUT)["loading"] == 0,
        timeout_s=120,
        what=f"every widget in {name} to load",
    )
    state = page.evaluate(WIDGET_STATE, WIDGET_OUTPUT)
    assert state["count"] >= 1, f"{name} shows no widget"
    assert state["failed"] == [], state["failed"]
    assert state["empty"] == 0, f"{state['empty']} of {state['count']} widgets drew nothing"

    # every figure has drawn content: plotly traces with data, no NaN-only heatmap, no
    # squeezed or blank plot area; every widget canvas has content
    assert figure_problems(page, name) == []
    assert canvas_problems(page, WIDGET_OUTPUT, name) == []
    if after_run is not None:
        after_run(page)

    folder = artifacts / "tutorials"
    folder.mkdir(exist_ok=True)
    for old in folder.glob(f"{name}-*.png"):
        old.unlink()
    widgets = page.locator(WIDGET_OUTPUT)
    for i in range(widgets.count()):
        widget = widgets.nth(i)
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(folder / f"{name}-{i:02d}.png"))
    # anywidget's 2 s start-up window may run out on a busy machine (upstream,
    # docs/troubleshooting.md); explorer's views then relink (test_views_relink.py). Nothing
    # else may fail, and every view must still hear its kernel object.
    timeouts = page.anywidget_timeouts
    assert page.js_errors == []
    relinked = [line for line in console if RELINKED in line]
    assert not timeouts or relinked, f"{len(timeouts)} models, none relinked: {ANYWIDGET_TIMEOUT}"
    print(f"{name}: anywidget timeouts: {len(timeouts)}, views relinked: {len(relinked)}")
    views_follow_their_kernel(page, least=least_views)
    return nb


@dataclass(frozen=True)
class LabRun:
    """A tutorial run once in Lab: the notebook as the page held it after Run All (None when
    it never got that far), its folder (what it wrote is there), and what a user would have
    seen go wrong (None when nothing did)."""

    nb: nbformat.NotebookNode | None
    folder: Path
    failure: str | None


def run_in_lab(browser: Any, lab_server: Any, notebook: Path, name: str, artifacts: Path, *,
               least_views: int = 1, after_run: Any = None) -> LabRun:  # fmt: skip
    """Run ``notebook`` once in Lab and check it (``check_in_lab``), for a module fixture:
    a failed check is kept in ``failure`` (one test asserts it is None) instead of raised, so
    the tests of the notebook's numbers still read what it computed."""
    path = copy_into_lab(lab_server, notebook, name)
    nb, failure = None, None
    with lab_page(browser, artifacts / f"last-{name}.png", lab_server=lab_server) as page:
        try:
            nb = check_in_lab(page, lab_server, path, name, artifacts, least_views=least_views,
                              after_run=after_run)  # fmt: skip
        except Exception:
            failure = traceback.format_exc()
            try:
                nb = _notebook(page)
            except Exception as exc:  # the page is gone: the numbers' tests say so
                failure += f"\n(and no notebook came back from the page: {exc})"
    return LabRun(nb, lab_server.root / name, failure)
