"""``explorer.sweep`` run here (executor="serial"): runs, measures, tables, and resuming.

The kill-point tests kill a sweep in-process, by raising a ``BaseException`` that no handler
catches (like SIGKILL): from the progress callback between points, and at write boundaries
of ``explorer._atomic`` (inside training and while a point is published). Rerunning must
run no finished point again and end with the same runs as an uninterrupted sweep.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from explorer import _atomic
from explorer.models.checkpoint import read_weights
from explorer.studies.grokking import (
    GrokkingSetting,
    grokking_data,
    grokking_progress,
    train_grokking,
)
from explorer.sweep import STUDIES, Sweep, gradient_noise, sweep
from explorer.sweep.folder import SweepFolder
from explorer.training.losses import last_position_logits

BASE = {"p": 7, "steps": 30, "d_model": 16, "eval_every": 5}
GRID = {"weight_decay": [0.1, 1.0]}


class Killed(BaseException):
    """The process died here."""


@pytest.fixture(autouse=True, scope="module")
def _no_disk_flush():
    # kills are simulated in-process, where the page cache survives them
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_atomic, "_fsync", lambda fd: None)
        yield


def _sweep(folder: Path, **kwargs) -> Sweep:
    kwargs.setdefault("grid", GRID)
    kwargs.setdefault("executor", "serial")
    return sweep("grokking", folder=folder, base=BASE, progress=False, **kwargs)


def _published(s: Sweep) -> dict[str, object]:
    """What a finished sweep must reproduce: every run's metrics and weights, and outcomes."""
    out: dict[str, object] = {}
    for name in s.names:
        run = s.run(name)
        out[f"{name}/metrics"] = (run.path / "metrics.jsonl").read_bytes()
        out[f"{name}/steps"] = run.steps
        for step in run.steps:
            out[f"{name}/{step}"] = (run.checkpoint_path(step) / "model.safetensors").read_bytes()
        out[f"{name}/outcomes"] = s.records[name]["outcomes"]
        out[f"{name}/progress"] = (run.path / "progress.json").read_bytes()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Sweep:
    return _sweep(tmp_path_factory.mktemp("ref") / "wd")


def test_every_point_is_an_ordinary_run_with_its_outcomes(reference):
    s = reference
    assert s.names == ("weight_decay=0.1", "weight_decay=1")
    assert s.ran == s.names and s.reused == () and not s.interrupted
    run = s.run("weight_decay=1")
    assert run.status in ("complete", "stopped")
    assert run.manifest["training"]["optimizer"]["weight_decay"] == 1.0
    assert s.settings("weight_decay=1")["p"] == 7
    table = s.outcomes()
    assert list(table.index) == list(s.names)
    assert {"weight_decay", "status", "test_95", "final_test_acc", "circuit_start"} <= set(table)
    assert table.loc["weight_decay=1", "final_test_acc"] == pytest.approx(
        float(run.metrics().get("test_acc").values[-1])
    )
    long = s.to_dataframe()
    assert list(long.columns) == ["run", "weight_decay", "measure", "step", "value"]
    needed = {"train_loss", "test_loss", "train_acc", "test_acc", "weight_norm", "grad_norm",
              "weight_change", "grad_noise", "grad_norm_batches", "embedding_gini",
              "embedding_key_frequencies"}  # fmt: skip
    assert needed <= set(long["measure"])
    # the replayed study measures: restricted and excluded loss at every checkpoint
    progress = grokking_progress(run)
    assert progress.precomputed is not None and len(progress.steps) == len(run.steps)
    assert repr(s).startswith("Sweep(grokking, 2 points: 2 finished (2 run now, 0 earlier)")
    assert len(repr(s)) <= 200
    assert "<table>" in s._repr_html_() and "weight_decay=0.1" in s._repr_html_()
    assert Sweep.open(s.folder).records.keys() == s.records.keys()


def test_the_measures_leave_training_as_it_was(reference, tmp_path):
    """Gradients for grad_noise come from autograd.grad: the optimizer's step is untouched."""
    setting = STUDIES["grokking"].settings({"weight_decay": 1.0}, BASE)
    plain = train_grokking(tmp_path / "plain", _setting(setting), progress=False)
    swept = reference.run("weight_decay=1")
    assert plain.steps == swept.steps
    for step in plain.steps:
        a = read_weights(plain.checkpoint_path(step))
        b = read_weights(swept.checkpoint_path(step))
        assert all(torch.equal(a[k], b[k]) for k in a)
    plain_loss = [r["train_loss"] for r in plain.rows()]
    assert plain_loss == [r["train_loss"] for r in swept.rows()]


def test_the_long_table_holds_every_measure_the_issue_lists(reference):
    """Issue 25's list: losses and accuracies, weight norm and change, gradient norm and
    noise, and grokking's own measures: Fourier sparsity (logged while training) and the
    restricted and excluded losses (replayed after training, one row per checkpoint)."""
    frame = reference.to_dataframe()
    name = "weight_decay=1"
    mine = frame[frame.run == name]
    expected = {
        "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm", "weight_change",
        "grad_norm", "grad_noise", "embedding_key_frequencies", "embedding_gini",
        "restricted_loss", "excluded_loss",
    }  # fmt: skip
    assert expected <= set(mine.measure)
    progress = grokking_progress(reference.run(name))
    for measure in ("restricted_loss", "excluded_loss"):
        rows = mine[mine.measure == measure]
        assert list(rows.step) == [int(s) for s in progress.steps]
        assert rows.value.tolist() == pytest.approx(getattr(progress, measure).tolist())


def _setting(settings):
    return GrokkingSetting(**{**settings, "betas": tuple(settings["betas"])})


def test_weight_change_and_grad_noise_are_what_they_say(reference):
    run = reference.run("weight_decay=1")
    m = run.metrics()
    change = m.get("weight_change")
    assert math.isnan(change.at(0))  # no checkpoint before step 0
    # at a checkpoint step: the change from the checkpoint before it
    steps = [s for s in run.steps if s in change.steps.tolist() and s > 0]
    trainable = [n for n, p in run.load_model().named_parameters() if p.requires_grad]
    for step in steps:
        earlier = max(s for s in run.steps if s < step)
        a, b = read_weights(run.checkpoint_path(step)), read_weights(run.checkpoint_path(earlier))
        expected = math.sqrt(
            sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in trainable)
        )
        assert change.at(step) == pytest.approx(expected, rel=1e-5)
    # grad noise: every 5 x eval_every steps, from 4 batches of the training pairs
    noise = m.get("grad_noise")
    assert noise.steps.tolist() == [s for s in range(0, BASE["steps"] + 1, 25)]
    step = 25
    assert step in run.steps
    model = run.load_model(step)
    data = grokking_data(_setting(reference.settings("weight_decay=1")))
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(0))
    grads = []
    for idx in order.chunk(4):
        model.train()
        loss = torch.nn.functional.cross_entropy(
            last_position_logits(model, data.train_tokens[idx]), data.train_labels[idx]
        )
        got = torch.autograd.grad(loss, [p for p in model.parameters()], allow_unused=True)
        grads.append(torch.cat([g.flatten() for g in got if g is not None]))
    assert noise.at(step) == pytest.approx(gradient_noise(grads), rel=1e-4)
    mean = torch.stack(grads).mean(0)
    assert m.get("grad_norm_batches").at(step) == pytest.approx(float(mean.norm()), rel=1e-4)


def test_a_swept_run_reads_no_checkpoint_from_disk(tmp_path, monkeypatch):
    """Neither while training (weight_change keeps the weights of the newest logged step:
    every checkpoint step is logged first) nor after it (the study measures come from the
    logits training computed at each checkpoint step, kept in memory)."""
    from explorer.sweep import measures
    from explorer.training.run import Run

    reads = []
    monkeypatch.setattr(measures, "read_weights", lambda path: reads.append(path))
    for name in ("load_into", "load_model"):
        real = getattr(Run, name)
        monkeypatch.setattr(Run, name, lambda self, *a, real=real, name=name: (
            reads.append(name), real(self, *a))[1])  # fmt: skip
    s = _sweep(tmp_path / "wd", grid={"weight_decay": [1.0]})
    assert reads == []
    monkeypatch.undo()
    run = s.run("weight_decay=1")
    change = run.metrics().get("weight_change")
    assert len(change.steps) > 5 and not math.isnan(change.at(BASE["steps"]))
    # the table from the kept logits is the replay of every checkpoint, bit for bit
    kept, replayed = grokking_progress(run), grokking_progress(run, replay=True)
    assert kept.precomputed is not None and replayed.precomputed is None
    for measure in ("train_loss", "test_loss", "restricted_loss", "excluded_loss", "gini"):
        assert torch.equal(getattr(kept, measure), getattr(replayed, measure)), measure


def test_gradient_noise_needs_two_batches():
    with pytest.raises(ValueError, match="at least 2 batches"):
        gradient_noise([torch.ones(3)])
    assert math.isnan(gradient_noise([torch.zeros(2), torch.zeros(2)]))


def test_a_sweep_killed_from_its_progress_callback_reruns_no_finished_point(reference, tmp_path):
    folder = tmp_path / "wd"

    def die(state):
        if state.done == 1:
            raise Killed

    with pytest.raises(Killed):
        _sweep(folder, on_progress=die)
    first = SweepFolder.open(folder).finished()
    assert list(first) == ["weight_decay=0.1"]
    stamp = {f: f.stat().st_mtime_ns for f in (folder / "runs" / "weight_decay=0.1").rglob("*")}
    again = _sweep(folder)
    assert again.ran == ("weight_decay=1",) and again.reused == ("weight_decay=0.1",)
    assert {f: f.stat().st_mtime_ns for f in stamp} == stamp  # the finished run: untouched
    assert _published(again) == _published(reference)
    assert _sweep(folder).ran == ()  # all finished: nothing runs


def test_a_kill_at_any_write_boundary_loses_no_finished_point(reference, tmp_path):
    points: list[tuple[str, Path]] = []
    with _atomic.fault_hook(lambda point, path: points.append((point, path))):
        _sweep(tmp_path / "count")
    # the sweep's own files (sweep.json, completion records): a torn write, a rename and
    # the folder's fsync of each; and a sample of the boundaries inside training
    # (tests/training/test_kill_points.py kills a run at every one of those)
    own = [
        i
        for i, (point, path) in enumerate(points)
        if "runs" not in path.parts and point in ("mid-write", "rename", "fsync-dir")
    ]
    chosen = sorted(set(own) | set(range(0, len(points), 230)))
    assert len(own) >= 12 and len(chosen) >= 15
    for k in chosen:
        folder = tmp_path / f"k{k}"
        seen = [0]

        def hook(point, path, k=k, seen=seen):
            seen[0] += 1
            if seen[0] == k + 1:
                raise Killed(f"{point} {path}")

        with pytest.raises(Killed), _atomic.fault_hook(hook):
            _sweep(folder)
        before = (
            set(SweepFolder.open(folder).finished()) if (folder / "sweep.json").exists() else set()
        )
        again = _sweep(folder)
        assert not before & set(again.ran), f"kill {k}: a finished point ran again"
        assert _published(again) == _published(reference), f"kill {k} {points[k]}"


def test_a_sweep_folder_holds_one_study_and_base(reference, tmp_path):
    with pytest.raises(ValueError, match="holds a sweep of study 'grokking' with base"):
        sweep("grokking", GRID, folder=reference.folder, base={**BASE, "p": 11},
              executor="serial", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="unknown study 'grok'"):
        sweep("grok", GRID, folder=tmp_path / "x", executor="serial")
    with pytest.raises(ValueError, match=r"unknown grokking settings in the base: \['wd'\]"):
        sweep("grokking", GRID, folder=tmp_path / "y", base={"wd": 1}, executor="serial")
    with pytest.raises(ValueError, match="noise_every must be a whole number >= 1, got 0"):
        sweep("grokking", GRID, folder=tmp_path / "w", executor="serial", noise_every=0)
    with pytest.raises(ValueError, match="threads must be a whole number >= 1, got 0"):
        sweep("grokking", GRID, folder=tmp_path / "v", executor="serial", threads=0)
    with pytest.raises(ValueError, match="executor"):
        sweep("grokking", GRID, folder=tmp_path / "z", executor="threads")


class _RayHere:
    """Ray's calls the Ray executor makes, answered here (a ref is the task's name):
    ``wait`` runs the first task not run yet; ``cancel`` records the refs cancelled."""

    def __init__(self):
        self.tasks, self.records, self.cancelled = {}, {}, []

    def remote(self, **_options):
        def wrap(fn):
            def submit(task):
                self.tasks[task["name"]] = (fn, task)
                return task["name"]

            return type("Remote", (), {"remote": staticmethod(submit)})

        return wrap

    def cluster_resources(self):
        return {"CPU": 2}

    def wait(self, refs, num_returns=1, timeout=None):
        if num_returns > 1:  # after cancelling: nothing is left running
            return refs, []
        fn, task = self.tasks[refs[0]]
        self.records[refs[0]] = fn(task)
        return [refs[0]], refs[1:]

    def get(self, ref):
        return self.records[ref]

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def test_a_cancel_event_stops_a_ray_sweep_and_keeps_the_finished_points(
    reference, tmp_path, monkeypatch
):
    """The executor's loop on Ray checks the event (a widget's Stop, set from another
    thread) between answers: the points still pending are cancelled, the finished one
    kept, and the rerun runs only the others (Ray's own calls are answered here)."""
    import threading

    from explorer.sweep import execute

    fake, cancel = _RayHere(), threading.Event()
    monkeypatch.setattr(execute, "_ray", lambda *args: fake)
    grid = {"weight_decay": [0.1, 1.0], "train_frac": [0.5, 0.6]}
    first = _sweep(tmp_path / "s", grid=grid, executor="ray", cancel=cancel,
                   on_progress=lambda p: p.done >= 1 and cancel.set())  # fmt: skip
    assert first.interrupted and len(first.finished) == 1
    assert sorted(fake.cancelled) == sorted(set(first.names) - set(first.finished))
    again = _sweep(tmp_path / "s", grid=grid)
    assert again.reused == first.finished and set(again.ran) == set(first.unfinished)
