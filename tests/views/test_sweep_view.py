"""``SweepView`` on a real tiny grokking sweep (2 x 2 settings x 2 seeds, 30 steps, built once):
what it shows is the sweep layer's result, menus redraw, a click opens the run in a scrubber
beside it, and a sweep launched from it can be stopped without losing a finished run."""

from __future__ import annotations

import threading

import pytest
import traitlets

from explorer import _atomic
from explorer.sweep import Sweep, phase_diagram, sweep, sweep_curves
from explorer.views import SweepView, TrainingScrubber

BASE = {"p": 7, "steps": 30, "d_model": 16, "eval_every": 5}
GRID = {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]}


@pytest.fixture(autouse=True, scope="module")
def _no_disk_flush():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_atomic, "_fsync", lambda fd: None)
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Sweep:
    return sweep("grokking", GRID, seeds=[0, 1], folder=tmp_path_factory.mktemp("sv") / "s",
                 base=BASE, executor="serial", progress=False, n_batches=0)  # fmt: skip


def test_the_diagram_is_the_sweep_layers_phase_diagram(tiny):
    view = SweepView(tiny, outcome="train_99")
    assert (view.columns, view.rows, view.color_by, view.measure) == (
        "lr",
        "train_frac",
        "lr",
        "test_acc",
    )
    d = phase_diagram(tiny, columns="lr", rows="train_frac", outcome="train_99")
    assert view.column_labels == ["0.001", "0.03"] and view.row_labels == ["0.3", "0.9"]
    assert view.cell_runs == [[list(c) for c in row] for row in d.runs]
    assert view.cell_state.numpy().tolist() == d.state.tolist()
    assert view.cell_text == [[d.cell_text(i, j) for j in range(2)] for i in range(2)]
    # every run's own record, strip by strip: a value where it got there, else never
    for i, row in enumerate(view.cell_runs):
        for j, runs in enumerate(row):
            for k, name in enumerate(runs):
                got = tiny.records[name]["outcomes"]["train_99"]
                state = int(view.cell_state.numpy()[i, j, k])
                assert state == (1 if got is None else 0)
                if got is not None:
                    assert view.cell_value.numpy()[i, j, k] == got
    assert "never" in {t.split(" ")[0] for row in view.cell_text for t in row}
    assert view.color_scale["label"] == "train_99: step train accuracy first passed 99%"
    assert view.error == ""


def test_the_menus_redraw_the_diagram_and_the_curves(tiny):
    view = SweepView(tiny)
    assert view.outcome == "test_95"
    view.columns, view.rows = "train_frac", "lr"
    assert view.column_labels == ["0.3", "0.9"] and view.row_labels == ["0.001", "0.03"]
    view.rows = ""
    assert view.row_labels == ["all"] and view.cell_state["shape"] == [1, 2, 4]
    c = sweep_curves(tiny, "test_acc", color_by="lr")
    assert view.curve_runs == list(c.runs) and view.curve_group_of == list(c.group_of)
    assert view.curve_values["shape"] == list(c.values.shape) and not view.log_y
    view.measure, view.color_by = "train_loss", "train_frac"
    assert view.log_y and view.curve_groups == ["0.3", "0.9"]
    loss = sweep_curves(tiny, "train_loss", color_by="train_frac")
    assert view.curve_values.numpy() == pytest.approx(loss.values.float().numpy(), nan_ok=True)
    with pytest.raises(traitlets.TraitError, match="choose one of lr, train_frac, seed"):
        view.columns = "weight_decay"
    view.outcome = "test_96"
    assert "its outcomes are train_99, test_95" in view.error


def test_a_click_opens_the_run_in_a_scrubber_beside_the_view(tiny):
    view = SweepView(tiny)
    assert view.beside.children == (view,)
    assert view._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"] == (
        view.beside.model_id
    )
    first, second = tiny.names[0], tiny.names[5]
    view._page_set({"selected_run": first}, [])  # the page's click on a strip or curve
    assert view.wait(60) and view.last_run["outcome"] == "done"
    scrubber = view.scrubber
    assert isinstance(scrubber, TrainingScrubber)
    assert scrubber.run.path == tiny.run(first).path
    assert view.beside.children == (view, scrubber)
    view.open_run(second)
    assert view.scrubber.run.path == tiny.run(second).path
    assert view.beside.children == (view, view.scrubber) and scrubber.comm is None  # closed
    with pytest.raises(traitlets.TraitError, match="no run 'nope' in this sweep"):
        view.open_run("nope")
    view.open_run("")
    assert view.scrubber is None and view.beside.children == (view,)


def test_stop_keeps_finished_runs_and_the_rerun_reruns_none_of_them(tmp_path):
    """Stopped (the page's button) as the third point starts: it stops at its first step,
    saved; the two finished points are kept, and running the sweep again runs only the
    other two."""
    grid, folder = {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]}, tmp_path / "s"
    holder: list[SweepView] = []
    started = threading.Event()
    seen: list[int] = []

    def stop_at_the_third(p):  # called as each point starts and as it finishes
        started.wait(30)
        seen.append(p.done)
        if seen.count(2) == 2:  # the third point starts
            holder[0]._page_cancel_sweep({}, [])

    options = dict(base=BASE, executor="serial", n_batches=0)
    view = SweepView.launch(
        "grokking", grid, folder=folder, on_progress=stop_at_the_third, **options
    )
    holder.append(view)
    started.set()
    assert view.sweeping and view.cell_state.numpy().tolist() == [[[2], [2]], [[2], [2]]]
    assert view.wait_sweep(120)
    assert not view.sweeping and view.error == ""
    assert view.progress["outcome"] == "cancelled" and view.sweep.interrupted
    kept = view.sweep.finished
    assert len(kept) == 2 and view.progress["text"].startswith("cancelled: 2 of 4 runs finished")
    assert sorted(view.cell_state.numpy().flatten().tolist()) == [1, 1, 2, 2]  # never, unfinished
    third = view.sweep.unfinished[0]
    assert view.sweep.run(third).status == "interrupted"  # stopped mid-point, saved
    before = {n: (view.sweep.run(n).path / "metrics.jsonl").read_bytes() for n in kept}

    again = sweep("grokking", grid, folder=folder, progress=False, **options)
    assert set(again.reused) == set(kept) and set(again.ran) == set(view.sweep.unfinished)
    assert {n: (again.run(n).path / "metrics.jsonl").read_bytes() for n in kept} == before
    view.refresh()
    assert view.sweep.unfinished == () and 2 not in view.cell_state.numpy().flatten().tolist()


def test_launch_refuses_what_it_sets_itself(tmp_path):
    with pytest.raises(TypeError, match="launch sets cancel, progress itself"):
        SweepView.launch("grokking", GRID, folder=tmp_path / "s", progress=True, cancel=None)
    with pytest.raises(TypeError, match="shows a Sweep or a sweep folder"):
        SweepView(42)


def test_a_launched_sweep_that_fails_says_why_in_the_view(tmp_path):
    view = SweepView.launch("grokking", GRID, folder=tmp_path / "s", base=BASE, executor="nope")
    assert view.wait_sweep(60) and not view.sweeping
    assert view.error.startswith("ValueError: ") and "executor" in view.error
    assert view.progress["outcome"] == "failed"
    assert view.progress["text"] == "failed: " + view.error
