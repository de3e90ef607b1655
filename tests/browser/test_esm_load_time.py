"""Is a view's ES module what runs past anywidget's 2 s initialization window? No.

anywidget (0.11, ``Runtime`` in its front end) gives each widget model a fixed 2 s
(``AbortSignal.timeout(2000)``) from the model's creation in the page to load its module
and initialize, or logs "[anywidget] Failed to initialize model." (issue 22, item 17). Of
that window, what is ours: the module's size and evaluation (our modules import nothing,
fetch nothing, and their ``initialize`` only registers the model, synchronously) and the first message (each view opens complete:
``tests/views/test_explorer_view.py``). This test times each view's module as anywidget
loads it (a Blob URL and a dynamic ``import``), with Chromium's CPU slowed 6x as on a
2-core machine under load, against a trivial module: measured medians 4-50 ms (trivial
3 ms), worst 76 ms, so a module never takes more than a small part of the 2 s. What is
left is the page's main thread being busy elsewhere, against anywidget's fixed timer:
upstream (docs/troubleshooting.md).
"""

from __future__ import annotations

import re
import statistics

import pytest

pytestmark = pytest.mark.browser

BUDGET_MS = 2000  # anywidget's hard-coded window
SHARE = 0.2  # a view's module may use at most this part of it (median, CPU slowed 6x)

IMPORT = """async ([src, n]) => {
  const times = [];
  for (let i = 0; i < n; i++) {
    const url = URL.createObjectURL(new Blob([src + '\\n// ' + i], { type: 'text/javascript' }));
    const t0 = performance.now();
    const mod = await import(url);
    times.push(performance.now() - t0);
    URL.revokeObjectURL(url);
    if (!mod.default || typeof mod.default.render !== 'function') throw new Error('no render');
  }
  return times;
}"""


def _modules() -> dict[str, str]:
    import anywidget

    import explorer.views as views

    classes = [getattr(views, n) for n in views.__all__]
    return {
        c.__name__: c._esm
        for c in classes
        if isinstance(c, type) and issubclass(c, anywidget.AnyWidget)
    }


def test_no_view_module_imports_or_fetches_anything():
    for name, esm in _modules().items():
        assert not re.search(r"^\s*import\s|\bimport\(|\bfetch\(", esm, re.M), name
        # initialize only registers the model for relinking (_link.js): synchronous, nothing
        # to await inside anywidget's window
        assert "export default { initialize: exInitialize, render }" in esm, name
        assert "async function exInitialize" not in esm, name


def test_each_view_module_loads_well_inside_anywidgets_window(browser):
    page = browser.new_page()
    try:
        page.goto("about:blank")
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 6})
        trivial = "function render({ el }) { el.textContent = 'x'; }\nexport default { render };"
        times = {"trivial": statistics.median(page.evaluate(IMPORT, [trivial, 7]))}
        for name, esm in _modules().items():
            times[name] = statistics.median(page.evaluate(IMPORT, [esm, 7]))
    finally:
        page.close()
    print({k: round(v, 1) for k, v in times.items()})
    slow = {k: round(v) for k, v in times.items() if v > SHARE * BUDGET_MS}
    assert slow == {}, (
        f"these modules take more than {SHARE:.0%} of anywidget's {BUDGET_MS} ms to load "
        f"(median ms, CPU slowed 6x): {slow}; shrink or split them"
    )
