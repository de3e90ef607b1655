"""FeatureView drawn by headless Chromium from a static snapshot (issue 26.3).

A toy LM with word tokens and an SAE on its embeddings whose feature 3 fires on " if" and
writes toward " if" in the unembedding; the steer control has been run once. PNG:
test-artifacts/browser/views/feature-view.png. Checks: no JavaScript error, no error
banner, the coloured contexts, the histogram, the promoted and suppressed tokens and the
steer effect are drawn, and the page is not wider than the viewport.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.browser

WORDS = (" if", " else", " for", " x", " =", " 1", ":", " return", " def", " f", "(", ")",
         " in", " range", " while", " y", " +", " 2", " not", " and")  # fmt: skip


@pytest.fixture(scope="module")
def view():
    from explorer.features import SparseAutoencoder
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig
    from explorer.views import FeatureView

    torch.set_num_threads(1)
    cfg = TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=16,
                            vocab=WORDS, seed=1)  # fmt: skip
    model = zoo.transformer(cfg, name="toy-words")
    sae = SparseAutoencoder.create("hook_embed", d_in=16, d_sae=24, architecture="standard")
    with torch.no_grad():
        e = model.weight("embed")[0]
        sae.sae.b_dec.zero_()
        sae.sae.W_enc[:, 3] = 10 * e / e.dot(e)
        sae.sae.b_enc[3] = -9.0
        w_u = model.weight("unembed")[:, 0]
        sae.sae.W_dec[3] = 3 * w_u / w_u.norm()
    tokens = torch.randint(0, 20, (40, 14), generator=torch.Generator().manual_seed(0))
    widget = FeatureView(model, tokens, sae=sae, n=5, context=6)
    widget.feature = 3
    widget.steer("add", 8.0)
    return widget


WIDER = """() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"""


def test_feature_view_draws(view, browser, artifacts, tmp_path):
    from explorer.views.snapshot import snapshot_page

    assert view.error == "" and view.steer_result["change"] != 0
    folder = artifacts / "views"
    folder.mkdir(exist_ok=True)
    html = tmp_path / "feature-view.html"
    html.write_text(snapshot_page([("feature-view", view)]))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())
        page.wait_for_selector(".explorer-snapshot[data-rendered]", timeout=30_000)
        page.locator(".explorer-snapshot-view").first.screenshot(
            path=str(folder / "feature-view.png")
        )
        assert errors == []
        assert page.locator(".ex-error:visible").count() == 0
        assert page.evaluate(WIDER) is False
        assert page.locator('[data-testid="selected-feature"]').inner_text() == "feature 3"
        assert page.locator('[data-testid^="context-"]').count() == 5
        assert (
            page.locator('[data-testid="context-0"] .ex-max').inner_text().strip() == "·if"
        )  # a leading space shows as ·
        assert page.locator('[data-testid="histogram"]').count() == 1
        assert page.locator('[data-testid="promoted"] tr').count() == 8
        assert page.locator('[data-testid="suppressed"] tr').count() == 8
        assert "next-token loss" in page.locator('[data-testid="steer-effect"]').inner_text()
    finally:
        context.close()
