from __future__ import annotations

import nbformat
import pytest
from figure_checks import canvas_problems
from lab_driver import KERNELSPEC, error_outputs, open_notebook, run_all, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import os; os.environ['EXPLORER_CACHE'] = '/tmp/exp40/cache'\n"
    "import torch\n"
    "from explorer.analysis import audit\n"
    "from explorer.studies.auditing import plant\n"
    "from explorer.studies.kitchen_sink import kitchen_sink_split\n"
    "from explorer.views import AuditView\n"
    "torch.set_num_threads(1)\n"
    "data = kitchen_sink_split()\n"
    "p = plant(7405, kind='conditional', data=data)\n"
    "refs = [plant(s, clean=True, data=data).model for s in range(9101, 9106)]\n"
    "result = audit(p.model, data['test_x'][:500], references=refs)\n"
    "result",
    "view = AuditView(result, p.model, data['test_x'][500:])\nview",
]


def test_shot(lab_server, page, artifacts):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab_server.root / "disagree.ipynb")
    open_notebook(page, lab_server.lab("disagree.ipynb"), "disagree.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    view = page.locator('[data-testid="audit-view"]').first
    wait_until(
        lambda: view.locator('[data-testid="detail"]').get_attribute("data-class") == "9",
        what="9",
        timeout_s=240,
    )
    assert canvas_problems(page, '[data-testid="audit-view"]', "audit view") == []
    view.screenshot(path="/tmp/exp40/disagree-view.png")
    page.screenshot(path="/tmp/exp40/disagree-page.png", full_page=True)
    print(view.locator('[data-testid="evidence"]').inner_text())
