"""A kill at every write boundary of a training run resumes bit-identically.

``explorer._atomic`` calls a hook at each boundary of each durable write (before a file is
opened, half-way through its bytes, after them, after its fsync, after each rename and folder
fsync, before each removal). The harness counts the boundaries of one uninterrupted run, then
for every one of them trains a fresh copy that is killed exactly there (a ``BaseException``
that no handler in the loop catches, like SIGKILL), resumes it, and compares every published
file with the uninterrupted run's byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from explorer import _atomic
from explorer.models import zoo
from explorer.models.config import MLPConfig
from explorer.training import CheckpointSchedule, OptimizerConfig, Run, train
from explorer.training._run_repair import sha256_of
from explorer.training.optim_state import load_optimizer_state


class Killed(BaseException):
    """The process died here."""


X = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
Y = torch.arange(12) % 3


def _model(seed: int = 0):
    return zoo.build(MLPConfig(input_shape=(4,), hidden=(8,), n_classes=3, seed=seed), name="tiny")


def _loss(model, step):
    logits = model(X)
    return F.cross_entropy(logits, Y), {"acc": float((logits.argmax(-1) == Y).float().mean())}


def _train(path: Path, seed: int = 0, keep: str = "last") -> Run:
    return train(
        _model(seed),
        _loss,
        steps=4,
        run=path,
        optimizer=OptimizerConfig(lr=0.05, weight_decay=0.1),
        checkpoints=CheckpointSchedule(n_log=0, every=2),
        eval_every=2,
        progress=False,
        keep_optimizer=keep,
    )


def _published(run: Run) -> dict[str, object]:
    """Everything a resumed run must reproduce: metric rows and the bytes of every checkpoint."""
    out: dict[str, object] = {"steps": run.steps, "rows": run.rows(), "status": run.status}
    for step in run.steps:
        folder = run.checkpoint_path(step)
        for name in ("model.safetensors", "optimizer.safetensors", "optimizer.json"):
            out[f"{step}/{name}"] = (
                (folder / name).read_bytes() if (folder / name).exists() else None
            )
    return out


@pytest.fixture(autouse=True, scope="module")
def _no_disk_flush():
    # the kills are simulated in-process, where the page cache survives them: flushing to
    # the disk would only make the test slow (what fsync adds is documented, not tested here)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_atomic, "_fsync", lambda fd: None)
        yield


@pytest.fixture(scope="module")
def reference(tmp_path_factory, _no_disk_flush):
    points: list[tuple[str, str]] = []
    root = tmp_path_factory.mktemp("ref") / "run"
    with _atomic.fault_hook(lambda point, path: points.append((point, Path(path).name))):
        run = _train(root)
    return _published(run), points


def test_the_harness_sees_every_kind_of_boundary(reference):
    _, points = reference
    kinds = {p for p, _ in points}
    assert {"open", "mid-write", "written", "fsync", "rename", "fsync-dir"} <= kinds
    files = {name for _, name in points}
    for name in ("model.safetensors", "optimizer.safetensors", "manifest.json", "metrics.jsonl"):
        assert name in files or name + ".tmp" in files, name
    assert len(points) > 100  # three checkpoints, their metrics and the manifest updates


def test_a_kill_at_every_boundary_resumes_bit_identically(reference, tmp_path):
    expected, points = reference
    failures = []
    for k in range(len(points)):
        folder = tmp_path / f"k{k}"

        def kill(point, path, seen=[0], k=k):  # noqa: B006 (a counter per attempt)
            if seen[0] == k:
                raise Killed(f"{point} {path}")
            seen[0] += 1

        with _atomic.fault_hook(kill), pytest.raises(Killed):
            _train(folder)
        resumed = _train(folder)
        got = _published(resumed)
        if got != expected:
            diff = sorted(key for key in expected if got.get(key) != expected[key])
            failures.append(f"kill {k} at {points[k]}: differs in {diff}")
        assert not resumed.problems()  # sizes and SHA-256 of every published file
        assert all("sha256" in resumed.manifest["index"][str(s)] for s in resumed.steps)
        leftovers = [p.name for p in (folder / "checkpoints").iterdir()]
        assert sorted(leftovers) == sorted(resumed.checkpoint_path(s).name for s in resumed.steps)
    assert not failures, "\n".join(failures)


def test_a_second_kill_while_resuming_still_resumes(reference, tmp_path):
    expected, points = reference
    # kill the first session mid-checkpoint, then the resuming session at each of its first
    # boundaries (the recovery itself: truncation, manifest rewrite, clean-up)
    first = next(i for i, (p, n) in enumerate(points) if n == "optimizer.safetensors" and i > 40)
    for second in range(12):
        folder = tmp_path / f"k{second}"
        for k, seed in ((first, 0), (second, 3)):  # once checkpoint 0 is out, init is moot

            def kill(point, path, seen=[0], k=k):  # noqa: B006
                if seen[0] == k:
                    raise Killed(point)
                seen[0] += 1

            with _atomic.fault_hook(kill), pytest.raises(Killed):
                _train(folder, seed=seed)
        assert _published(_train(folder, seed=5)) == expected


def test_a_folder_edited_by_hand_says_what_and_how_to_recover(tmp_path):
    run = _train(tmp_path / "r")
    optimizer = run.checkpoint_path(4) / "optimizer.safetensors"
    optimizer.write_bytes(optimizer.read_bytes()[:-8])  # truncated by hand
    message = r"inconsistent: checkpoints/step_000000004/optimizer.safetensors has \d+ bytes"
    with pytest.raises(ValueError, match=message + r".*repair\(\).*resumes from step 2"):
        train(_model(), _loss, steps=6, run=tmp_path / "r", progress=False)
    report = Run.open(tmp_path / "r").repair()
    assert report[0].startswith("dropped checkpoint 4: checkpoints/step_000000004/optimizer")
    assert Run.open(tmp_path / "r").steps == (0, 2)
    with pytest.warns(UserWarning, match="checkpoint 2 .* fresh optimizer"):  # 2 kept none
        assert train(_model(), _loss, steps=6, run=tmp_path / "r", progress=False).steps[-1] == 6


def test_optimizer_state_from_another_step_is_never_used(tmp_path):
    run = _train(tmp_path / "r", keep="all")
    # swap in the state of step 2 under checkpoint 4, with the sizes the manifest expects
    for name in ("optimizer.safetensors", "optimizer.json"):
        src = run.checkpoint_path(2) / name
        (run.checkpoint_path(4) / name).write_bytes(src.read_bytes())
    manifest = json.loads((run.path / "manifest.json").read_text())
    entry = manifest["index"]["4"]
    entry["files"] = {
        name: (run.checkpoint_path(4) / name).stat().st_size for name in entry["files"]
    }
    with pytest.raises(ValueError, match="optimizer.json .* does not match the SHA-256"):
        Run.open(run.path).load_optimizer(OptimizerConfig().build(_model().parameters()), 4)
    entry["sha256"] = {name: sha256_of(run.checkpoint_path(4) / name) for name in entry["files"]}
    (run.path / "manifest.json").write_text(json.dumps(manifest))
    run = Run.open(run.path)  # the checksums match too: the step inside the files is checked
    opt = OptimizerConfig().build(_model().parameters())
    with pytest.raises(ValueError, match="from step.*2.*belongs to the checkpoint of step 4"):
        run.load_optimizer(opt, 4)
    assert "optimizer.json holds the optimizer state of step 2" in run.problems(4)[0]


def test_truncate_resumes_with_the_state_of_that_step(tmp_path, reference):
    expected, _ = reference
    run = _train(tmp_path / "r", keep="all")  # every checkpoint keeps its optimizer state
    run.truncate(2)
    assert run.steps == (0, 2)
    resumed = _published(_train(tmp_path / "r", seed=4, keep="all"))
    assert {k: v for k, v in resumed.items() if "optimizer" not in k or k.startswith("4/")} == {
        k: v for k, v in expected.items() if "optimizer" not in k or k.startswith("4/")
    }


def test_by_default_only_the_newest_checkpoint_keeps_optimizer_state(tmp_path, reference):
    expected, _ = reference
    assert [s for s in (0, 2, 4) if expected[f"{s}/optimizer.json"] is not None] == [4]
    run = _train(tmp_path / "r")
    run.truncate(2)  # step 4's state goes with it; step 2 has none
    assert not run.has_optimizer_state(2) and not run.checkpoint_path(4).exists()
    with pytest.warns(UserWarning, match="checkpoint 2 .* has no optimizer state: .* fresh"):
        resumed = _train(tmp_path / "r")
    # a fresh optimizer, not step 4's: the weights differ from the uninterrupted run's
    assert (resumed.checkpoint_path(4) / "model.safetensors").read_bytes() != expected[
        "4/model.safetensors"
    ]


def test_a_corrupt_optimizer_state_is_named(tmp_path):
    run = _train(tmp_path / "r")
    (run.checkpoint_path(4) / "optimizer.safetensors").write_bytes(b"\x05" * 64)
    opt = OptimizerConfig().build(_model().parameters())
    with pytest.raises(ValueError, match=r"optimizer.safetensors .* does not match the SHA-256"):
        run.load_optimizer(opt, 4)  # the run's checksum sees it first
    with pytest.raises(ValueError, match=r"optimizer state .*optimizer.safetensors' is corrupt"):
        load_optimizer_state(opt, run.checkpoint_path(4), 4)


def test_a_run_written_before_per_checkpoint_optimizer_state_resumes(tmp_path, reference):
    """Older runs kept one optimizer state in ``state/``: used if it is the last step's."""
    import shutil

    expected, _ = reference
    run = _train(tmp_path / "r", keep="all")
    run.truncate(2)
    folder = run.checkpoint_path(2)
    (tmp_path / "r" / "state").mkdir()
    for name in ("optimizer.safetensors", "optimizer.json"):
        shutil.move(folder / name, tmp_path / "r" / "state" / name)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    del manifest["index"]  # the old layout had no index
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    resumed = _train(tmp_path / "r")
    assert resumed.steps == expected["steps"] and resumed.rows() == expected["rows"]
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (resumed.checkpoint_path(4) / name).read_bytes() == expected[f"4/{name}"]


def test_old_layout_state_from_another_step_is_refused_with_the_way_out(tmp_path):
    run = _train(tmp_path / "r", keep="all")
    (tmp_path / "r" / "state").mkdir()
    for name in ("optimizer.safetensors", "optimizer.json"):
        (run.checkpoint_path(2) / name).rename(tmp_path / "r" / "state" / name)
        (run.checkpoint_path(4) / name).unlink()
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    del manifest["index"]
    manifest["status"] = "interrupted"
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"belongs to the checkpoint of step 4.*repair\(\)"):
        _train(tmp_path / "r")
    assert "removed state/ (optimizer state of step 2)" in Run.open(tmp_path / "r").repair()
    with pytest.warns(UserWarning, match="no optimizer state: training continues with a fresh"):
        train(_model(), _loss, steps=6, run=tmp_path / "r", progress=False)


def _kill_at(k: int):
    def kill(point, path, seen=[0]):  # noqa: B006 (a counter per attempt)
        if seen[0] == k:
            raise Killed(f"{point} {path}")
        seen[0] += 1

    return kill


@pytest.mark.parametrize("action", ["truncate", "rebuild"])
def test_a_kill_inside_truncate_or_rebuild_leaves_a_run_that_finishes_the_same(
    action, reference, tmp_path
):
    """``truncate(2)`` and ``Run.repair(path, rebuild=True)`` (after the manifest was deleted)
    write a manifest, the metrics log and remove folders: killed at each of their boundaries,
    calling them again gives the same run as one uninterrupted call, every checksum intact."""
    import shutil

    template = _train(tmp_path / "template", keep="all").path

    def prepare(folder: Path) -> None:
        shutil.copytree(template, folder)
        if action == "rebuild":
            (folder / "manifest.json").unlink()

    def act(folder: Path) -> list[str]:
        if action == "rebuild":
            return Run.repair(folder, rebuild=True)
        return Run.open(folder).truncate(2)

    prepare(tmp_path / "clean")
    points: list[str] = []
    with _atomic.fault_hook(lambda point, path: points.append(point)):
        act(tmp_path / "clean")
    expected = _published(Run.open(tmp_path / "clean"))
    assert len(points) >= 6
    for k in range(len(points)):
        folder = tmp_path / f"k{k}"
        prepare(folder)
        with _atomic.fault_hook(_kill_at(k)), pytest.raises(Killed):
            act(folder)
        act(folder)
        run = Run.open(folder)
        assert _published(run) == expected, f"kill {k} at {points[k]}"
        assert run.problems() == [] and all(
            set(run.manifest["index"][str(s)]["sha256"])
            == set(run.manifest["index"][str(s)]["files"])
            for s in run.steps
        )
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == sorted(
            run.checkpoint_path(s).name for s in run.steps
        )
