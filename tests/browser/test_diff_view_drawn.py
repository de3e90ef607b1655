"""DiffView drawn by headless Chromium from a static snapshot (issue 28).

Model A is the shipped induction model, model B a copy with one layer-1 head's queries
scaled (so its pattern moves and the change maps have one clear peak). The PNG goes to
test-artifacts/browser/views/diff-view.png. Checks: no JavaScript error, no error banner,
every canvas has content, the page is not wider than the viewport, the four change maps,
the cross-model patching grid (of heads and of an SAE's features) and the selected head's
three patterns are there.
"""

from __future__ import annotations

import pytest
import torch
from test_lm_views_drawn import DRAWN

pytestmark = pytest.mark.browser

PARTS = [
    "diff-weights",
    "diff-attention",
    "diff-activation_mean",
    "diff-dla",
    "diff-patching",
    "diff-feature-patching",
    "pattern-a",
    "pattern-b",
    "pattern-diff",
]


@pytest.fixture(scope="module")
def view():
    import explorer
    from explorer.analysis import metrics
    from explorer.data import repeated_tokens
    from explorer.features import SparseAutoencoder
    from explorer.views import DiffView

    torch.set_num_threads(1)
    a = explorer.load("shipped:quickstart-induction")
    b = a.copy()
    b.set_weight("query", a.weight("query", 1)[1] * 3, 1, head=1)
    full = repeated_tokens(4, 6, 64, seed=2)
    prompts, answer = full[:, :-1], full[:, -1]
    metric = metrics.logit_diff(answer, prompts[:, 2])
    sae = SparseAutoencoder.create("blocks.1.hook_resid_post", d_in=a.d_model, d_sae=24, k=4)
    return DiffView(
        a, prompts, other=b, metric=metric, target=answer, against=prompts[:, 2], sae=sae
    )


def test_diff_view_draws(view, browser, artifacts, tmp_path):
    from explorer.views.snapshot import snapshot_page

    assert view.error == "" and (view.layer, view.head) == (1, 1)
    folder = artifacts / "views"
    folder.mkdir(exist_ok=True)
    html = tmp_path / "diff-view.html"
    html.write_text(snapshot_page([("diff-view", view)]))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())
        page.wait_for_selector(".explorer-snapshot[data-rendered]", timeout=30_000)
        root = page.locator(".explorer-snapshot-view").first
        root.screenshot(path=str(folder / "diff-view.png"))
        assert errors == []
        assert page.evaluate(DRAWN, root.element_handle()) == []
        assert page.locator(".ex-error:visible").count() == 0
        for part in PARTS:
            assert page.locator(f'[data-testid="{part}"] canvas').count() == 1, part
        assert page.locator('[data-testid="selected-head"]').inner_text() == "Head L1H1 on prompt 0"
    finally:
        context.close()
