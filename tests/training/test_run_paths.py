"""A run folder is data: no path it names makes explorer read or delete outside it.

Each test edits a run the way a hostile or careless sender could (a manifest entry that
names ``../../victim`` or an absolute folder, a symlink out of the run) and checks that a
``victim`` folder beside the run survives untouched and nothing is read from it: on resume,
``repair()``, ``truncate()``, ``save_checkpoint()``, ``explorer.load`` and the scrubber.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tiny_run import tiny_loss, tiny_model, train_tiny

import explorer
from explorer._atomic import remove_tree
from explorer._inside import OutsideFolderError, inside
from explorer.models.checkpoint import save_checkpoint
from explorer.training import Run, train

_model, _loss = tiny_model, tiny_loss


def _train(path: Path, steps: int = 4):
    return train_tiny(path, steps, every=1)


@pytest.fixture
def run_and_victim(tmp_path):
    """A run with checkpoints 0..4 at tmp/r, and tmp/victim holding a checkpoint and a file
    that must survive (``r/checkpoints/../../victim`` is ``tmp/victim``)."""
    run = _train(tmp_path / "r")
    victim = tmp_path / "victim"
    save_checkpoint(_model(seed=7), victim)
    (victim / "precious.txt").write_text("keep me")
    return run, victim


def _intact(victim: Path) -> bool:
    return (victim / "precious.txt").read_text() == "keep me" and (
        victim / "model.safetensors"
    ).is_file()


def _edit(run: Run, fn) -> None:
    manifest = json.loads((run.path / "manifest.json").read_text())
    fn(manifest)
    (run.path / "manifest.json").write_text(json.dumps(manifest))


def _inject_nine(dir_name: str, files: dict | None = None):
    def edit(m):
        m["checkpoints"] = [0, 1, 2, 9, 3, 4]
        m["index"]["9"] = {"dir": dir_name, "files": files or {}}

    return edit


def test_resume_refuses_a_manifest_entry_outside_the_run(run_and_victim):
    run, victim = run_and_victim
    _edit(run, _inject_nine("../../victim"))
    with pytest.raises(ValueError, match=r"'\.\./\.\./victim' is not a plain name inside run"):
        train(_model(), _loss, steps=6, run=run.path, progress=False)
    assert _intact(victim)
    report = Run.open(run.path).repair()  # the way out the error names
    assert any(line.startswith("dropped checkpoint 9") for line in report), report
    assert _intact(victim)
    assert train(_model(), _loss, steps=6, run=run.path, progress=False).steps[-1] == 6


def test_repair_with_an_absolute_dir_and_a_wrong_size_deletes_nothing_outside(run_and_victim):
    run, victim = run_and_victim
    _edit(run, _inject_nine(str(victim), {"model.safetensors": 1}))
    with pytest.raises(ValueError, match="is inconsistent.*repair"):
        train(_model(), _loss, steps=6, run=run.path, progress=False)
    report = Run.open(run.path).repair()
    assert any("dropped checkpoint 9" in line and str(victim) in line for line in report)
    assert _intact(victim)
    assert Run.open(run.path).steps == (0, 1, 2, 3, 4) and Run.open(run.path).problems() == []


def test_truncate_refuses_a_damaged_manifest_and_deletes_nothing(run_and_victim):
    run, victim = run_and_victim
    _edit(run, _inject_nine("../../victim"))
    with pytest.raises(ValueError, match=r"refusing to truncate to step 2.*Nothing was changed"):
        Run.open(run.path).truncate(2)
    assert _intact(victim) and Run.open(run.path).checkpoint_path(4).is_dir()


def test_save_checkpoint_never_deletes_the_old_folder_a_manifest_names(run_and_victim):
    run, victim = run_and_victim

    def edit(m):
        m["index"]["4"]["dir"] = "../../victim"

    _edit(run, edit)
    with pytest.raises(ValueError, match=r"refusing to save checkpoint 4.*'\.\./\.\./victim'"):
        Run.open(run.path).save_checkpoint(_model(), 4)
    assert _intact(victim)


def test_load_never_reads_weights_from_outside_the_run(run_and_victim):
    run, victim = run_and_victim

    def edit(m):
        m["index"]["4"]["dir"] = "../../victim"

    _edit(run, edit)
    with pytest.raises(OutsideFolderError, match=r"folder of checkpoint 4 '\.\./\.\./victim'"):
        explorer.load(run.path, step=4)
    with pytest.raises(OutsideFolderError):
        Run.open(run.path).load_into(_model(), 4)
    assert "not a plain name" in Run.open(run.path).problems()[0]


def test_the_scrubber_refuses_a_run_that_points_outside(run_and_victim):
    from explorer.views.scrubber import TrainingScrubber

    run, victim = run_and_victim

    def edit(m):
        m["index"]["4"]["dir"] = str(victim)

    _edit(run, edit)
    with pytest.raises(OutsideFolderError, match="checkpoint 4"):
        TrainingScrubber(run.path)


def test_a_checkpoint_folder_symlinked_out_of_the_run_is_refused_and_only_unlinked(
    run_and_victim,
):
    run, victim = run_and_victim
    # the victim holds a byte-copy of checkpoint 4 (so sizes and checksums match) and more
    folder = run.checkpoint_path(4)
    for file in folder.iterdir():
        (victim / file.name).write_bytes(file.read_bytes())
    remove_tree(folder, run.path)
    folder.symlink_to(victim, target_is_directory=True)
    with pytest.raises(ValueError, match=r"symlink that leads outside it"):
        train(_model(), _loss, steps=6, run=run.path, progress=False)
    with pytest.raises(OutsideFolderError):
        explorer.load(run.path)
    assert _intact(victim)
    report = Run.open(run.path).repair()
    assert any(line.startswith("dropped checkpoint 4") for line in report), report
    assert not os.path.lexists(folder) and _intact(victim)  # the link went, not its target
    assert sorted(p.name for p in victim.iterdir()) == sorted(
        [
            "config.json",
            "model.safetensors",
            "optimizer.json",
            "optimizer.safetensors",
            "precious.txt",
        ]
    )


def test_files_and_logs_symlinked_out_of_the_run_are_never_read(run_and_victim, tmp_path):
    run, victim = run_and_victim
    weights = run.checkpoint_path(3) / "model.safetensors"
    weights.unlink()
    weights.symlink_to(victim / "model.safetensors")
    with pytest.raises(OutsideFolderError, match=r"file 'model.safetensors' of checkpoint 3"):
        explorer.load(run.path, step=3)
    assert "symlink that leads outside" in " ".join(Run.open(run.path).problems(3))
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"step": 0, "password": 1}\n')
    (run.path / "metrics.jsonl").unlink()
    (run.path / "metrics.jsonl").symlink_to(secret)
    with pytest.raises(OutsideFolderError, match="metrics log"):
        Run.open(run.path).metrics()
    # a bare checkpoint folder (no run) follows the same rule
    lone = tmp_path / "lone"
    save_checkpoint(_model(), lone)
    (lone / "model.safetensors").unlink()
    (lone / "model.safetensors").symlink_to(victim / "model.safetensors")
    with pytest.raises(OutsideFolderError):
        explorer.load(lone)


def test_an_unpublished_symlink_is_removed_as_a_link(run_and_victim):
    run, victim = run_and_victim
    (run.path / "checkpoints" / "step_000000099").symlink_to(victim, target_is_directory=True)
    assert "removed symlink checkpoints/step_000000099" in Run.open(run.path).repair()
    assert _intact(victim)


def test_the_one_delete_helper_refuses_paths_outside_its_root(tmp_path):
    root, victim = tmp_path / "root", tmp_path / "victim"
    (root / "sub").mkdir(parents=True)
    victim.mkdir()
    (victim / "x").write_text("keep")
    (root / "link").symlink_to(victim, target_is_directory=True)
    for path in (root / ".." / "victim", victim, root / "link" / "x", root / "sub" / ".."):
        with pytest.raises(OutsideFolderError, match="refusing to delete"):
            remove_tree(path, root)
    remove_tree(root / "link", root)  # the link itself is inside: removed, its target kept
    assert (victim / "x").is_file() and not os.path.lexists(root / "link")
    with pytest.raises(OutsideFolderError, match="not a plain name"):
        inside(root, "sub/../../victim")


def test_study_files_in_a_run_folder_are_not_followed_out_of_it(tmp_path):
    """The grokking progress table and the stdlib tokenizer are read from the run folder."""
    from explorer.data.bpe import BPETokenizer
    from explorer.studies import grokking_shipped
    from explorer.studies.grokking import grokking_progress

    run = grokking_shipped.open_run(tmp_path / "g")
    outside = tmp_path / "outside.json"
    outside.write_text((run.path / "progress.json").read_text())
    (run.path / "progress.json").unlink()
    (run.path / "progress.json").symlink_to(outside)
    with pytest.raises(OutsideFolderError, match="progress table"):
        grokking_progress(run)
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "tokenizer.json").symlink_to(outside)
    with pytest.raises(OutsideFolderError, match="tokenizer file"):
        BPETokenizer.load(tmp_path / "lm")
