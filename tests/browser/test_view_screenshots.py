"""Every view drawn at a narrow and a wide page width, from static snapshots (no JupyterLab).

Each view is built in-process on the shipped trained models, written as a static HTML
snapshot (``explorer.views.snapshot``) and drawn by headless Chromium at 420 and 1280 px.
The PNGs go to test-artifacts/browser/views/ (look at them). Checks, per view and width:
it drew without a JavaScript error; every canvas has content (at least two colours); a
view that colours values (a heatmap, coloured tokens) draws a legend, and every legend says
in words what its two ends mean; no chart lacks an axis label; axis labels never overlap; nothing is wider than the page.
And the visual language: the one diverging map shows "worse for the model" in red whether
the metric is a loss (up is worse) or a score (down is worse), with its meaning stated.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.browser

WIDTHS = (420, 1280)

CHECKS = """(root) => {
  const problems = [];
  const canvases = [...root.querySelectorAll('canvas')].filter((c) => c.width && c.height);
  for (const c of canvases) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 2; i += 4) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
    if (seen.size < 2) problems.push('a blank canvas ' + (c.dataset.testid || c.className));
  }
  for (const chart of root.querySelectorAll('.ex-chart')) {
    const x = chart.querySelector('.ex-chart-xlabel'), y = chart.querySelector('.ex-chart-ylabel');
    if (!x || !x.textContent.trim() || !y || !y.textContent.trim()) problems.push('a chart without axis labels: ' + chart.dataset.testid);
  }
  const legends = [...root.querySelectorAll('.ex-legend')];
  for (const legend of legends) {
    const ends = [...legend.querySelectorAll('[data-testid="colour-meaning"] > span:not(.ex-swatch)')];
    if (ends.length !== 2 || ends.some((e) => !e.textContent.trim())) problems.push('a legend that does not say what its ends mean: ' + legend.textContent);
  }
  if (root.querySelector('.ex-heatmap, .ex-token[style*="background"]') && !legends.length) problems.push('colours without a legend');
  const boxes = (sel) => [...root.querySelectorAll(sel)].map((e) => e.getBoundingClientRect());
  const rows = boxes('.ex-axis-rows .ex-axis-label');
  for (let i = 1; i < rows.length; i++) if (rows[i].top < rows[i - 1].bottom - 1) problems.push('row labels overlap');
  const cols = [...root.querySelectorAll('.ex-axis-cols .ex-axis-label')].map((e) => parseFloat(e.style.left));
  for (let i = 1; i < cols.length; i++) if (cols[i] - cols[i - 1] < 15.5) problems.push('column labels closer than 16 px: ' + (cols[i] - cols[i - 1]));
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) problems.push('wider than the page: ' + page.scrollWidth + ' px');
  return problems;
}"""


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    import explorer
    from explorer.analysis import metrics
    from explorer.data import load_mnist, repeated_tokens
    from explorer.hypotheses import AblationEffect, HypothesisStore, Split
    from explorer.views import (
        AttentionView,
        HypothesisBoard,
        HypothesisWidget,
        InterventionPanel,
        NeuronView,
        PatchingView,
    )

    torch.set_num_threads(1)
    model = explorer.load("shipped:quickstart-induction")
    prompts = repeated_tokens(32, 20, 64, seed=2)
    loss = metrics.repeated_half_loss(prompts)

    def log_likelihood(logits):  # a score: higher is better
        return -loss(logits)

    panels = {}
    for name, metric in (("loss on repeated half", loss), ("log-likelihood", log_likelihood)):
        panel = InterventionPanel(model, prompts, {name: metric}, kind="mean")
        panel.sweep()
        panel.units = ["head 0.1"]
        panels[name] = panel
    clean = repeated_tokens(8, 20, 64, seed=3)
    corrupted = clean.clone()
    corrupted[:, 1:21] = repeated_tokens(8, 20, 64, seed=4)[:, 1:21]
    mlp, digits = explorer.load("shipped:quickstart-mnist-mlp"), load_mnist()
    neurons = NeuronView(mlp, digits)
    dead = NeuronView(mlp, digits)
    dead.neuron = dead.dead_units[0]
    hypothesis = explorer.Hypothesis(
        claim="head 0.1 is the bottleneck",
        units="head 0.1",
        measure=AblationEffect(metric="repeated_half_loss", ablation="mean"),
        threshold=1.0,
        formation=Split(range(16)),
        held_out=Split(range(16, 32)),
        n_boot=200,
    )
    store = HypothesisStore("sqlite://")
    claim = HypothesisWidget(hypothesis, model, prompts, store=store, project="shots")
    claim.test()
    from explorer.training import Run
    from explorer.views.scrubber import TrainingScrubber

    small = explorer.zoo.modular_addition_transformer(5, d_model=8)
    run = Run.create(tmp_path_factory.mktemp("run") / "run", small)
    for step in (0, 100, 200, 400):
        run.save_checkpoint(small, step)
    for step in range(0, 401, 20):
        run.log(step, {"train_loss": 2.0 / (1 + step / 50), "test_loss": 2.0 - step / 400})
    return {
        "scrubber": TrainingScrubber(run, phases=[("memorisation", 0, 150), ("circuit", 150, 400)]),
        "attention": AttentionView(model, prompts[:4]),
        "intervention-loss": panels["loss on repeated half"],
        "intervention-score": panels["log-likelihood"],
        "patching": PatchingView(model, clean, corrupted, metrics.repeated_half_loss(clean)),
        "neuron": neurons,
        "neuron-dead": dead,
        "hypothesis": claim,
        "board": HypothesisBoard(store, "shots", model=model, data=prompts),
    }


@pytest.fixture(scope="module")
def drawn(views, browser, artifacts, tmp_path_factory):
    """{(view, width): (problems, js errors, page)} after drawing each snapshot."""
    from explorer.views.snapshot import snapshot_page

    folder = artifacts / "views"
    folder.mkdir(exist_ok=True)
    pages = tmp_path_factory.mktemp("snapshots")
    out = {}
    for name, widget in views.items():
        html = pages / f"{name}.html"
        html.write_text(snapshot_page([(name, widget)]))
        for width in WIDTHS:
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(html.as_uri())
            page.wait_for_selector(".explorer-snapshot[data-rendered]", timeout=30_000)
            view = page.locator(".explorer-snapshot-view").first
            view.screenshot(path=str(folder / f"{name}-{width}.png"))
            problems = page.evaluate(CHECKS, view.element_handle())
            out[name, width] = (problems, errors, page, context)
    yield out
    for *_, context in out.values():
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "name",
    [
        "scrubber",
        "attention",
        "intervention-loss",
        "intervention-score",
        "patching",
        "neuron",
        "neuron-dead",
        "hypothesis",
        "board",
    ],
)
def test_each_view_draws_content_at_each_width(drawn, artifacts, name, width):
    problems, errors, page, _ = drawn[name, width]
    assert errors == []
    assert problems == []
    assert (artifacts / "views" / f"{name}-{width}.png").stat().st_size > 2000
    assert page.locator(".ex-error:visible").count() == 0


def _cell_colour(page, row: int, col: int) -> tuple[int, int, int]:
    return tuple(
        page.evaluate(
            """([row, col]) => {
              const c = document.querySelector('[data-testid="sweep-heatmap"] canvas');
              const w = c.width / 4, h = c.height / 2;
              const d = c.getContext('2d').getImageData(Math.floor((col + 0.5) * w), Math.floor((row + 0.3) * h), 1, 1).data;
              return [d[0], d[1], d[2]];
            }""",
            [row, col],
        )
    )


@pytest.mark.parametrize("name", ["intervention-loss", "intervention-score"])
def test_worse_for_the_model_is_red_whatever_the_metrics_sign(drawn, views, name):
    _, _, page, _ = drawn[name, 1280]
    effect = views[name].sweep_effects
    assert effect["shape"] == [2, 4]
    r, g, b = _cell_colour(page, 0, 1)  # head 0.1: ablating it hurts the model most
    assert r > b + 60, (name, (r, g, b))
    meaning = page.locator('[data-testid="colour-meaning"]').inner_text()
    assert "worse for the model" in meaning
    assert views[name].worse_when == ("up" if name == "intervention-loss" else "down")


def test_a_dead_neuron_is_marked(drawn, views):
    _, _, page, _ = drawn["neuron-dead", 1280]
    note = page.locator('[data-testid="dead-note"]')
    assert note.count() == 1 and "never fires" in note.inner_text()
    count = page.locator('[data-testid="dead-count"]').inner_text()
    assert f"{len(views['neuron-dead'].dead_units)} of 64" in count
    _, _, live, _ = drawn["neuron", 1280]
    assert live.locator('[data-testid="dead-note"]').count() == 0


def test_the_hypothesis_shows_the_passes_spent_before_it_was_written(drawn, views):
    _, _, page, _ = drawn["hypothesis", 1280]
    spent = views["hypothesis"].budget_spent
    line = page.locator('[data-testid="budget-spent"]')
    passes = spent["forward"] + spent["backward"]
    assert line.count() == 1 and line.inner_text().startswith(f"written after {passes:,} passes")
    assert f"{spent['examples']:,} examples" in line.inner_text()
