"""SweepView in a real JupyterLab: the phase diagram of a tiny grokking sweep (2 x 2 settings
x 2 seeds, trained in the notebook's kernel) with its axes, "never" strips and colour bar;
switching the curves' measure; a click on a strip opening the run in the scrubber beside it.
Screenshots go to test-artifacts/browser/sweep-view*.png."""

from __future__ import annotations

import pytest
from lab_driver import kernel_json, run_cells, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = """\
import tempfile, torch
torch.set_num_threads(1)
from explorer.sweep import sweep
from explorer.views import SweepView
s = sweep("grokking", {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]}, seeds=[0, 1],
          folder=tempfile.mkdtemp() + "/s", executor="serial", progress=False, n_batches=0,
          base={"p": 7, "steps": 30, "d_model": 16, "eval_every": 5})
view = SweepView(s, outcome="train_99")
view"""


def _texts(locator) -> list[str]:
    return [locator.nth(i).text_content() for i in range(locator.count())]


def test_the_phase_diagram_curves_and_a_click_to_the_scrubber(lab_server, page, artifacts):
    run_cells(page, lab_server, "sweep_view.ipynb", SETUP, timeout_s=600)
    view = page.locator('[data-testid="sweep-view"]').first
    diagram = view.locator('[data-testid="phase-diagram"]')
    diagram.wait_for(state="visible", timeout=60_000)

    # axes: titles and ticks name the settings and their values, rows where they belong
    assert diagram.locator('[data-testid="x-axis-title"]').text_content() == "lr"
    assert diagram.locator('[data-testid="y-axis-title"]').text_content() == "train_frac"
    assert _texts(diagram.locator('[data-testid="x-tick"]')) == ["0.001", "0.03"]
    y_ticks = diagram.locator('[data-testid="y-tick"]')
    assert _texts(y_ticks) == ["0.3", "0.9"]
    cells = diagram.locator('[data-testid="cell"]')
    assert cells.count() == 4
    for i in range(4):
        cell = cells.nth(i)
        row = int(cell.get_attribute("data-row"))
        box, tick = cell.bounding_box(), y_ticks.nth(row).bounding_box()
        assert box["y"] < tick["y"] + tick["height"] / 2 < box["y"] + box["height"]
        assert cell.get_attribute("data-y") == _texts(y_ticks)[row]

    # one strip per run; "never" exactly where the run's record has no train_99
    expected = kernel_json(
        page,
        "import json; print(json.dumps({n: r['outcomes']['train_99'] for n, r in "
        "s.records.items()}))",
    )
    strips = diagram.locator('[data-testid="strip"]')
    assert strips.count() == 8
    shown = {
        strips.nth(i).get_attribute("data-run"): strips.nth(i).get_attribute("data-state")
        for i in range(8)
    }
    assert shown == {n: "never" if v is None else "reached" for n, v in expected.items()}
    assert "never" in shown.values() and "reached" in shown.values()
    assert view.locator('[data-testid="legend-never"]').is_visible()
    label = view.locator('[data-testid="colorbar-label"]').text_content()
    assert label == "train_99: step train accuracy first passed 99%"
    assert view.locator('[data-testid="colorbar-tick"]').count() == 3
    texts = _texts(diagram.locator('[data-testid="cell-text"]'))
    assert any(t.startswith("never") for t in texts) and any(t[0].isdigit() for t in texts)
    view.screenshot(path=str(artifacts / "sweep-view.png"))

    # the curves: one per run, then another measure
    curves = view.locator('[data-testid="curves"]')
    assert curves.locator('[data-testid="curve"]').count() == 8
    assert curves.locator('[data-testid="curve-y-title"]').text_content() == "test_acc"
    assert curves.locator('[data-testid="curve-x-title"]').text_content() == "step"
    assert _texts(view.locator('[data-testid="curve-legend-item"]')) == ["0.001", "0.03"]
    view.locator('[data-testid="measure-select"]').select_option("train_loss")
    title = curves.locator('[data-testid="curve-y-title"]')
    wait_until(lambda: title.text_content() == "train_loss (log scale)", what="the new measure")
    assert curves.locator('[data-testid="curve"]').count() == 8
    assert kernel_json(page, "import json; print(json.dumps([view.measure, view.error]))") == [
        "train_loss",
        "",
    ]

    # a click on a strip opens that run in the scrubber beside the view
    strip = diagram.locator('[data-testid="strip"][data-state="reached"]').first
    name = strip.get_attribute("data-run")
    strip.click()
    scrubber = page.locator('[data-testid="training-scrubber"]').first
    scrubber.wait_for(state="visible", timeout=60_000)
    wait_until(
        lambda: view.locator('[data-testid="selected-run"]').count() == 1,
        what="the view to mark the run it opened",
    )
    opened = kernel_json(
        page, "import json; print(json.dumps([view.scrubber.run.path.name, view.error]))"
    )
    assert opened == [name, ""]
    assert scrubber.locator('[data-testid="step-slider"]').is_visible()
    view_box, scrubber_box = view.bounding_box(), scrubber.bounding_box()
    assert scrubber_box["width"] > 300 and scrubber_box["height"] > 200  # drawn, not squashed
    assert view_box["width"] > 500 and view_box["height"] > 500
    page.locator(".jp-OutputArea-output").filter(has=scrubber).first.screenshot(
        path=str(artifacts / "sweep-view-scrubber.png")
    )
    assert page.js_errors == []


LAUNCH = """\
import tempfile, torch
torch.set_num_threads(1)
from explorer.views import SweepView
live = SweepView.launch("grokking", {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]}, seeds=[0, 1],
                        folder=tempfile.mkdtemp() + "/live", executor="serial", n_batches=0,
                        base={"p": 7, "steps": 30, "d_model": 16, "eval_every": 5})
live"""


def test_a_sweep_launched_from_the_view_shows_progress_and_stops(lab_server, page, artifacts):
    """The sweep runs on a thread of the kernel: the page counts the runs as they finish,
    fills their strips in, and Stop ends it with every finished run kept."""
    run_cells(page, lab_server, "sweep_launch.ipynb", LAUNCH, timeout_s=300)
    view = page.locator('[data-testid="sweep-view"]').first
    text = view.locator('[data-testid="progress-text"]')
    text.wait_for(state="visible", timeout=60_000)
    wait_until(
        lambda: (text.get_attribute("data-done") or "0") not in ("", "0"),
        timeout_s=240,
        what="a first run to finish",
    )
    assert " runs done, " in text.text_content() and "left" in text.text_content()
    strips = view.locator('[data-testid="strip"]')
    states = [strips.nth(i).get_attribute("data-state") for i in range(strips.count())]
    assert "unfinished" in states and len(states) == 8
    view.screenshot(path=str(artifacts / "sweep-view-running.png"))
    view.locator('[data-testid="stop-sweep"]').click()
    wait_until(
        lambda: text.get_attribute("data-outcome") == "cancelled", timeout_s=120, what="the stop"
    )
    assert view.locator('[data-testid="stop-sweep"]').count() == 0
    kept = kernel_json(
        page,
        "import json; print(json.dumps([len(live.sweep.finished), live.sweep.interrupted, "
        "live.sweeping, live.error]))",
    )
    assert kept[0] >= 1 and kept[1:] == [True, False, ""]
    assert text.text_content().startswith(f"cancelled: {kept[0]} of 8 runs finished")
    shown = [strips.nth(i).get_attribute("data-state") for i in range(strips.count())]
    assert len(shown) - shown.count("unfinished") == kept[0]
    view.screenshot(path=str(artifacts / "sweep-view-stopped.png"))
    assert page.js_errors == []
