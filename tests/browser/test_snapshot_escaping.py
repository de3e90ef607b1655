"""A token ``"<!--<script>"`` in one view of a snapshot page does not stop any view from drawing.

Before the embedded JSON escaped ``<``, that token left the parser inside the first view's
state element: neither it nor the view after it drew (``tests/views/test_snapshot.py``
checks the text; this checks Chromium).
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.browser

HOSTILE = ["<!--<script>", "</script><script>window.__xss=1</script>"]


def test_every_view_of_the_page_draws_with_hostile_tokens(browser, tmp_path):
    from explorer.models import zoo
    from explorer.views import AttentionView
    from explorer.views.snapshot import snapshot_page

    model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=16)
    model.vocab = tuple(HOSTILE + [f"t{i}" for i in range(12 - len(HOSTILE))])
    hostile = AttentionView(model, torch.arange(12).unsqueeze(0))
    plain = AttentionView(model, torch.arange(3, 12).unsqueeze(0))
    html = tmp_path / "hostile.html"
    html.write_text(snapshot_page([("hostile", hostile), ("after it", plain)]))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(html.as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.explorer-snapshot[data-rendered]').length === 2",
            timeout=30_000,
        )
        assert errors == []
        assert page.evaluate("window.__xss") is None
        first = page.locator(".explorer-snapshot-view").first.inner_text()
        assert "<!--<script>" in first
    finally:
        context.close()
