"""The run folder: manifest, append-safe metrics, checkpoints, optimizer state, schedules."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.models import zoo
from explorer.training import CheckpointSchedule, Run, log_spaced


@pytest.fixture
def model():
    return zoo.modular_addition_transformer(5, d_model=8)


def test_create_open_and_manifest(tmp_path, model):
    run = Run.create(tmp_path / "r", model, data={"p": 5}, meta={"note": "x"})
    again = Run.open(tmp_path / "r")
    assert again.status == "created" and again.steps == () and again.data == {"p": 5}
    assert again.manifest["model"]["config"]["d_vocab"] == 6
    with pytest.raises(FileExistsError, match="already holds a run"):
        Run.create(tmp_path / "r", model)
    Run.create(tmp_path / "r", model, overwrite=True)
    with pytest.raises(ValueError, match="has no checkpoints"):
        run.load_model()
    with pytest.raises(TypeError, match="JSON"):
        Run.create(tmp_path / "s", model, data={"x": object()})


def test_explorer_load_opens_runs_and_the_models_layer_points_up_to_it(tmp_path, model):
    """Runs are the training layer's format: the top-level facade opens them; the models
    layer (which may not import training) refuses them with what to call instead."""
    import explorer
    from explorer.models import load as models_load

    run = Run.create(tmp_path / "r", model)
    run.save_checkpoint(model, 0)
    with torch.no_grad():
        model.model.W_E.add_(1.0)
    run.save_checkpoint(model, 3)
    assert explorer.load(tmp_path / "r").fingerprint() == model.fingerprint()
    assert explorer.load(str(tmp_path / "r"), step=0).fingerprint() != model.fingerprint()
    with pytest.raises(ValueError, match=r"is a training run .* explorer\.load\(path, step"):
        models_load(tmp_path / "r")


def test_open_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run"):
        Run.open(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not an explorer run"):
        Run.open(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "explorer-run", "version": 99}')
    with pytest.raises(ValueError, match="upgrade explorer"):
        Run.open(tmp_path)


def test_checkpoints_round_trip_without_pickle(tmp_path, model):
    run = Run.create(tmp_path / "r", model)
    run.save_checkpoint(model, 0)
    with torch.no_grad():
        model.model.W_E.add_(1.0)
    run.save_checkpoint(model, 7)
    assert run.steps == (0, 7) and run.last_step == 7
    assert torch.equal(run.load_model(7).model.W_E, model.model.W_E)
    assert not torch.equal(run.load_model(0).model.W_E, model.model.W_E)
    assert run.nearest_step(5) == 7 and run.nearest_step(2) == 0
    files = {p.name for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert files == {"manifest.json", "model.safetensors", "config.json"}
    fresh = zoo.modular_addition_transformer(5, d_model=8, seed=3)
    run.load_into(fresh, 7)
    assert torch.equal(fresh.model.W_E, model.model.W_E)


def test_metrics_are_append_safe(tmp_path, model):
    run = Run.create(tmp_path / "r", model)
    run.log(0, {"loss": 2.0, "acc": 0.1})
    run.log(5, {"loss": 1.0, "acc": float("nan")})
    run.log(5, {"extra": 3.0})
    with open(tmp_path / "r" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 10, "loss": 0.')  # a process killed mid-write
    metrics = Run.open(tmp_path / "r").metrics()
    assert metrics.get("loss").steps.tolist() == [0, 5]
    assert torch.isnan(metrics.get("acc").values[1])
    assert metrics.get("extra").steps.tolist() == [5]
    assert metrics.last()["loss"] == 1.0
    with pytest.raises(KeyError, match="logged: loss, acc, extra"):
        metrics.get("nope")


def test_truncate_forgets_the_future(tmp_path, model):
    run = Run.create(tmp_path / "r", model)
    for step in (0, 5, 10):
        run.save_checkpoint(model, step)
        run.log(step, {"loss": float(step)})
    run.truncate(5)
    assert run.steps == (0, 5)
    assert run.metrics().get("loss").steps.tolist() == [0]
    assert not run.checkpoint_path(10).exists()


def test_optimizer_state_round_trips_through_safetensors(tmp_path, model):
    run = Run.create(tmp_path / "r", model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0)
    loss = model(torch.tensor([[1, 2, 5]]))[:, -1].sum()
    loss.backward()
    opt.step()
    run.save_checkpoint(model, 1, optimizer=opt)
    twin = torch.optim.AdamW(model.parameters(), lr=5.0)
    assert run.load_optimizer(twin) == 1
    a, b = opt.state_dict(), twin.state_dict()
    assert b["param_groups"][0]["lr"] == 1e-2 and tuple(b["param_groups"][0]["betas"]) == (
        0.9,
        0.98,
    )
    for index, entries in a["state"].items():
        for name, value in entries.items():
            assert torch.equal(value, b["state"][index][name]), (index, name)
    header = json.loads((run.checkpoint_path(1) / "optimizer.json").read_text())
    assert header["step"] == 1 and header["optimizer"] == "AdamW"
    with pytest.raises(ValueError, match="for AdamW"):
        run.load_optimizer(torch.optim.SGD(model.parameters(), lr=0.1))


def test_schedules():
    assert log_spaced(1000, 4) == (1, 10, 100, 1000)
    assert CheckpointSchedule(n_log=0, every=5).planned(12) == (0, 5, 10, 12)
    assert CheckpointSchedule(n_log=0, steps=(3, 50)).planned(10) == (0, 3, 10)
    sched = CheckpointSchedule(on_change={"acc": 0.1})
    assert sched.changed({"acc": 0.5}, {"acc": 0.3}) and not sched.changed(
        {"acc": 0.35}, {"acc": 0.3}
    )
    with pytest.raises(ValueError, match="positive amount"):
        CheckpointSchedule(on_change={"acc": 0})
    with pytest.raises(ValueError, match="every"):
        CheckpointSchedule(every=0)


def test_saving_a_published_step_again_replaces_it_in_one_step(tmp_path, model):
    run = Run.create(tmp_path / "r", model)
    run.save_checkpoint(model, 5)
    first = run.checkpoint_path(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    run.save_checkpoint(model, 5)  # written beside the old folder, then published
    assert run.checkpoint_path(5) != first and not first.exists()
    reopened = Run.open(run.path)
    assert reopened.load_model(5).fingerprint() == model.fingerprint()
    assert [p.name for p in (run.path / "checkpoints").iterdir()] == [run.checkpoint_path(5).name]
    assert reopened.problems() == [] and reopened.repair() == []
