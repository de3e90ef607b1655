"""Destructive calls check their arguments, checksums catch same-size changes, a lost
manifest is rebuilt from the checkpoint folders, and bad inputs get a sentence."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from tiny_run import tiny_loss, tiny_model, train_tiny

import explorer
from explorer.models import zoo
from explorer.training import CheckpointSchedule, Run, train
from explorer.training._run_repair import sha256_of

_model, _loss = tiny_model, tiny_loss


def _train(path: Path, steps: int = 4, **kwargs):
    return train_tiny(path, steps, every=2, **kwargs)


def _flip_one_weight_byte(run: Run, step: int) -> Path:
    file = run.checkpoint_path(step) / "model.safetensors"
    data = bytearray(file.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes: the size is unchanged
    file.write_bytes(bytes(data))
    return file


# ----------------------------------------------------------------- item: truncate
def test_truncate_refuses_what_is_not_a_checkpoint_step_and_deletes_nothing(tmp_path):
    run = _train(tmp_path / "r")
    before = sorted(p.name for p in (run.path / "checkpoints").iterdir()), run.rows()
    for bad, error, message in (
        (-5, ValueError, r"truncate\(-5\) refused: -5 is not a checkpoint step .*0, 2, 4"),
        (9, ValueError, r"9 is not a checkpoint step"),
        (3, ValueError, r"3 is not a checkpoint step"),
        ("2", TypeError, r"a whole number\), got '2'"),
        (True, TypeError, r"got True"),
        (2.0, TypeError, r"got 2.0"),
    ):
        with pytest.raises(error, match=message):
            Run.open(run.path).truncate(bad)
    after = sorted(p.name for p in (run.path / "checkpoints").iterdir()), run.rows()
    assert after == before and Run.open(run.path).steps == (0, 2, 4)


def test_truncate_says_what_it_deletes_and_can_only_say_it(tmp_path):
    run = _train(tmp_path / "r")
    plan = Run.open(run.path).truncate(2, dry_run=True)
    assert plan == [
        "will delete checkpoint 4 (checkpoints/step_000000004)",
        "will delete 3 metric rows logged at step >= 2",
    ]
    assert Run.open(run.path).steps == (0, 2, 4)
    assert Run.open(run.path).truncate(2) == [p.replace("will delete", "deleted") for p in plan]
    assert Run.open(run.path).steps == (0, 2) and not run.checkpoint_path(4).exists()


# ----------------------------------------------------------------- item: checksums
def test_every_published_file_has_its_sha256_in_the_manifest(tmp_path):
    run = _train(tmp_path / "r")
    for step in run.steps:
        entry = run.manifest["index"][str(step)]
        assert set(entry["sha256"]) == set(entry["files"]) and entry["files"]
        for name, digest in entry["sha256"].items():
            assert sha256_of(run.checkpoint_path(step) / name) == digest


def test_a_same_size_bit_flip_is_found_by_problems_load_and_resume_and_dropped(tmp_path):
    run = _train(tmp_path / "r")
    file = _flip_one_weight_byte(run, 4)
    run = Run.open(run.path)
    assert run.problems() == [
        "checkpoints/step_000000004/model.safetensors does not match the SHA-256 checksum "
        "manifest.json published for it: its bytes changed after it was saved (same size)"
    ]
    with pytest.raises(ValueError, match=r"model.safetensors of run .* does not match the SHA"):
        explorer.load(run.path)
    with pytest.raises(ValueError, match=r"model.safetensors of run .* does not match the SHA"):
        run.load_into(_model(), 4)
    with pytest.raises(ValueError, match=r"SHA-256.*repair\(\).*resumes from step 2"):
        _train(run.path, steps=6)
    assert file.is_file()  # nothing dropped until asked
    report = Run.open(run.path).repair()
    assert report[0].startswith("dropped checkpoint 4: checkpoints/step_000000004/model")
    assert Run.open(run.path).steps == (0, 2) and Run.open(run.path).problems() == []


def test_a_manifest_without_checksums_still_loads_and_says_so(tmp_path):
    run = _train(tmp_path / "r")
    manifest = json.loads((run.path / "manifest.json").read_text())
    for entry in manifest["index"].values():
        del entry["sha256"]
    (run.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match=r"saved without SHA-256 checksums.*rebuild=True"):
        model = explorer.load(run.path)
        assert model.fingerprint() == Run.open(run.path).load_model(4).fingerprint()
    assert Run.open(run.path).problems() == []
    report = Run.repair(run.path, rebuild=True)
    assert "SHA-256 checksums recorded" in report[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer.load(run.path)


# ----------------------------------------------------------------- item: rebuild
def test_a_deleted_manifest_is_rebuilt_from_the_checkpoint_folders(tmp_path):
    run = _train(tmp_path / "r", data={"p": 3})
    before = {s: Run.open(run.path).load_model(s).fingerprint() for s in run.steps}
    (run.path / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no manifest.json .*Run.repair\(.*rebuild=True"):
        explorer.load(run.path)
    with pytest.raises(FileExistsError, match=r"no manifest.json .*Run.repair\(.*rebuild=True"):
        _train(run.path, steps=6)
    report = Run.repair(run.path, rebuild=True)
    assert report[0].startswith("rebuilt manifest.json from 3 checkpoint folders (steps [0, 2, 4])")
    rebuilt = Run.open(run.path)
    assert rebuilt.steps == (0, 2, 4) and rebuilt.problems() == [] and rebuilt.name == "tiny"
    assert {s: rebuilt.load_model(s).fingerprint() for s in rebuilt.steps} == before
    assert rebuilt.has_optimizer_state(4) and rebuilt.status == "interrupted"
    assert _train(run.path, steps=6).steps == (0, 2, 4, 6)  # resumes with step 4's optimizer


def test_a_truncated_manifest_points_to_rebuild_which_keeps_what_it_can(tmp_path):
    run = _train(tmp_path / "r")
    manifest = run.path / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"not valid JSON.*Run.repair\(.*rebuild=True\)"):
        explorer.load(run.path)
    with pytest.raises(ValueError, match=r"not valid JSON.*Run.repair\(.*rebuild=True\)"):
        _train(run.path, steps=6)
    report = Run.repair(run.path, rebuild=True)
    assert "the old one could not be read" in report[0]
    assert Run.open(run.path).steps == (0, 2, 4)
    # a readable manifest keeps its data and meta through a rebuild; an extra folder counts
    run = Run.open(run.path)
    run.update(meta={"note": "kept"})
    (run.path / "checkpoints" / "step_000000009").mkdir()
    (run.path / "checkpoints" / "step_000000009" / "config.json").write_text("{}")
    report = run.repair(rebuild=True)
    assert any(line.startswith("left out checkpoints/step_000000009") for line in report)
    assert Run.open(run.path).manifest["meta"] == {"note": "kept"}
    assert not (run.path / "checkpoints" / "step_000000009").exists()


# ----------------------------------------------------------------- item: bad inputs
def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=8)
    run = Run.create(tmp_path / "r", model)
    with pytest.raises(ValueError, match=r"does not fit run .*family 'transformer' vs 'mlp'"):
        run.save_checkpoint(zoo.mnist_mlp(hidden=(8,)), 1)
    wider = zoo.attention_only_transformer(n_layers=1, d_model=32, d_vocab=10, n_ctx=8)
    with pytest.raises(
        ValueError, match=r"another architecture \(run vs model: d_head 4 vs 8, d_model 16 vs 32\)"
    ):
        run.save_checkpoint(wider, 1)
    with pytest.raises(ValueError, match=r"step must be a whole number >= 0, got -1"):
        run.save_checkpoint(model, -1)
    assert Run.open(run.path).steps == ()


def test_a_metric_that_is_not_a_number_is_left_out_with_the_file_and_line(tmp_path):
    from explorer.views.scrubber import TrainingScrubber

    run = _train(tmp_path / "r")
    with open(run.path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 4, "train_loss": "abc", "extra": 1.5}) + "\n")
    lines = len((run.path / "metrics.jsonl").read_text().splitlines())
    message = rf"metrics.jsonl': 1 values are not numbers .*line {lines}: train_loss = \"abc\""
    with pytest.warns(UserWarning, match=message):
        metrics = Run.open(run.path).metrics()
    assert metrics.get("extra").values.tolist() == [1.5]
    assert len(metrics.get("train_loss").values) == 5
    with pytest.warns(UserWarning, match=message):
        scrubber = TrainingScrubber(run.path)
    assert scrubber.summary["extra"] == 1.5 and scrubber.error == ""
    with pytest.raises(
        TypeError, match=r"metric 'train_loss' at step 5 must be a number, got 'abc'"
    ):
        run.log(5, {"train_loss": "abc"})


def test_a_schedule_of_a_billion_steps_is_never_listed(tmp_path):
    schedule = CheckpointSchedule(n_log=0, every=1)
    with pytest.raises(ValueError, match=r"plans 1,000,000,001 checkpoints .*is_planned"):
        schedule.planned(10**9)
    assert schedule.is_planned(999_999_999, 10**9) and not schedule.is_planned(-1, 10**9)
    assert CheckpointSchedule(n_log=3).is_planned(1000, 1000)
    run = train(
        _model(),
        _loss,
        steps=10**9,
        run=tmp_path / "r",
        checkpoints=schedule,
        stop_when=lambda row: row["step"] >= 2,
        eval_every=1,
        progress=False,
    )
    assert run.steps == (0, 1, 2) and run.status == "stopped"
    for bad in ({"n_log": -1}, {"n_log": 1.5}, {"every": 0}, {"every": True}):
        with pytest.raises(ValueError, match="must be a whole number"):
            CheckpointSchedule(**bad)


def test_the_shipped_tutorial_runs_carry_checksums_that_hold():
    root = Path(explorer.__file__).parent / "studies" / "trained"
    folders = sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())
    assert len(folders) >= 3
    for folder in folders:
        run = Run.open(folder)
        assert run.problems() == [], folder.name
        assert all(run.manifest["index"][str(s)]["sha256"] for s in run.steps), folder.name
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no "saved without SHA-256 ..."
            run.load_model()


def test_repair_never_reads_a_damaged_checkpoint_list_as_an_empty_one(tmp_path):
    run = _train(tmp_path / "r")
    for damaged in ("abc", [0, "2", 4], [0, 2.5]):
        manifest = json.loads((run.path / "manifest.json").read_text())
        manifest["checkpoints"] = damaged
        (run.path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match=r"damaged .*nothing was deleted.*rebuild=True"):
            Run.open(run.path).repair()
        with pytest.raises(ValueError, match=r"refusing to truncate|not a checkpoint step"):
            Run.open(run.path).truncate(0)
        assert len(list((run.path / "checkpoints").iterdir())) == 3
    assert Run.repair(run.path, rebuild=True)[0].startswith("rebuilt manifest.json from 3")
