"""A long request in a real JupyterLab: the page shows it pending with the time elapsed, the
kernel runs other cells meanwhile, and Cancel stops it, leaving the view as it was.

The sweep is made slow on purpose (its metric sleeps 0.3 s per ablated copy; four layers of
16 neurons, one chunk per layer), so it runs for about 20 s unless cancelled; Cancel lands
at the next layer's chunk.
"""

from __future__ import annotations

import re

import pytest
from lab_driver import kernel_json, run_cells, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


SETUP = """\
import time, torch
from explorer.models import zoo
from explorer.analysis import metrics
from explorer.views import InterventionPanel
m = zoo.mnist_mlp(hidden=(16, 16, 16, 16), seed=0)
x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
accuracy = metrics.accuracy(y)
def slow_accuracy(logits):
    time.sleep(0.3)
    return accuracy(logits)
panel = InterventionPanel(m, (x, y), {"slow accuracy": slow_accuracy})
panel"""


def test_a_slow_sweep_shows_pending_keeps_the_kernel_free_and_cancels(lab_server, page, artifacts):
    run_cells(page, lab_server, "long_requests.ipynb", SETUP)
    panel = page.locator('[data-testid="intervention-panel"]').first
    sweep = panel.locator('[data-testid="sweep"]')
    sweep.wait_for(state="visible")
    pending = panel.locator('[data-testid="pending-text"]')
    assert not pending.is_visible()

    sweep.click()
    pending.wait_for(state="visible", timeout=30_000)
    assert pending.inner_text().startswith("running sweep…")
    wait_until(
        lambda: re.fullmatch(r"running sweep… [1-9]\d* s", pending.inner_text()) is not None,
        what="the elapsed seconds to count up",
    )
    panel.screenshot(path=str(artifacts / "sweep-pending.png"))
    # the kernel is free: another cell runs (and sees the sweep still running)
    seen = kernel_json(page, "import json; print(json.dumps([panel.busy, 6 * 7]))")
    assert seen == ["sweep", 42]

    panel.locator('[data-testid="cancel"]').click()
    cancelled = panel.locator('[data-testid="cancelled"]')
    cancelled.wait_for(state="visible", timeout=30_000)
    assert cancelled.inner_text().startswith("sweep cancelled after ")
    assert not pending.is_visible()
    assert panel.locator('[data-testid="sweep-heatmap"]').count() == 0  # nothing half-drawn
    wait_until(
        lambda: sweep.is_enabled() and sweep.inner_text().startswith("Sweep"),
        what="the Sweep button to come back",
    )
    panel.screenshot(path=str(artifacts / "sweep-cancelled.png"))
    state = kernel_json(
        page,
        "import json; print(json.dumps([panel.busy, panel.last_run['outcome'], "
        "panel.sweep_effects['shape'], panel.error]))",
    )
    assert state == ["", "cancelled", [0], ""]
    assert page.js_errors == []


HYPOTHESES = """\
from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split, planted
from explorer.views import HypothesisBoard, HypothesisWidget
model, data = planted.concept_neuron_model(), planted.concept_examples(200)
store = HypothesisStore(":memory:")
h = Hypothesis(claim="neuron 0.3 detects the concept", units="neuron 0.3",
    measure=NeuronSelectivity(), threshold=0.9,
    formation=Split(range(100)), held_out=Split(range(100, 200)))
widget = HypothesisWidget(h, model, data, store=store, project="room", author="ada")
widget"""
BOARD = 'board = HypothesisBoard(store, "room", model=model, data=data)\nboard'


def test_hypothesis_test_and_rerun_answer_from_the_background(lab_server, page, artifacts):
    """Each hypothesis widget has its own module; Test and Re-run all run in the background
    and the page re-enables its buttons when they are answered."""
    run_cells(page, lab_server, "hypotheses.ipynb", HYPOTHESES, BOARD)
    widget = page.locator('[data-testid="hypothesis-widget"]').first
    widget.wait_for(state="visible")
    widget.locator('[data-testid="threshold"]').fill("0.95")
    widget.locator('[data-testid="direction"]').select_option("above")
    widget.locator('[data-testid="test"]').click()
    status = widget.locator('[data-testid="verdict-status"]')
    status.wait_for(state="visible", timeout=60_000)
    assert status.inner_text() == "supported"
    test = widget.locator('[data-testid="test"]')
    wait_until(lambda: test.is_enabled() and test.inner_text() == "Test", what="Test to return")
    seen = kernel_json(
        page,
        "import json; print(json.dumps([widget.threshold, widget.status, widget.requests, "
        "widget.last_run['outcome'], len(store.get(h.id).verdicts)]))",
    )
    assert seen == [0.95, "supported", 1, "done", 1]
    widget.screenshot(path=str(artifacts / "hypothesis-tested.png"))

    board = page.locator('[data-testid="hypothesis-board"]').first
    board.wait_for(state="visible")
    board.locator('[data-testid="rerun"]').click()
    message = board.locator('[data-testid="message"]')
    message.wait_for(state="visible", timeout=60_000)
    assert message.inner_text().startswith("re-ran 1 of 1 on planted-concept-mlp")
    rerun = board.locator('[data-testid="rerun"]')
    wait_until(
        lambda: rerun.is_enabled() and rerun.inner_text() == "Re-run all",
        what="Re-run all to return",
    )
    assert board.locator('[data-testid="project"]').input_value() == "room"
    board.screenshot(path=str(artifacts / "hypothesis-board-rerun.png"))
    assert kernel_json(page, "import json; print(json.dumps(len(store.get(h.id).verdicts)))") == 2
    assert page.js_errors == []


SCRUBBER = """\
import tempfile, time, torch
from explorer.models import zoo
from explorer.training import Run
from explorer.views.scrubber import TrainingScrubber
m = zoo.modular_addition_transformer(5, d_model=8)
run = Run.create(tempfile.mkdtemp() + "/run", m)
for s in (0, 10, 20):
    run.save_checkpoint(m, s)
    run.log(s, {"train_loss": 1.0 / (s + 1)})
x = torch.tensor([[0, 1, 5]])
def slow_view(model, step):  # a linked view: a pass every 0.2 s for 30 s off the last step
    for _ in range(0 if step == 20 else 150):
        time.sleep(0.2)
        model(x)
scrubber = TrainingScrubber(run, on_step=slow_view)
scrubber"""


def test_a_slow_step_change_runs_in_the_background_and_cancels(lab_server, page, artifacts):
    """Moving the slider loads a checkpoint and runs the on_step views as a "set" request:
    pending with Cancel, the kernel free meanwhile; Cancel puts the step back."""
    run_cells(page, lab_server, "scrubber.ipynb", SCRUBBER)
    view = page.locator('[data-testid="training-scrubber"]').first
    slider = view.locator('[data-testid="step-slider"]')
    slider.wait_for(state="visible")
    pending = view.locator('[data-testid="pending-text"]')
    assert not pending.is_visible()
    # released on the checkpoint of step 10 (index 1): what a drag or an arrow key ends with
    slider.evaluate("el => { el.value = 1; el.dispatchEvent(new Event('change')); }")
    pending.wait_for(state="visible", timeout=30_000)
    wait_until(
        lambda: re.fullmatch(r"running set… [1-9]\d* s", pending.inner_text()) is not None,
        what="the elapsed seconds to count up",
    )
    view.screenshot(path=str(artifacts / "scrubber-pending.png"))
    seen = kernel_json(page, "import json; print(json.dumps([scrubber.busy, 6 * 7]))")
    assert seen == ["set", 42]  # the kernel runs this cell while the views still load
    view.locator('[data-testid="cancel"]').click()
    cancelled = view.locator('[data-testid="cancelled"]')
    cancelled.wait_for(state="visible", timeout=30_000)
    assert cancelled.inner_text().startswith("set cancelled after ")
    wait_until(
        lambda: view.locator('[data-testid="step-label"]').inner_text() == "step 20",
        what="the step to be put back",
    )
    view.screenshot(path=str(artifacts / "scrubber-cancelled.png"))
    state = kernel_json(
        page,
        "import json; print(json.dumps([scrubber.busy, scrubber.last_run['outcome'], "
        "scrubber.step, scrubber.model.name, scrubber.error]))",
    )
    assert state[:3] == ["", "cancelled", 20] and state[4] == ""
    assert state[3].endswith("@20")  # the checkpoint of step 20 was loaded back
    assert page.js_errors == []


OUTPUT_SCRUBBER = """import tempfile
import ipywidgets
from explorer.models import zoo
from explorer.training import Run
from explorer.views.scrubber import TrainingScrubber
m = zoo.modular_addition_transformer(5, d_model=8)
run = Run.create(tempfile.mkdtemp() + "/run", m)
for s in (0, 10, 20):
    run.save_checkpoint(m, s)
    run.log(s, {"train_loss": 1.0 / (s + 1)})
shown = ipywidgets.Output()
def draw(model, step):  # as the grokking tutorial draws its spectrum
    shown.outputs = ()
    shown.append_stdout(f"drawn for step {step}")
scrubber = TrainingScrubber(run, on_step=draw)
ipywidgets.VBox([scrubber, shown])"""


def test_a_step_callback_draws_into_an_output_widget(lab_server, page, artifacts):
    """An on_step callback run in the background draws into an Output widget through its
    ``outputs`` (``append_stdout``, ``append_display_data``), as the grokking tutorial's
    spectrum does. (``with shown: print(...)`` shows nothing from a page change, in the
    background or not: the kernel routes that print by the comm message, which no output
    area is waiting for.)"""
    run_cells(page, lab_server, "scrubber_output.ipynb", OUTPUT_SCRUBBER)
    view = page.locator('[data-testid="training-scrubber"]').first
    slider = view.locator('[data-testid="step-slider"]')
    slider.wait_for(state="visible")
    drawn = page.locator(".jp-OutputArea-output", has_text="drawn for step")
    wait_until(lambda: "drawn for step 20" in drawn.last.inner_text(), what="the first drawing")
    slider.evaluate("el => { el.value = 1; el.dispatchEvent(new Event('change')); }")
    wait_until(
        lambda: "drawn for step 10" in drawn.last.inner_text(),
        timeout_s=60,
        what="the Output widget to show step 10",
    )
    page.locator(".jp-Notebook").screenshot(path=str(artifacts / "scrubber-output.png"))
    assert page.get_by_text("drawn for step 20").count() == 0  # replaced, not appended
    assert page.js_errors == []
