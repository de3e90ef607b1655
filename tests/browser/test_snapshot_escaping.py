"""A token ``"<!--<script>"`` in one view of a snapshot page does not stop any view from drawing.

Before the embedded JSON escaped ``<``, that token left the parser inside the first view's
state element: neither it nor the view after it drew (``tests/views/test_snapshot.py``
checks the text; this checks Chromium).
"""

from __future__ import annotations

import pytest
import torch
from lab_driver import snapshot_in_browser

pytestmark = pytest.mark.browser

HOSTILE = ["<!--<script>", "</script><script>window.__xss=1</script>"]


def test_every_view_of_the_page_draws_with_hostile_tokens(browser, tmp_path):
    from explorer.models import zoo
    from explorer.views import AttentionView

    model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=16)
    model.vocab = tuple(HOSTILE + [f"t{i}" for i in range(12 - len(HOSTILE))])
    hostile = AttentionView(model, torch.arange(12).unsqueeze(0))
    plain = AttentionView(model, torch.arange(3, 12).unsqueeze(0))
    views = [("hostile", hostile), ("after it", plain)]
    with snapshot_in_browser(browser, tmp_path / "hostile.html", views, n=2) as (page, errors):
        assert errors == []
        assert page.evaluate("window.__xss") is None
        first = page.locator(".explorer-snapshot-view").first.inner_text()
        assert "<!--<script>" in first
