"""Static snapshots embed a view's state as JSON that no string can break out of.

A token ``"<!--<script>"`` in a ``<script type="application/json">`` element puts the HTML
parser in its "script data double escaped" state: the element's own ``</script>`` no longer
closes it, and that view and every later one on the page stopped drawing. Every ``<``, ``>``
and ``&`` is written as a JSON escape (``\\u003c``), which decodes to the same text.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from explorer.models import zoo
from explorer.views import AttentionView
from explorer.views.snapshot import snapshot_html, snapshot_page, widget_state

HOSTILE = ["<!--<script>", "</script><script>alert(1)</script>", "a&amp;b", "]]>", "<!--", "-->"]
STATE = re.compile(r'<script type="application/json" class="explorer-(state|esm)">(.*?)</script>')


@pytest.fixture(scope="module")
def view():
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=16)
    model.vocab = tuple(HOSTILE + [f"t{i}" for i in range(12 - len(HOSTILE))])
    return AttentionView(model, torch.arange(12).unsqueeze(0))


def test_hostile_tokens_round_trip_and_leave_no_markup(view):
    assert view.tokens[: len(HOSTILE)] == HOSTILE
    html = snapshot_html(view, title="hostile tokens")
    embedded = STATE.findall(html)
    assert [kind for kind, _ in embedded] == ["state", "esm"]
    (_, state), (_, esm) = embedded
    assert json.loads(state) == json.loads(json.dumps(widget_state(view)))
    assert json.loads(esm) == view._esm  # the module's own "<" and "</" too
    for text in (state, esm):
        assert "<" not in text and ">" not in text and "&" not in text


def test_a_page_has_only_the_markup_snapshot_writes(view):
    page = snapshot_page([("hostile", view), ("after it", view)])
    assert "<!--" not in page
    # per view: the state, the module and the loader; nothing from the data
    assert page.count("<script") == 6 and page.count("</script>") == 6
