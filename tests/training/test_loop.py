"""The training loop: metrics line up with checkpoints, resume, early stop, clean interrupt."""

from __future__ import annotations

import json

import pytest
import torch

import explorer
from explorer.data import modular_arithmetic
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.training import (
    CheckpointSchedule,
    OptimizerConfig,
    Run,
    classification_eval,
    classification_loss,
    last_position_logits,
    train,
)

P = 7


@pytest.fixture
def task():
    data = modular_arithmetic(P, train_frac=0.6, seed=0)
    return data, classification_loss(data.train_tokens, data.train_labels)


def _model(seed: int = 0):
    return zoo.modular_addition_transformer(P, d_model=16, seed=seed)


def _evals(data):
    return {"test": classification_eval(data.test_tokens, data.test_labels)}


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_last_position_logits_equal_a_full_forward(mlp_transformer):
    model = _model()
    tokens = modular_arithmetic(P).tokens
    assert torch.allclose(last_position_logits(model, tokens), model(tokens)[:, -1], atol=1e-5)
    # two layers with LayerNorm: earlier layers run on every position
    tokens = torch.randint(0, 30, (4, 9))
    expected = mlp_transformer(tokens)[:, -1]
    assert torch.allclose(last_position_logits(mlp_transformer, tokens), expected, atol=1e-5)
    cfg = TransformerConfig(
        n_layers=2, d_model=16, n_heads=2, d_vocab=11, n_ctx=8, normalization="LN"
    )
    attn_only = zoo.transformer(cfg)
    tokens = torch.randint(0, 11, (3, 8))
    assert torch.allclose(
        last_position_logits(attn_only, tokens), attn_only(tokens)[:, -1], atol=1e-5
    )


def test_last_position_logits_run_hooks_when_hooks_are_attached():
    model = _model()
    seen = []
    with model.hooks([("blocks.0.mlp.hook_post", lambda act, hook: seen.append(act.shape))]):
        last_position_logits(model, modular_arithmetic(P).tokens[:5])
    assert seen == [torch.Size([5, 3, 64])]  # the full forward: hooks see every position


def test_metrics_and_checkpoints_line_up(tmp_path, task):
    data, loss_fn = task
    model = _model()
    run = train(
        model,
        loss_fn,
        steps=30,
        run=tmp_path / "run",
        optimizer=OptimizerConfig(lr=1e-2),
        checkpoints=CheckpointSchedule(n_log=3, every=10),
        evals=_evals(data),
        eval_every=5,
        progress=False,
    )
    assert run.status == "complete"
    assert run.steps == (0, 1, 5, 10, 20, 30)
    metrics = run.metrics()
    # every 5 steps, and at every checkpoint
    assert metrics.get("train_loss").steps.tolist() == [0, 1, 5, 10, 15, 20, 25, 30]
    for name in ("train_acc", "test_loss", "test_acc", "weight_norm", "grad_norm", "lr"):
        assert name in metrics
    assert torch.isnan(metrics.get("grad_norm").values[-1])  # no update after the last step
    # the train loss logged at step 10 is the loss of checkpoint 10
    ckpt = run.load_model(10)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(
            last_position_logits(ckpt, data.train_tokens), data.train_labels
        )
    assert abs(float(loss) - metrics.get("train_loss").at(10)) < 1e-5
    assert _same_weights(run.load_model(), model)  # the last checkpoint is the final model
    assert metrics.get("train_loss").values[-1] < metrics.get("train_loss").values[0]


def test_explorer_load_opens_a_run(tmp_path, task):
    _, loss_fn = task
    run = train(_model(), loss_fn, steps=4, run=tmp_path / "r", progress=False,
                checkpoints=CheckpointSchedule(n_log=0, steps=(2,)))  # fmt: skip
    assert run.steps == (0, 2, 4)
    assert _same_weights(explorer.load(tmp_path / "r"), run.load_model(4))
    assert _same_weights(explorer.load(str(tmp_path / "r"), step=2), run.load_model(2))
    with pytest.raises(ValueError, match=r"no checkpoint at step 3.*nearest: 2"):
        run.load_model(3)


def test_resume_matches_one_uninterrupted_run(tmp_path, task):
    data, loss_fn = task
    opt = OptimizerConfig(lr=1e-2, weight_decay=1.0, betas=(0.9, 0.98))
    sched = CheckpointSchedule(n_log=0, every=4)
    kwargs = dict(
        optimizer=opt, checkpoints=sched, evals=_evals(data), eval_every=2, progress=False
    )
    whole = train(_model(), loss_fn, steps=12, run=tmp_path / "whole", **kwargs)
    part = train(_model(), loss_fn, steps=6, run=tmp_path / "part", **kwargs)
    assert part.steps[-1] == 6
    resumed_model = _model(seed=5)  # resuming loads the weights; its own init does not matter
    resumed = train(resumed_model, loss_fn, steps=12, run=tmp_path / "part", **kwargs)
    assert resumed.steps == (0, 4, 6, 8, 12)  # 6 was the end of the first session
    a, b = whole.metrics(), resumed.metrics()
    assert a.get("train_loss").steps.tolist() == b.get("train_loss").steps.tolist()
    assert torch.allclose(a.get("train_loss").values, b.get("train_loss").values, atol=1e-5)
    assert torch.allclose(a.get("test_acc").values, b.get("test_acc").values)
    final = resumed.load_model()
    for k, v in whole.load_model().model.state_dict().items():
        assert torch.allclose(v, final.model.state_dict()[k], atol=1e-5), k


def test_a_finished_run_is_reopened_without_training(tmp_path, task):
    _, loss_fn = task
    train(_model(), loss_fn, steps=3, run=tmp_path / "r", progress=False)
    rows = len(Run.open(tmp_path / "r").rows())
    calls = []
    again = train(_model(), lambda m, s: calls.append(s) or loss_fn(m, s), steps=3,
                  run=tmp_path / "r", progress=False)  # fmt: skip
    assert calls == [] and again.status == "complete" and len(again.rows()) == rows


def test_stop_when_ends_training_with_a_checkpoint(tmp_path, task):
    _, loss_fn = task
    run = train(
        _model(),
        loss_fn,
        steps=100,
        run=tmp_path / "r",
        optimizer=OptimizerConfig(lr=1e-2),
        eval_every=3,
        stop_when=lambda m: m["step"] >= 7,
        checkpoints=CheckpointSchedule(n_log=0),
        progress=False,
    )
    assert run.status == "stopped"
    assert run.steps == (0, 9)
    assert run.training["stopped_at"] == 9


def test_keyboard_interrupt_keeps_what_it_has(tmp_path, task):
    data, loss_fn = task

    def interrupting_metric(model):
        interrupting_metric.calls += 1
        if interrupting_metric.calls == 3:  # at step 4
            raise KeyboardInterrupt
        return 1.0

    interrupting_metric.calls = 0
    model = _model()
    run = train(
        model,
        loss_fn,
        steps=50,
        run=tmp_path / "r",
        optimizer=OptimizerConfig(lr=1e-2),
        evals={"probe": interrupting_metric},
        eval_every=2,
        checkpoints=CheckpointSchedule(n_log=0),
        progress=False,
    )
    assert run.status == "interrupted"
    assert run.steps == (0, 4)
    assert _same_weights(run.load_model(4), model)  # the weights as they were when stopped
    assert run.metrics().get("probe").steps.tolist() == [0, 2]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["last_step"] == 4
    # and it resumes from there
    resumed = train(model, loss_fn, steps=6, run=tmp_path / "r", optimizer=OptimizerConfig(lr=1e-2),
                    eval_every=2, checkpoints=CheckpointSchedule(n_log=0), progress=False)  # fmt: skip
    assert resumed.status == "complete" and resumed.steps == (0, 4, 6)


def test_an_error_keeps_the_run_resumable(tmp_path, task):
    _, loss_fn = task

    def broken_metric(model):
        broken_metric.calls += 1
        if broken_metric.calls == 2:
            raise ZeroDivisionError("bad metric")
        return 0.0

    broken_metric.calls = 0
    with pytest.raises(ZeroDivisionError):
        train(_model(), loss_fn, steps=10, run=tmp_path / "r", evals={"m": broken_metric},
              eval_every=3, checkpoints=CheckpointSchedule(n_log=0), progress=False)  # fmt: skip
    run = Run.open(tmp_path / "r")
    assert run.status == "failed" and run.steps == (0, 3)
    resumed = train(_model(), loss_fn, steps=10, run=tmp_path / "r", eval_every=3,
                    checkpoints=CheckpointSchedule(n_log=0), progress=False)  # fmt: skip
    assert resumed.status == "complete" and resumed.steps == (0, 3, 10)


def test_checkpoints_follow_a_moving_metric(tmp_path, task):
    _, loss_fn = task
    values = iter([0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0])
    run = train(
        _model(),
        loss_fn,
        steps=6,
        run=tmp_path / "r",
        evals={"signal": lambda m: next(values)},
        eval_every=1,
        checkpoints=CheckpointSchedule(n_log=0, on_change={"signal": 0.25}),
        progress=False,
    )
    assert run.steps == (0, 2, 5, 6)


def test_the_progress_bar_shows_live_metrics(tmp_path, task, capsys):
    _, loss_fn = task
    train(_model(), loss_fn, steps=3, run=tmp_path / "r", eval_every=1, progress=True)
    err = capsys.readouterr().err
    assert "train_loss=" in err and "3/3" in err


def test_bad_arguments_raise_early(tmp_path, task):
    _, loss_fn = task
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        train(_model(), loss_fn, steps=0, progress=False)
    with pytest.raises(TypeError, match="evals"):
        train(_model(), loss_fn, steps=2, evals={"x": 3}, progress=False)
    with pytest.raises(TypeError, match="scalar tensor"):
        train(_model(), lambda m, s: torch.ones(2), steps=2, progress=False)
    with pytest.raises(ValueError, match="unknown optimizer"):
        OptimizerConfig(name="lion")
    train(_model(), loss_fn, steps=1, run=tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="different model"):
        train(zoo.modular_addition_transformer(P, d_model=8), loss_fn, steps=2, run=tmp_path / "r")
