"""``phase_diagram`` and ``sweep_curves`` on a sweep whose outcomes and curves are written by
hand (no training), so every cell, median and curve point is known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.models import zoo
from explorer.sweep import PhaseDiagram, Sweep, SweepCurves, phase_diagram, sweep_curves
from explorer.sweep.folder import SweepFolder
from explorer.sweep.phase import EMPTY, NEVER, REACHED, UNFINISHED
from explorer.sweep.points import expand_points
from explorer.training.run import Run

GRID = {"weight_decay": [1.0, 0.1], "train_frac": [0.3, 0.5]}
# test_95 per point (None: never reached); points left out of OUTCOMES are unfinished
OUTCOMES = {
    "weight_decay=0.1_train_frac=0.3_seed=0": 100,
    "weight_decay=0.1_train_frac=0.3_seed=1": 300,
    "weight_decay=0.1_train_frac=0.3_seed=2": None,
    "weight_decay=0.1_train_frac=0.5_seed=0": None,
    "weight_decay=0.1_train_frac=0.5_seed=1": None,
    "weight_decay=0.1_train_frac=0.5_seed=2": 50,
    "weight_decay=1_train_frac=0.3_seed=0": 40,
    "weight_decay=1_train_frac=0.3_seed=1": 40,
    "weight_decay=1_train_frac=0.5_seed=0": 20,
}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Sweep:
    place = SweepFolder.create(tmp_path_factory.mktemp("phase") / "s", "grokking", {"p": 5})
    points = expand_points(
        grid=GRID, seeds=[0, 1, 2], fields=("weight_decay", "train_frac", "seed")
    )
    place.add(points)
    model = zoo.modular_addition_transformer(p=5, d_model=8)
    for p in points:
        if p.name not in OUTCOMES:
            continue
        run = Run.create(place.run_dir(p.name), model)
        run.save_checkpoint(model, 0)
        seed = p.settings["seed"]
        for step in (0, 10, 20) if seed != 2 else (0, 5):  # seed 2 logs other steps
            run.log(step, {"test_acc": p.settings["train_frac"] + step / 100 + seed})
        place.publish(
            {"name": p.name, "status": "complete", "settings": dict(p.settings),
             "outcomes": {"test_95": OUTCOMES[p.name], "final_test_acc": 0.5}}
        )  # fmt: skip
    return Sweep.open(place.path)


def test_each_cell_holds_its_seeds_with_never_and_unfinished_marked(written):
    d = phase_diagram(written, columns="train_frac", rows="weight_decay", outcome="test_95")
    assert isinstance(d, PhaseDiagram)
    assert d.column_values == (0.3, 0.5) and d.row_values == (0.1, 1.0)  # sorted, not grid order
    assert d.runs[0][0] == tuple(f"weight_decay=0.1_train_frac=0.3_seed={s}" for s in range(3))
    assert d.state[0, 0].tolist() == [REACHED, REACHED, NEVER]
    assert d.value[0, 0, :2].tolist() == [100.0, 300.0] and math.isnan(d.value[0, 0, 2])
    # wd=1, frac=0.5: seed 0 finished, seeds 1 and 2 not yet
    assert d.state[1, 1].tolist() == [REACHED, UNFINISHED, UNFINISHED]
    assert d.n_finished.tolist() == [[3, 3], [2, 1]] and d.n_never.tolist() == [[1, 2], [0, 0]]


def test_the_median_counts_never_as_later_than_any_step(written):
    d = phase_diagram(written, columns="train_frac", rows="weight_decay", outcome="test_95")
    # [100, 300, never] -> 300; [never, never, 50] -> never; [40, 40] -> 40; [20] -> 20
    assert d.median.tolist() == [[300.0, math.inf], [40.0, 20.0]]
    assert (d.low[0, 0], d.high[0, 0]) == (100.0, 300.0)
    assert d.cell_text(0, 0) == "300 (100-300), 1 never"
    assert d.cell_text(0, 1) == "never (2 of 3)"
    assert d.cell_text(1, 0) == "40"
    assert (d.scale.vmin, d.scale.vmax) == (20.0, 300.0)
    assert d.scale.label.startswith("test_95: step test accuracy first passed 95%")


def test_one_row_without_y(written):
    d = phase_diagram(written, columns="weight_decay", outcome="test_95")
    assert d.row_values == ("",) and d.row_labels == ("all",) and d.column_labels == ("0.1", "1")
    assert d.state.shape == (1, 2, 6)
    assert d.state[0, 1].tolist().count(EMPTY) == 0  # wd=1: 6 points, 3 unfinished
    assert d.state[0, 1].tolist().count(UNFINISHED) == 3


def test_the_table_has_one_row_per_run(written):
    frame = phase_diagram(
        written, columns="train_frac", rows="weight_decay", outcome="test_95"
    ).to_dataframe()
    assert list(frame.columns) == ["weight_decay", "train_frac", "run", "state", "test_95"]
    assert len(frame) == 12
    row = frame.set_index("run").loc["weight_decay=0.1_train_frac=0.5_seed=2"]
    assert (row["state"], row["test_95"]) == ("reached", 50.0)
    assert frame["state"].value_counts().to_dict() == {"reached": 6, "never": 3, "unfinished": 3}


def test_bad_settings_and_outcomes_name_what_is_allowed(written):
    with pytest.raises(ValueError, match="choose one of weight_decay, train_frac, seed"):
        phase_diagram(written, columns="lr", outcome="test_95")
    with pytest.raises(ValueError, match="two different settings"):
        phase_diagram(written, columns="seed", rows="seed", outcome="test_95")
    with pytest.raises(ValueError, match="its outcomes are test_95, final_test_acc"):
        phase_diagram(written, columns="seed", outcome="test_96")


def test_curves_share_steps_and_are_grouped_by_a_setting(written):
    c = sweep_curves(written, "test_acc", color_by="train_frac")
    assert isinstance(c, SweepCurves)
    assert c.runs == written.finished and c.steps.tolist() == [0, 5, 10, 20]
    r = c.runs.index("weight_decay=0.1_train_frac=0.3_seed=2")  # logged at 0 and 5 only
    assert c.values[r, :2].tolist() == pytest.approx([2.3, 2.35])
    assert bool(torch.isnan(c.values[r, 2:]).all())
    assert c.groups == ("0.3", "0.5")
    assert [c.groups[g] for g in c.group_of] == [
        n.split("train_frac=")[1].split("_")[0] for n in c.runs
    ]
    assert len(c.to_dataframe()) == int((~torch.isnan(c.values)).sum())
    with pytest.raises(ValueError, match="the measures are test_acc"):
        sweep_curves(written, "test_loss")
    with pytest.raises(ValueError, match="is not a setting this sweep changes"):
        sweep_curves(written, "test_acc", color_by="lr")
