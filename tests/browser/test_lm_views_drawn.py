"""The language-model views drawn by headless Chromium from static snapshots.

LogitAttributionView (heads heatmap and layer bars), LogitLensView, TokenAttributionView
and PatchingView on a by-position site, on the path grid and on an SAE's features (one row of
cells, feature 5 selected), built on the shipped
induction model with repeated-token prompts (the target is each prompt's next token).
PNGs go to test-artifacts/browser/views/lm-*.png. Checks: no JavaScript error, no error
banner, every canvas has content, the page is not wider than the viewport, and each view's
main element is there.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.browser

DRAWN = """(root) => {
  const problems = [];
  for (const c of [...root.querySelectorAll('canvas')].filter((c) => c.width && c.height)) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 2; i += 4) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
    if (seen.size < 2) problems.push('a blank canvas ' + (c.dataset.testid || c.className));
  }
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) problems.push('wider than the page: ' + page.scrollWidth);
  return problems;
}"""

MAIN = {
    "lm-dla-heads": '[data-testid="dla-heatmap"] canvas',
    "lm-dla-layers": '[data-testid="dla-bars"]',
    "lm-logit-lens": '[data-testid="lens-grid"] td',
    "lm-token-attribution": '[data-testid="prompt-0"] .ex-token',
    "lm-patching-by-pos": '[data-testid="patching-heatmap"] canvas',
    "lm-patching-path": '[data-testid="receivers"]',
    "lm-patching-features": '[data-testid="patching-heatmap"] canvas',
}


@pytest.fixture(scope="module")
def views():
    import explorer
    from explorer.analysis import metrics
    from explorer.data import repeated_tokens
    from explorer.views import (
        LogitAttributionView,
        LogitLensView,
        PatchingView,
        TokenAttributionView,
    )

    torch.set_num_threads(1)
    model = explorer.load("shipped:quickstart-induction")
    full = repeated_tokens(4, 8, 64, seed=2)  # [BOS][8][8]
    prompts, answer = full[:, :-1], full[:, -1]
    dla_heads = LogitAttributionView(model, prompts, target=answer.tolist()[0])
    dla_layers = LogitAttributionView(model, prompts, target=answer.tolist()[0], units="layers")
    dla_layers.selected = "1_attn_out"
    lens = LogitLensView(model, prompts[:1])
    lens.row, lens.position = 1, prompts.shape[1] - 1
    lens.window, lens.position_start = 10, 6  # a long prompt is sent a window at a time
    tokens = TokenAttributionView(model, prompts[:2], target=answer.tolist()[0], n_steps=16)
    corrupted = prompts.clone()
    corrupted[:, 1:9] = repeated_tokens(4, 8, 64, seed=5)[:, 1:9]
    metric = metrics.logit_diff(answer, corrupted[:, -1])
    by_pos = PatchingView(model, prompts, corrupted, metric, grid="head_by_pos")
    path = PatchingView(model, prompts, corrupted, metric, grid="head")
    path.cell = [1, 0]
    path.grid = "path"
    from explorer.features import SparseAutoencoder

    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=model.d_model, d_sae=48, k=8)
    features = PatchingView(model, prompts, corrupted, metric, sae=sae, grid="feature")
    features.cell = [0, 5]
    return {
        "lm-dla-heads": dla_heads,
        "lm-dla-layers": dla_layers,
        "lm-logit-lens": lens,
        "lm-token-attribution": tokens,
        "lm-patching-by-pos": by_pos,
        "lm-patching-path": path,
        "lm-patching-features": features,
    }


@pytest.mark.parametrize("name", list(MAIN))
def test_lm_view_draws(views, browser, artifacts, tmp_path, name):
    from explorer.views.snapshot import snapshot_page

    widget = views[name]
    assert widget.error == ""
    folder = artifacts / "views"
    folder.mkdir(exist_ok=True)
    html = tmp_path / f"{name}.html"
    html.write_text(snapshot_page([(name, widget)]))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())
        page.wait_for_selector(".explorer-snapshot[data-rendered]", timeout=30_000)
        view = page.locator(".explorer-snapshot-view").first
        view.screenshot(path=str(folder / f"{name}.png"))
        assert errors == []
        assert page.evaluate(DRAWN, view.element_handle()) == []
        assert page.locator(".ex-error:visible").count() == 0
        assert page.locator(MAIN[name]).count() > 0
        if name == "lm-logit-lens":
            assert page.locator('[data-testid="window"]').inner_text() == "positions 6–15 of 16"
            assert "position 15" in page.locator('[data-testid="selected-cell"]').inner_text()
        if name == "lm-patching-features":
            assert "feature F5" in page.locator('[data-testid="selected-cell"]').inner_text()
    finally:
        context.close()
