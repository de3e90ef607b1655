"""``train``: the one training loop of every tutorial (grokking, induction heads, MNIST).

Step ``s`` names the weights after ``s`` updates: checkpoint ``s`` holds them, and the
metrics logged at ``s`` (train loss, evaluations, weight and gradient norm) are measured on
them, so curves and checkpoints line up exactly. A run folder makes training resumable:
calling ``train`` again on the same folder continues from the newest checkpoint with the
saved optimizer state (and returns at once if the budget is already done).

A ``KeyboardInterrupt`` (the notebook's stop button) ends training cleanly: the current
weights, optimizer state and metrics are saved, the run is marked ``interrupted``, and the
run is returned; the update in flight is never half-applied, because the signal is held
back while the optimizer writes the weights.
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from explorer._checks import check_choice
from explorer.analysis.progress import weight_norm
from explorer.models.handle import ModelHandle
from explorer.training.losses import EvalFn, LossFn
from explorer.training.optimizer import OptimizerConfig
from explorer.training.run import Run
from explorer.training.schedule import CheckpointSchedule

__all__ = ["OptimizerConfig", "train"]

StopFn = Callable[[Mapping[str, float]], bool]


def train(
    model: ModelHandle,
    loss_fn: LossFn,
    *,
    steps: int,
    run: Run | str | os.PathLike[str] | None = None,
    optimizer: OptimizerConfig | None = None,
    checkpoints: CheckpointSchedule | None = None,
    evals: Mapping[str, EvalFn] | None = None,
    eval_every: int = 10,
    stop_when: StopFn | None = None,
    data: Mapping[str, Any] | None = None,
    progress: bool = True,
    keep_optimizer: str = "last",
) -> Run:
    """Train ``model`` in place for up to ``steps`` updates, logging and checkpointing a run.

    Args:
        model: the model to train (a zoo model or anything with an explorer config).
        loss_fn: ``loss_fn(model, step) -> loss`` or ``(loss, {name: value})``; it draws its
            own batch (seed it by ``step`` so a resumed run sees the same data). Extra values
            are logged as ``train_<name>`` (e.g. ``train_acc``).
        steps: the step budget (total updates, counting those of earlier sessions).
        run: a run folder (created if new, resumed if it holds this run) or a ``Run``;
            None makes a temporary folder.
        optimizer: the optimizer (default ``OptimizerConfig()``, AdamW at lr 1e-3).
        checkpoints: when to save weights (default: 20 log-spaced + every ``steps // 20``).
        evals: ``{name: fn(model)}`` run every ``eval_every`` steps in eval mode without
            gradients; a float is logged as ``name``, a dict as ``name_<key>`` (so
            ``{"test": classification_eval(x, y)}`` logs ``test_loss`` and ``test_acc``).
        eval_every: steps between logged rows (train loss, evals, weight and grad norm);
            planned checkpoint steps are logged too.
        stop_when: ``fn(latest metrics) -> bool`` checked after each logged row (the dict
            also holds ``"step"``); True ends training early (status ``stopped``) with a
            checkpoint at that step.
        data: JSON-able description of the data, stored in the manifest of a new run.
        progress: show a tqdm progress bar with the latest metrics.
        keep_optimizer: ``"last"`` keeps the optimizer state of the newest checkpoint only
            (enough to resume; it is 2-3x the weights' size); ``"all"`` keeps it in every
            checkpoint, so training can also resume exactly from an earlier one after
            ``Run.truncate``.

    Returns:
        the ``Run`` (status ``complete``, ``stopped`` or ``interrupted``). A run already
        complete, or stopped early, for the same budget is returned as it is.

    >>> import torch, tempfile
    >>> from explorer.models import zoo
    >>> from explorer.training.losses import classification_loss
    >>> m = zoo.modular_addition_transformer(p=5, d_model=16)
    >>> x = torch.tensor([[a, b, 5] for a in range(5) for b in range(5)])
    >>> y = x[:, :2].sum(1) % 5
    >>> run = train(m, classification_loss(x, y), steps=20, run=tempfile.mkdtemp() + "/r",
    ...             optimizer=OptimizerConfig(lr=1e-2), progress=False)
    >>> run.status, run.steps[-1], "train_acc" in run.metrics()
    ('complete', 20, True)
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(model, step), got {loss_fn!r}")
    evals = dict(evals or {})
    for name, fn in evals.items():
        if not callable(fn):
            raise TypeError(f"evals[{name!r}] must be callable as fn(model), got {fn!r}")
    check_choice("keep_optimizer", keep_optimizer, ("all", "last"))
    optimizer = optimizer or OptimizerConfig()
    checkpoints = checkpoints or CheckpointSchedule(n_log=20, every=max(1, steps // 20))
    run = _open_run(run, model, data)
    if not isinstance(checkpoints, CheckpointSchedule):
        raise TypeError(f"checkpoints must be a CheckpointSchedule, got {checkpoints!r}")

    previous = run.training
    if (
        run.status in ("complete", "stopped")
        and previous.get("steps") == steps
        and run.last_step is not None
    ):
        return run  # finished for this budget: nothing to do (the notebook re-run case)
    opt = optimizer.build(model.parameters())
    start = _resume(run, model, opt, optimizer)
    run.update(
        status="running",
        training={
            "steps": steps,
            "optimizer": optimizer.to_dict(),
            "checkpoints": checkpoints.to_dict(),
            "eval_every": eval_every,
            "stopped_at": None,
        },
    )
    if start > steps:
        run.update(status="complete")
        return run

    bar = _progress_bar(progress, steps, start, run.name)
    latest: dict[str, float] = {}
    at_checkpoint: dict[str, float] = {}
    resumed_at = start if start > 0 else None  # a published checkpoint: logged again, not saved
    status, step, intact = "complete", start, start
    try:
        for step in range(start, steps + 1):
            intact = step
            for group in opt.param_groups:
                group["lr"] = optimizer.lr_at(step)
            model.train()
            with torch.set_grad_enabled(step < steps):  # the final weights are only measured
                loss, extra = _call_loss(loss_fn, model, step)
            # every checkpoint step is also logged, so each checkpoint has its metrics
            logged = (
                step % eval_every == 0
                or step in (steps, resumed_at)
                or checkpoints.is_planned(step, steps)
            )
            if step < steps:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = _grad_norm(model, optimizer.grad_clip)
            else:
                grad_norm = math.nan
            if logged:
                latest = {"train_loss": float(loss.detach())}
                latest.update({f"train_{k}": float(v) for k, v in extra.items()})
                latest.update(grad_norm=grad_norm, weight_norm=weight_norm(model))
                latest["lr"] = optimizer.lr_at(step)
                latest.update(_evaluate(model, evals))
                run.log(step, latest)
                if bar is not None:
                    bar.set_postfix(_short(latest), refresh=False)
            stop = logged and stop_when is not None and bool(stop_when({"step": step, **latest}))
            if step == resumed_at:
                at_checkpoint = dict(latest)
            elif (
                checkpoints.is_planned(step, steps)
                or stop
                or (logged and checkpoints.changed(latest, at_checkpoint))
            ):
                _save(run, model, opt, step, keep_optimizer)
                at_checkpoint = dict(latest)
            if stop:
                status = "stopped"
                break
            if step < steps:
                with _hold_interrupts():
                    opt.step()
                    intact = step + 1
                if bar is not None:
                    bar.update(1)
    except KeyboardInterrupt:
        # ``intact`` names the weights as they are: an update is applied whole or not at all.
        status, step = "interrupted", intact
        _save(run, model, opt, step, keep_optimizer)
    except Exception:
        # keep what was trained (resumable), record the failure, and let the error show
        _save(run, model, opt, intact, keep_optimizer)
        training = run.training
        training["stopped_at"] = intact
        run.update(status="failed", training=training)
        raise
    finally:
        model.eval()
        if bar is not None:
            bar.close()
    training = run.training
    training["stopped_at"] = step if status != "complete" else None
    run.update(status=status, training=training)
    return run


# ------------------------------------------------------------------------ helpers
def _open_run(
    run: Run | str | os.PathLike[str] | None, model: ModelHandle, data: Mapping[str, Any] | None
) -> Run:
    if isinstance(run, Run):
        return run
    if run is None:
        return Run.create(
            os.path.join(tempfile.mkdtemp(prefix="explorer-run-"), "run"), model, data=data
        )
    if os.path.isfile(os.path.join(run, "manifest.json")):
        existing = Run.open(run)
        # the init seed does not matter when resuming: the weights come from the checkpoint
        own = json.loads(json.dumps(model.config.to_dict())) if model.config is not None else {}
        theirs = existing.manifest["model"]["config"]
        if {k: v for k, v in theirs.items() if k != "seed"} != {
            k: v for k, v in own.items() if k != "seed"
        }:
            raise ValueError(
                f"{str(run)!r} holds a run of a different model ({existing.name}); "
                "choose another folder or delete it"
            )
        return existing
    return Run.create(run, model, data=data)


def _resume(
    run: Run, model: ModelHandle, opt: torch.optim.Optimizer, config: OptimizerConfig
) -> int:
    """Load the newest checkpoint and optimizer state; the step to continue from."""
    if not run.steps:
        run._truncate_to(0)  # a fresh start: forget metrics and unpublished files
        return 0
    previous = run.training.get("optimizer")
    if previous is not None and previous["name"] != config.name:
        raise ValueError(
            f"run {run.name} was trained with {previous['name']}; resume it with the same optimizer"
        )
    last = run.steps[-1]
    # every path of the manifest (cheap), and the checksums of the checkpoint resumed from
    problems = run._manifest_problems() or run.problems(last)
    if problems:
        intact = [s for s in run.steps if not run.problems(s)]
        raise ValueError(
            f"the run folder {str(run.path)!r} is inconsistent: {'; '.join(problems)}. "
            "explorer publishes a checkpoint's files together, so they were changed outside "
            "explorer (by hand, another program, or a disk fault). Nothing was changed. To "
            f"recover, call Run.open({str(run.path)!r}).repair(): it drops damaged and "
            "unpublished checkpoints (deleting only inside the run folder), and training "
            f"resumes from step {intact[-1] if intact else 0}."
        )
    run.load_into(model, last)
    try:
        saved = run.load_optimizer(opt, last)
    except ValueError as err:
        raise ValueError(
            f"{err}. To recover, call Run.open({str(run.path)!r}).repair(), which drops what "
            "does not belong to the published checkpoints"
        ) from None
    if saved is None and last > 0:
        warnings.warn(
            f"checkpoint {last} of run {run.name} has no optimizer state: training continues "
            "with a fresh optimizer, so it will not match an uninterrupted run",
            stacklevel=3,
        )
    run.truncate(last)
    return last


def _save(
    run: Run, model: ModelHandle, opt: torch.optim.Optimizer, step: int, keep: str = "last"
) -> None:
    if step in run.steps and run.has_optimizer_state(step):
        return  # published already (the step a session resumed from): the same weights
    with _hold_interrupts():
        run.save_checkpoint(model, step, optimizer=opt, keep_optimizer=keep)


def _call_loss(
    loss_fn: LossFn, model: ModelHandle, step: int
) -> tuple[torch.Tensor, dict[str, float]]:
    out = loss_fn(model, step)
    loss, extra = out if isinstance(out, tuple) else (out, {})
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TypeError(
            "loss_fn must return a scalar tensor (or (scalar, {name: value})), got "
            f"{type(loss).__name__}{'' if not isinstance(loss, torch.Tensor) else list(loss.shape)}"
        )
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss is {float(loss)} at step {step}: training diverged")
    return loss, dict(extra)


def _grad_norm(model: ModelHandle, clip: float | None) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    if clip is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, clip))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params])))


def _evaluate(model: ModelHandle, evals: Mapping[str, EvalFn]) -> dict[str, float]:
    out: dict[str, float] = {}
    if not evals:
        return out
    model.eval()
    with torch.no_grad():
        for name, fn in evals.items():
            value = fn(model)
            if isinstance(value, Mapping):
                out.update({f"{name}_{k}": float(v) for k, v in value.items()})
            else:
                out[name] = float(value)
    return out


def _short(values: Mapping[str, float]) -> dict[str, str]:
    keep = ("train_loss", "train_acc", "test_loss", "test_acc")
    shown = {k: v for k, v in values.items() if k in keep} or dict(list(values.items())[:4])
    return {k: f"{v:.3g}" for k, v in shown.items()}


def _progress_bar(show: bool, total: int, initial: int, name: str) -> Any:
    if not show:
        return None
    # lazy: tqdm.auto imports ipywidgets in a notebook; a run with progress=False never does
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="step", mininterval=0.5)


@contextmanager
def _hold_interrupts() -> Iterator[None]:
    """Delay Ctrl-C / the notebook's stop button until the block is done (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    except ValueError:  # signals unavailable (e.g. some embedded interpreters)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(*received[0])
