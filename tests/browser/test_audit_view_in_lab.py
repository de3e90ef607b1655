"""AuditView in a real JupyterLab: a click on a class runs in the kernel and the detail follows.

A notebook plants a trigger into an MNIST MLP (seed 11, as tests/analysis/test_audit.py),
audits it and opens the AuditView. A click on a class's mask selects that class in the
kernel; the detail then shows that class's trigger, success rate and stamped examples (the
kernel's predictions), and the budget meter shows the passes the model has run. A click on
the flagged class's bar brings back the planted trigger, and "how far can it move?" shows
where that trigger still works moved by up to 2 pixels. Every canvas of the view must have
drawn content (figure_checks). Screenshots: test-artifacts/browser/audit-*.png.
"""

from __future__ import annotations

import nbformat
import pytest
from figure_checks import canvas_problems
from lab_driver import KERNELSPEC, error_outputs, kernel_json, open_notebook, run_all, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import json, torch\n"
    "from explorer.analysis import audit\n"
    "from explorer.studies.auditing import plant\n"
    "from explorer.views import AuditView\n"
    "torch.set_num_threads(1)\n"
    "planted = plant(11, kind='solid')\n"
    # 6,000 passes find the same 3x3 patch as 20,000 (flagged [3], success 1.0) in a third
    # of the CPU (7.5 s against 22.6 s); tests/analysis/test_audit.py audits it at 6,000 too
    "result = audit(planted.model, planted.test_x[:500], budget=6_000)\n"
    "print(json.dumps({'target': planted.trigger.target, 'flagged': list(result.flagged)}))",
    "view = AuditView(result, planted.model, planted.test_x[500:])\nview",
]


def test_clicking_a_class_updates_the_detail(lab_server, page, artifacts):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab_server.root / "audit_view.ipynb")
    open_notebook(page, lab_server.lab("audit_view.ipynb"), "audit_view.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    facts = kernel_json(
        page,
        "print(json.dumps({'target': planted.trigger.target, 'flagged': list(result.flagged),"
        " 'spent': planted.model.spent.forward}))",
    )
    target = facts["target"]
    assert facts["flagged"] == [target]

    view = page.locator('[data-testid="audit-view"]').first
    detail = view.locator('[data-testid="detail"]')
    wait_until(lambda: detail.get_attribute("data-class") == str(target), what="the target shown")
    assert "flagged" in view.locator('[data-testid="verdict"]').inner_text()
    assert view.locator('[data-testid="verdict"]').get_attribute("data-tier") == "flagged"
    assert f"class {target}" in view.locator('[data-testid="evidence"]').inner_text()
    assert "patch" in view.locator('[data-testid="shape"]').inner_text()
    assert canvas_problems(page, '[data-testid="audit-view"]', "audit view") == []
    view.screenshot(path=str(artifacts / "audit-target.png"))

    other = (target + 1) % 10
    view.locator(f'[data-testid="mask-{other}"]').click()
    wait_until(lambda: detail.get_attribute("data-class") == str(other), what="the click to land")
    assert (
        view.locator('[data-testid="detail-title"]').inner_text() == f"class {other}: not flagged"
    )
    state = kernel_json(
        page,
        "print(json.dumps({'selected': view.selected, 'after': view.after,"
        " 'success': float(result.success[view.selected]), 'spent': planted.model.spent.forward}))",
    )
    assert state["selected"] == other
    shown_after = [
        view.locator(f'[data-testid="after-{i}"]').inner_text() for i in range(len(state["after"]))
    ]
    assert shown_after == [f"pred {p}" for p in state["after"]]
    success = float(view.locator('[data-testid="success"]').get_attribute("data-value"))
    assert success == pytest.approx(state["success"], abs=1e-6)
    # the meter counts the two passes the click ran (predictions before and after the stamp)
    assert state["spent"] == facts["spent"] + 2
    wait_until(
        lambda: (
            view.locator('[data-testid="spent"]').get_attribute("data-value") == str(state["spent"])
        ),
        what="the meter to follow",
    )
    assert canvas_problems(page, '[data-testid="audit-view"]', "audit view") == []
    view.screenshot(path=str(artifacts / "audit-other-class.png"))

    bars = view.locator('[data-testid="anomaly"]')
    box = bars.bounding_box()
    bars.click(position={"x": (target + 0.5) * box["width"] / 10, "y": box["height"] / 2})
    wait_until(lambda: detail.get_attribute("data-class") == str(target), what="the bar click")
    assert view.locator('[data-testid="detail-title"]').inner_text() == f"class {target}: flagged"
    assert float(view.locator('[data-testid="success"]').get_attribute("data-value")) >= 0.9
    after = kernel_json(page, "print(json.dumps(view.after))")
    assert sum(p == target for p in after) >= len(after) - 1  # the trigger works on shown digits

    # "how far can it move?" runs trigger_place in the kernel; the words and the grid follow
    view.locator('[data-testid="place-measure"]').click()
    place = view.locator('[data-testid="place"]')
    wait_until(lambda: place.count() == 1, what="the place to be measured")
    kernel = kernel_json(
        page, "print(json.dumps({'place': view.place, 'grid': view.place_success}))"
    )
    assert kernel["place"].startswith(f"class {target}: ")
    assert place.inner_text() == kernel["place"].split(": ", 1)[1]
    cells = view.locator('[data-testid="place-grid"] span')
    assert cells.count() == 25
    works = sum(v >= 0.9 for row in kernel["grid"] for v in row)
    assert view.locator('[data-testid="place-grid"] .ex-place-works').count() == works >= 1
    view.screenshot(path=str(artifacts / "audit-place.png"))
    assert page.js_errors == []
