"""TrainingScrubber without a browser: the step trait loads checkpoints and drives views."""

from __future__ import annotations

import math

import pytest
import torch
import traitlets

from explorer.models import zoo
from explorer.training import Run
from explorer.views.scrubber import TrainingScrubber


@pytest.fixture
def run(tmp_path):
    model = zoo.modular_addition_transformer(5, d_model=8)
    run = Run.create(tmp_path / "run", model)
    for step in (0, 10, 20, 40):
        with torch.no_grad():
            model.model.W_E.fill_(float(step))  # each checkpoint is recognisable by its W_E
        run.save_checkpoint(model, step)
    for step in range(0, 41, 5):
        run.log(step, {"train_loss": 1.0 / (step + 1), "test_loss": 2.0, "train_acc": step / 40})
    return run


def test_changing_step_loads_that_checkpoint(run):
    scrubber = TrainingScrubber(run)
    assert scrubber.step == 40 and float(scrubber.model.model.W_E[0, 0].detach()) == 40.0
    scrubber.step = 10
    assert float(scrubber.model.model.W_E[0, 0].detach()) == 10.0
    assert scrubber.summary == pytest.approx(
        {"step": 10, "train_loss": 1 / 11, "test_loss": 2.0, "train_acc": 0.25}
    )
    assert scrubber.model.name.endswith("@10")


def test_step_snaps_to_the_nearest_checkpoint(run):
    scrubber = TrainingScrubber(run, step=0)
    scrubber.step = 28
    assert scrubber.step == 20 and float(scrubber.model.model.W_E[0, 0].detach()) == 20.0
    scrubber.step = 1000
    assert scrubber.step == 40


def test_callbacks_and_linked_traits_follow_the_step(run):
    seen = []
    scrubber = TrainingScrubber(
        run, on_step=lambda model, step: seen.append((step, float(model.model.W_E[0, 0].detach())))
    )
    assert seen == [(40, 40.0)]

    @scrubber.on_step
    def spectrum_view(model, step):
        seen.append(("view", step))

    class OtherView(traitlets.HasTraits):
        step = traitlets.Int(0)

    other = OtherView()
    traitlets.link((scrubber, "step"), (other, "step"))
    other.step = 20
    assert scrubber.step == 20 and ("view", 20) in seen and (20, 20.0) in seen
    scrubber.step = 0
    assert other.step == 0


def test_a_failing_view_shows_an_error_and_keeps_the_widget_usable(run):
    scrubber = TrainingScrubber(run)

    def broken(model, step):
        if step == 10:
            raise RuntimeError("the view broke")

    scrubber.on_step(broken)
    scrubber.step = 10
    assert "the view broke" in scrubber.error
    scrubber.step = 20
    assert scrubber.error == "" and float(scrubber.model.model.W_E[0, 0].detach()) == 20.0


def test_curves_reach_the_browser_as_float32_payloads(run):
    scrubber = TrainingScrubber(run)
    assert scrubber.curves["dtype"] == "float32" and isinstance(scrubber.curves["data"], bytes)
    grid = scrubber.curves.numpy()
    xs = scrubber.curve_steps.numpy()
    assert xs.tolist() == list(range(0, 41, 5))
    row = scrubber.curve_names.index("train_loss")
    assert grid[row].tolist() == pytest.approx([1 / (s + 1) for s in range(0, 41, 5)])
    assert [p["names"] for p in scrubber.panels] == [["train_loss", "test_loss"], ["train_acc"]]
    assert scrubber.panels[0]["log_y"] and not scrubber.panels[1]["log_y"]


def test_extra_curves_and_phases(run):
    scrubber = TrainingScrubber(run, panels=[["train_loss"]], phases=[("memorisation", 0, 10)])
    scrubber.add_curve("restricted_loss", [0, 10, 20, 40], [3.0, 2.0, 1.0, 0.5], panel=0)
    scrubber.add_curve("gini", [0, 10, 20, 40], [0.1, 0.2, 0.4, 0.8])
    assert scrubber.panels[0]["names"] == ["train_loss", "restricted_loss"]
    assert scrubber.panels[1] == {"title": "gini", "names": ["gini"], "log_y": False}
    grid = scrubber.curves.numpy()
    row = scrubber.curve_names.index("restricted_loss")
    xs = scrubber.curve_steps.numpy().tolist()
    assert grid[row, xs.index(20)] == 1.0 and math.isnan(grid[row, xs.index(5)])
    scrubber.step = 20
    assert scrubber.summary["gini"] == pytest.approx(0.4)
    assert scrubber.phases == [{"name": "memorisation", "start": 0, "end": 10}]
    with pytest.raises(ValueError, match="no metric nope"):
        TrainingScrubber(run, panels=[["nope"]])
    with pytest.raises(ValueError, match="panel 5 out of range"):
        scrubber.add_curve("x", [0], [1.0], panel=5)


def test_refresh_sees_new_checkpoints(run):
    scrubber = TrainingScrubber(run.path)
    model = run.load_model()
    run.save_checkpoint(model, 50)
    run.log(50, {"train_loss": 0.01})
    scrubber.refresh()
    assert scrubber.steps[-1] == 50
    scrubber.step = 50
    assert scrubber.summary["train_loss"] == pytest.approx(0.01)


def test_esm_is_plain_and_self_contained():
    source = TrainingScrubber._esm
    assert "export default" in source and "function render" in source
    assert "http://" not in source.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in source and "import " not in source
