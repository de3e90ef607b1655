"""The shared token renderer, attention axes and colour scales as Chromium draws them
(static snapshots, no JupyterLab).

A vocabulary with whitespace tokens, sub-word pieces and ``<|bos|>``: every token on the page
shows its ``token_label`` (never an empty box), tokens of one text touch (no gap between
"w" "ind" "ow" "s"), the tooltip is the raw token; the attention pattern labels the same
positions on both axes and says so when thinned, and no axis label is cut; the patching
legend marks attribution patching as an approximation on the exact method's scale, and the
head-score legend marks the uniform-attention baseline.
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from lab_driver import snapshot_in_browser

pytestmark = pytest.mark.browser

VOCAB = ("<|bos|>", " ", "\n", "\t", " the", "w", "ind", "ow", "s", "")
VOCAB += tuple(f"t{i}" for i in range(40 - len(VOCAB)))

PAGE_FACTS = """(root) => {
  const tokens = [...root.querySelectorAll('.ex-token')].map((t) => {
    const r = t.getBoundingClientRect();
    return { raw: t.dataset.token, text: t.textContent, title: t.title, left: r.left, right: r.right, top: r.top, width: r.width };
  });
  const labels = (sel) => [...root.querySelectorAll(sel)].map((l) => Number(l.dataset.index));
  const grid = root.querySelector('[data-testid="pattern"] .ex-heatmap-grid');
  const cut = [];
  if (grid) {
    const g = grid.getBoundingClientRect();
    for (const l of grid.querySelectorAll('.ex-axis-rows .ex-axis-label')) {
      const r = l.getBoundingClientRect();
      if (r.left < g.left - 1 || l.scrollWidth > l.clientWidth + 1) cut.push(l.textContent);
    }
  }
  const text = (sel) => { const n = root.querySelector(sel); return n ? n.textContent : null; };
  return {
    tokens, cut,
    rows: labels('[data-testid="pattern"] .ex-axis-rows .ex-axis-label'),
    cols: labels('[data-testid="pattern"] .ex-axis-cols .ex-axis-label'),
    rowText: [...root.querySelectorAll('[data-testid="pattern"] .ex-axis-rows .ex-axis-label')].map((l) => l.textContent),
    axisNote: text('[data-testid="axis-note"]'),
    approximation: text('[data-testid="approximation-note"]'),
    baseline: text('[data-testid="legend-baseline"]'),
    meanings: [...root.querySelectorAll('[data-testid="colour-meaning"]')].map((m) => m.textContent),
  };
}"""


@pytest.fixture(scope="module")
def views():
    from explorer.analysis import metrics
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig
    from explorer.views import AttentionView, NeuronView, PatchingView

    torch.set_num_threads(1)
    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=40, n_ctx=128, seed=1, vocab=VOCAB
    )
    model = zoo.transformer(cfg)
    pieces = [0, 5, 6, 7, 8, 1, 4, 2, 3, 9]  # <|bos|> w ind ow s ' ' ' the' \n \t ''
    body = pieces + [10 + i % 30 for i in range(45)]
    long = torch.tensor([body + body[1:]])  # [BOS][S][S]: 109 positions, a thinned pattern
    short = torch.tensor([pieces + [11, 12], pieces + [13, 14]])
    attention = AttentionView(model, long)
    neurons = NeuronView(model, short, k=2, context=6, ablation_examples=2)
    corrupted = short.clone()
    corrupted[:, 5] = 20
    metric = metrics.logit_diff(torch.tensor([4, 4]), torch.tensor([5, 5]))
    patching = PatchingView(model, short, corrupted, metric, grid="head")
    patching.method = "attribution"
    return {"attention": attention, "neurons": neurons, "patching": patching}


def _facts(browser, tmp_path, name, widget):
    with snapshot_in_browser(browser, tmp_path / f"{name}.html", [(name, widget)]) as (
        page,
        errors,
    ):
        facts = page.evaluate(
            PAGE_FACTS, page.locator(".explorer-snapshot-view").first.element_handle()
        )
        assert errors == []
        return facts


def test_tokens_axes_and_scales_as_drawn(views, browser, tmp_path):
    from explorer.views import token_label

    drawn = {name: _facts(browser, tmp_path, name, w) for name, w in views.items()}
    for name in ("neurons", "patching"):
        tokens = drawn[name]["tokens"]
        assert tokens, name
        for t in tokens:
            assert t["text"] == token_label(t["raw"]) and t["width"] > 0, (name, t)
            assert t["title"].startswith("token " + json.dumps(t["raw"], ensure_ascii=False))
        # pieces of one text touch: each token starts where the one before it ends (same line)
        gaps = [
            b["left"] - a["right"]
            for a, b in itertools.pairwise(tokens)
            if abs(a["top"] - b["top"]) < 1 and b["left"] > a["left"]
        ]
        assert gaps and max(abs(g) for g in gaps) < 0.6, (name, gaps)
    attention = drawn["attention"]
    assert attention["rows"] and attention["cols"]
    step = attention["cols"][1] - attention["cols"][0]
    assert step > 1 and set(attention["rows"]) <= set(range(0, 200, step))
    assert set(attention["rows"]) == set(attention["cols"])  # the same positions down and across
    assert f"1 position in {step} is labelled" in attention["axisNote"]
    assert "<|bos|>" in attention["rowText"] and attention["cut"] == []
    assert "uniform attention" in attention["baseline"]
    assert drawn["patching"]["approximation"] == "approximation"
    assert any("closer to the clean run (better)" in m for m in drawn["patching"]["meanings"])
