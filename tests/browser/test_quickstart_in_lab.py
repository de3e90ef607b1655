"""The quickstart in a real JupyterLab and Notebook 7, driven by headless Chromium.

One test runs the whole quickstart once and then checks, view by view, that clicks reach
the kernel and that the numbers drawn in the page are the ones the kernel computes (the
test asks the kernel for them by running a cell). Screenshots go to test-artifacts/browser.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from lab_driver import (
    KERNELSPEC,
    click_cell,
    error_outputs,
    hover_cell,
    kernel_json,
    number,
    open_notebook,
    run_all,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWS = ("attention-view", "intervention-panel", "patching-view", "neuron-view")


def _canvas_has_ink(page, locator) -> bool:
    """True if a canvas inside ``locator`` has at least two distinct pixel colours."""
    return page.evaluate(
        """(root) => {
          for (const c of root.querySelectorAll('canvas')) {
            if (!c.width || !c.height) continue;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4) {
              seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
              if (seen.size > 1) return true;
            }
          }
          return false;
        }""",
        locator.element_handle(),
    )


def test_quickstart_views_follow_clicks(lab_server, page, artifacts):
    open_notebook(page, lab_server.lab("quickstart.ipynb"), "quickstart.ipynb")
    run_all(page)
    assert error_outputs(page) == []
    for testid in VIEWS:
        view = page.locator(f'[data-testid="{testid}"]').first
        view.wait_for(state="visible")
        assert _canvas_has_ink(page, view), f"{testid} drew nothing"
        view.scroll_into_view_if_needed()
        view.screenshot(path=str(artifacts / f"{testid}.png"))

    _attention_click_updates_pattern(page, artifacts)
    _ablation_click_updates_metric(page, artifacts)
    _patching_click_selects_cell(page)
    _neuron_step_updates_examples(page, artifacts)
    _explorer_tabs_render(page, artifacts)
    assert page.js_errors == []


def _attention_click_updates_pattern(page, artifacts) -> None:
    view = page.locator('[data-testid="attention-view"]').first
    selected = view.locator('[data-testid="selected-head"]')
    assert selected.inner_text() == "head 0.0"
    old_score = number(view.locator('[data-testid="score-induction"]'))
    view.locator('[data-testid="head-1-2"]').click()
    wait_until(lambda: selected.inner_text() == "head 1.2", what="head 1.2 to be selected")
    wait_until(
        lambda: number(view.locator('[data-testid="score-induction"]')) != old_score,
        what="the head's scores to change",
    )
    kernel = kernel_json(
        page,
        "import json\n"
        "p = attention.head_pattern()\n"
        "start, stop = attention.pattern_rows\n"
        "w = p[start:stop, :stop]\n"
        "skip = 1 if start == 0 else 0  # the first query only sees itself\n"
        "r, c = divmod(int(w[skip:].argmax()), w.shape[1])\n"
        "r += skip\n"
        "scores = explorer.analysis.head_scores(model, prompts)\n"
        "print(json.dumps({'layer': attention.layer, 'head': attention.head, 'max': float(w[skip:].max()),\n"
        "  'row': r, 'col': c, 'rows': w.shape[0], 'cols': w.shape[1], 'last': float(w[-1, 0]),\n"
        "  'induction': float(scores.get('induction')[1, 2])}))",
    )
    assert (kernel["layer"], kernel["head"]) == (1, 2)
    assert number(view.locator('[data-testid="pattern-max"]')) == pytest.approx(
        kernel["max"], abs=1e-3
    )
    assert number(view.locator('[data-testid="score-induction"]')) == pytest.approx(
        kernel["induction"], abs=1e-5
    )
    canvas = view.locator('[data-testid="pattern"] canvas')
    hover_cell(canvas, kernel["row"], kernel["col"], kernel["rows"], kernel["cols"])
    tooltip = view.locator('[data-testid="pattern"] [data-testid="tooltip"]')
    tooltip.wait_for(state="visible")
    assert float(canvas.get_attribute("data-hover-value")) == pytest.approx(kernel["max"], abs=1e-3)
    hover_cell(canvas, kernel["rows"] - 1, 0, kernel["rows"], kernel["cols"])
    assert float(canvas.get_attribute("data-hover-value")) == pytest.approx(
        kernel["last"], abs=1e-3
    )
    assert "attention" in tooltip.inner_text()
    view.screenshot(path=str(artifacts / "attention-view-head-1-2.png"))


def _ablation_click_updates_metric(page, artifacts) -> None:
    panel = page.locator('[data-testid="intervention-panel"]').first
    panel.locator('[data-testid="unit-head-1-2"]').click()
    panel.locator('[data-testid="after-mean"]').wait_for(state="visible")
    # the quickstart's panel starts on mean ablation; switch to zero and back
    mean_after = number(panel.locator('[data-testid="after-mean"]'))
    for kind in ("zero", "mean"):
        panel.locator(f'[data-testid="kind-{kind}"]').click()
        wait_until(
            lambda kind=kind: (
                "ex-active"
                in (panel.locator(f'[data-testid="kind-{kind}"]').get_attribute("class"))
            ),
            what=f"{kind} ablation to be active",
        )
        if kind == "zero":
            wait_until(
                lambda: (
                    abs(number(panel.locator('[data-testid="after-mean"]')) - mean_after) > 1e-4
                ),
                what="zero ablation to change the number shown",
            )
            zero_after = number(panel.locator('[data-testid="after-mean"]'))

    def kernel_numbers():
        return kernel_json(
            page,
            "import json\n"
            "r = explorer.analysis.ablate(model, eval_prompts, units=panel.units, metric=panel.metric,\n"
            "                            ablation=panel.kind)\n"
            "print(json.dumps({'units': panel.units, 'kind': panel.kind, 'shown': panel.after_mean,\n"
            "  'before': r.before_mean, 'after': r.after_mean, 'first_after': float(r.after[0])}))",
        )

    kernel = kernel_numbers()
    assert kernel["units"] == ["head 1.2"] and kernel["kind"] == "mean"
    assert abs(kernel["after"] - zero_after) > 1e-4  # the click changed the number shown
    assert kernel["shown"] == pytest.approx(kernel["after"], abs=1e-6)
    wait_until(
        lambda: abs(number(panel.locator('[data-testid="after-mean"]')) - kernel["after"]) < 1e-5,
        what="the page to show the kernel's mean-ablation value",
    )
    assert number(panel.locator('[data-testid="before-mean"]')) == pytest.approx(
        kernel["before"], abs=1e-5
    )
    assert number(panel.locator('[data-testid="after-0"]')) == pytest.approx(
        kernel["first_after"], abs=1e-5
    )
    panel.screenshot(path=str(artifacts / "intervention-panel-head-1-2-mean.png"))

    # a bad unit typed in the page shows a readable error; the next click clears it
    panel.locator('[data-testid="unit-input"]').fill("head 9.9")
    panel.locator('[data-testid="unit-add"]').click()
    banner = panel.locator('[data-testid="error"]')
    banner.wait_for(state="visible")
    assert "out of range" in banner.inner_text()
    panel.screenshot(path=str(artifacts / "intervention-panel-error.png"))

    # clicking a sweep cell selects that head alone and ablates it
    canvas = panel.locator('[data-testid="sweep-heatmap"] canvas')
    click_cell(canvas, 0, 3, 2, 4)
    wait_until(lambda: not banner.is_visible(), what="the error to clear")
    kernel = kernel_numbers()
    assert kernel["units"] == ["head 0.3"]
    wait_until(
        lambda: abs(number(panel.locator('[data-testid="after-mean"]')) - kernel["after"]) < 1e-5,
        what="the page to show head 0.3's ablation",
    )


def _patching_click_selects_cell(page) -> None:
    view = page.locator('[data-testid="patching-view"]').first
    canvas = view.locator('[data-testid="patching-heatmap"] canvas')
    click_cell(canvas, 1, 1, 2, 4)
    wait_until(
        lambda: "layer 1, head H1" in view.locator('[data-testid="selected-cell"]').inner_text()
    )
    kernel = kernel_json(
        page,
        "import json\n"
        "res = patching.result('head', 'activation')\n"
        "print(json.dumps({'layer': patching.layer, 'head': patching.head,\n"
        "  'value': float(res.values[1, 1]), 'recovery': float(res.recovery[1, 1])}))",
    )
    assert (kernel["layer"], kernel["head"]) == (1, 1)
    assert number(view.locator('[data-testid="selected-value"]')) == pytest.approx(
        kernel["value"], abs=1e-5
    )
    view.locator('[data-testid="grid-resid"]').click()
    wait_until(lambda: "position" in view.locator('[data-testid="selected-cell"]').inner_text())


def _neuron_step_updates_examples(page, artifacts) -> None:
    view = page.locator('[data-testid="neuron-view"]').first
    view.locator('[data-testid="neuron-input"]').fill("5")
    view.locator('[data-testid="neuron-input"]').press("Enter")
    wait_until(lambda: view.locator('[data-testid="selected-neuron"]').inner_text() == "neuron 0.5")
    kernel = kernel_json(
        page,
        "import json\n"
        "top = neurons.top_examples(0)\n"
        "drop = neurons.ablation_effect(0, 5).values\n"
        "print(json.dumps({'neuron': neurons.neuron, 'top': float(top.values[5, 0]),\n"
        "  'drop': float(drop.max()), 'cls': int(drop.argmax())}))",
    )
    assert kernel["neuron"] == 5
    wait_until(
        lambda: abs(number(view.locator('[data-testid="top-value-0"]')) - kernel["top"]) < 1e-5,
        what="neuron 0.5's top activation",
    )
    # its effect on the outputs: the class it raises most when present
    assert number(view.locator('[data-testid="ablation-0"]')) == pytest.approx(
        kernel["drop"], abs=1e-5
    )
    assert f"class {kernel['cls']}" in view.locator('[data-testid="ablations"]').inner_text()
    view.screenshot(path=str(artifacts / "neuron-view-0-5.png"))


def _explorer_tabs_render(page, artifacts) -> None:
    tabs = page.locator(".lm-TabBar-tab:has-text('Intervene')").first
    tabs.click()
    explorer_panel = page.locator('[data-testid="intervention-panel"]').nth(1)
    explorer_panel.wait_for(state="visible")
    explorer_panel.locator('[data-testid="sweep"]').click()
    explorer_panel.locator('[data-testid="sweep-heatmap"]').wait_for(state="visible")
    canvas = explorer_panel.locator('[data-testid="sweep-heatmap"] canvas')
    explorer_panel.screenshot(path=str(artifacts / "explorer-neuron-sweep.png"))
    click_cell(canvas, 1, 10, 2, 64)
    # the neuron tab is linked: it now shows neuron 1.10
    page.locator(".lm-TabBar-tab:has-text('Neurons')").first.click()
    neuron_view = page.locator('[data-testid="neuron-view"]').nth(1)
    wait_until(
        lambda: neuron_view.locator('[data-testid="selected-neuron"]').inner_text() == "neuron 1.10"
    )
    neuron_view.screenshot(path=str(artifacts / "explorer-linked-neuron.png"))
    page.screenshot(path=str(artifacts / "quickstart-lab.png"), full_page=True)


def test_tokens_render_as_text_not_html(lab_server, page, artifacts):
    """A token that is an HTML payload shows as its characters and never runs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import torch\n"
            "from explorer.models import zoo, TransformerConfig\n"
            "from explorer.views import AttentionView, NeuronView\n"
            "evil = '<img src=x onerror=\"window.__xss=1\">'\n"
            "vocab = ('BOS', evil, '<b>bold</b>', 'a&amp;b')\n"
            "m = zoo.transformer(TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_vocab=4,\n"
            "    n_ctx=8, d_mlp=8, vocab=vocab))\n"
            "AttentionView(m, torch.tensor([[0, 1, 2, 3, 1, 2]]))"
        ),
        # a prompt longer than the window: the page says so and pages through it
        nbformat.v4.new_code_cell(
            "AttentionView(m, torch.tensor([[0, 1, 2, 3, 1, 2, 3, 1]]), window=3)"
        ),
        # text neurons: top examples as tokens coloured by activation, the same strings
        nbformat.v4.new_code_cell(
            "neurons = NeuronView(m, torch.tensor([[0, 1, 2, 3, 1, 2, 3, 1], [0, 2, 1, 3, 2, 1, 3, 2]]),\n"
            "    k=2, n_effects=2)\n"
            "neurons"
        ),
    ]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, lab_server.root / "escaping.ipynb")
    open_notebook(page, lab_server.lab("escaping.ipynb"), "escaping.ipynb")
    run_all(page, timeout_s=180)
    view = page.locator('[data-testid="attention-view"]').first
    view.wait_for(state="visible")
    labels = view.locator(".ex-axis-label").all_inner_texts()
    # the token renderer marks spaces with a visible dot; the characters stay text
    evil_text = '<img src=x onerror="window.__xss=1">'.replace(" ", "\u00b7")
    assert evil_text in labels
    assert "<b>bold</b>" in labels and "a&amp;b" in labels
    assert view.locator("img").count() == 0 and view.locator("b").count() == 0
    assert page.evaluate("window.__xss") is None
    view.screenshot(path=str(artifacts / "escaping.png"))

    windowed = page.locator('[data-testid="attention-view"]').nth(1)
    note = windowed.locator('[data-testid="window-note"]')
    note.wait_for(state="visible")
    assert "showing query rows 0..2 of 8" in note.inner_text()
    rows = windowed.locator(".ex-axis-rows .ex-axis-label")
    assert rows.all_inner_texts() == ["BOS", evil_text, "<b>bold</b>"]
    windowed.locator('[data-testid="window-later"]').click()
    wait_until(lambda: "query rows 3..5 of 8" in note.inner_text(), what="the next window")
    assert rows.all_inner_texts() == ["a&amp;b", evil_text, "<b>bold</b>"]
    windowed.screenshot(path=str(artifacts / "attention-view-windowed.png"))

    neurons = page.locator('[data-testid="neuron-view"]').first
    neurons.wait_for(state="visible")
    tokens = neurons.locator(".ex-token")
    assert evil_text in tokens.all_inner_texts()
    coloured = {t.evaluate("(n) => getComputedStyle(n).backgroundColor") for t in tokens.all()}
    assert len(coloured) > 2, f"tokens are not coloured by activation: {coloured}"
    effects = neurons.locator('[data-testid="effects"]').inner_text()
    assert evil_text in effects  # 4 tokens, n_effects=2: all are listed
    assert neurons.locator("img").count() == 0 and neurons.locator("b").count() == 0
    neurons.screenshot(path=str(artifacts / "neuron-view-text.png"))
    assert page.evaluate("window.__xss") is None and page.js_errors == []


def test_notebook7_renders_and_updates_a_view(lab_server, page, artifacts):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import torch\n"
            "from explorer.models import zoo\n"
            "from explorer.data import repeated_tokens\n"
            "from explorer.views import AttentionView\n"
            "m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)\n"
            "view = AttentionView(m, repeated_tokens(2, 6, 20))\n"
            "view"
        )
    ]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, lab_server.root / "notebook7.ipynb")
    page.goto(lab_server.tree())
    page.locator("text=notebook7.ipynb").first.wait_for()
    open_notebook(page, lab_server.notebook7("notebook7.ipynb"), "notebook7.ipynb")
    run_all(page, timeout_s=180)
    view = page.locator('[data-testid="attention-view"]').first
    view.wait_for(state="visible")
    view.locator('[data-testid="head-1-3"]').click()
    selected = view.locator('[data-testid="selected-head"]')
    wait_until(lambda: selected.inner_text() == "head 1.3", what="head 1.3 in Notebook 7")
    kernel = kernel_json(page, "import json; print(json.dumps([view.layer, view.head]))")
    assert kernel == [1, 3]
    view.screenshot(path=str(artifacts / "notebook7-attention-view.png"))
    # Notebook 7.6's own bundle throws while loading settings ("reading 'schema'"), with or
    # without explorer; anything else (our ES modules, anywidget) must not throw.
    assert [e for e in page.js_errors if "/static/notebook/notebook_core." not in e] == []
    assert json.loads(json.dumps(error_outputs(page))) == []
