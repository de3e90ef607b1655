"""The language-model views in a real JupyterLab: clicks in the page run in the kernel.

A notebook builds the shipped induction model's DLA, logit-lens, token-attribution and
patching views on repeated-token prompts. A click on the DLA heatmap selects the head in
the kernel (and the linked AttentionView follows); a click on a logit-lens cell selects
its row and position; a click on a token selects it; choosing a site in PatchingView's
selector recomputes the grid in the kernel. Screenshots: test-artifacts/browser/lm-*.png.
"""

from __future__ import annotations

import nbformat
import pytest
from lab_driver import (
    KERNELSPEC,
    click_cell,
    error_outputs,
    kernel_json,
    open_notebook,
    run_all,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "import torch, traitlets, explorer\n"
    "from explorer.analysis import metrics\n"
    "from explorer.data import repeated_tokens\n"
    "from explorer.views import AttentionView, LogitAttributionView, LogitLensView, PatchingView, TokenAttributionView\n"
    "torch.set_num_threads(1)\n"
    "model = explorer.load('shipped:quickstart-induction')\n"
    "full = repeated_tokens(4, 8, 64, seed=2)\n"
    "prompts, answer = full[:, :-1], int(full[0, -1])",
    "dla = LogitAttributionView(model, prompts[:1], target=answer)\n"
    "attention = AttentionView(model, prompts[:1])\n"
    "traitlets.link((dla, 'layer'), (attention, 'layer'))\n"
    "traitlets.link((dla, 'head'), (attention, 'head'))\n"
    "dla",
    "lens = LogitLensView(model, prompts[:1])\nlens",
    "tokens = TokenAttributionView(model, prompts[:1], target=answer, n_steps=16)\ntokens",
    "corrupted = prompts.clone()\n"
    "corrupted[:, 1:9] = repeated_tokens(4, 8, 64, seed=5)[:, 1:9]\n"
    "patching = PatchingView(model, prompts, corrupted, metrics.logit_diff(full[:, -1], corrupted[:, -1]))\n"
    "patching",
]


def test_lm_views_follow_clicks(lab_server, page, artifacts):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab_server.root / "lm_views.ipynb")
    open_notebook(page, lab_server.lab("lm_views.ipynb"), "lm_views.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    assert page.js_errors == []

    dla = page.locator('[data-testid="dla-view"]').first
    click_cell(dla.locator('[data-testid="dla-heatmap"] canvas'), 1, 2, 2, 4)
    wait_until(lambda: "L1H2" in dla.locator('[data-testid="selected-unit"]').inner_text())
    state = kernel_json(
        page,
        "import json; print(json.dumps([dla.selected, attention.layer, attention.head]))",
    )
    assert state == ["L1H2", 1, 2]
    dla.screenshot(path=str(artifacts / "lm-dla-in-lab.png"))

    lens = page.locator('[data-testid="logit-lens-view"]').first
    lens.locator('td[data-row="1"][data-pos="5"]').click()
    wait_until(
        lambda: "1_pre at position 5" in lens.locator('[data-testid="selected-cell"]').inner_text()
    )
    assert kernel_json(
        page, "import json; print(json.dumps([lens.row, lens.position, lens.layer]))"
    ) == [1, 5, 1]
    lens.screenshot(path=str(artifacts / "lm-lens-in-lab.png"))

    tokens = page.locator('[data-testid="token-attribution-view"]').first
    tokens.locator('[data-testid="token-0-3"]').click()
    wait_until(
        lambda: "position 3" in tokens.locator('[data-testid="selected-token"]').inner_text()
    )
    assert kernel_json(page, "import json; print(json.dumps(tokens.position))") == 3

    patching = page.locator('[data-testid="patching-view"]').first
    patching.locator('[data-testid="site-select"]').select_option("head_by_pos")
    wait_until(
        lambda: (
            kernel_json(page, "import json; print(json.dumps(patching.values['shape']))") == [8, 16]
        )
    )
    wait_until(lambda: "L1H3" in patching.inner_text(), what="head rows drawn")
    patching.screenshot(path=str(artifacts / "lm-patching-in-lab.png"))
    assert page.js_errors == []
