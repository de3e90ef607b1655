"""Progress measures a sweep logs while each run trains, beside the loop's own.

``explorer.training.train`` already logs, at every logged step (every ``eval_every``):
``train_loss`` / ``train_acc``, the study's evaluations (``test_loss`` / ``test_acc``, ...),
``weight_norm`` (``sqrt(sum w^2)``), ``grad_norm`` (of the training batch's gradient) and
``lr``. A sweep adds, through ``train``'s ``evals`` (so they are logged in the same rows of
``metrics.jsonl`` and survive a resume bit for bit):

- ``weight_change``: ``||w_t - w_c||``, the norm of the change of every trainable weight
  since the newest checkpoint ``c`` before step ``t``. At a checkpoint step it is the change
  between that checkpoint and the one before. Cost: one subtraction and one copy of the
  weights per logged step; ``c``'s weights are the copy kept at step ``c`` (every checkpoint
  step is logged), read from disk only after a resume.
- ``grad_noise``: how much the gradient varies across batches. The loss is split into ``k``
  batches (``n_batches``, default 4) and ``g_i`` is the gradient of batch ``i``'s mean loss;
  with ``G`` their mean, ``grad_noise = sum_i ||g_i - G||^2 / ((k - 1) ||G||^2)``: the trace
  of the per-batch gradients' covariance (unbiased) relative to the squared mean gradient
  (McCandlish et al. 2018's simple noise scale divided by the batch size). 0 when every
  batch pulls the same way; large near a minimum or when batches disagree. Cost: ``k``
  forward and backward passes over batches that together hold one training batch, about
  one training step per logged step (gradients come from ``torch.autograd.grad``, so the
  optimizer's ``.grad`` is never touched). ``grad_norm_batches`` is ``||G||``.

The step counter (``StepClock``) wraps the loss function: ``train`` calls it first at every
step, so the measures know which step they are logged at.

>>> import torch
>>> g = [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])]
>>> gradient_noise(g)  # every batch agrees
0.0
>>> round(gradient_noise([torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])]), 3)
2.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from explorer.models.checkpoint import read_weights
from explorer.models.handle import ModelHandle
from explorer.training.run import Run

__all__ = ["BatchLosses", "StepClock", "gradient_noise", "sweep_measures"]

#: ``batches(step) -> [loss_i(model) for each batch]``: the ``k`` batch losses at ``step``
BatchLosses = Callable[[int], Sequence[Callable[[ModelHandle], torch.Tensor]]]


class StepClock:
    """Wraps a loss function of ``train`` to remember the step it was last called at."""

    def __init__(self) -> None:
        self.step = 0

    def wrap(self, loss_fn: Callable[[ModelHandle, int], Any]) -> Callable[[ModelHandle, int], Any]:
        def loss(model: ModelHandle, step: int) -> Any:
            self.step = step
            return loss_fn(model, step)

        return loss


def gradient_noise(gradients: Sequence[torch.Tensor]) -> float:
    """``sum_i ||g_i - G||^2 / ((k - 1) ||G||^2)`` of flat per-batch gradients (NaN if G = 0)."""
    if len(gradients) < 2:
        raise ValueError(f"gradient noise needs at least 2 batches, got {len(gradients)}")
    g = torch.stack([x.double() for x in gradients])
    mean = g.mean(0)
    spread = float((g - mean).pow(2).sum()) / (len(gradients) - 1)
    scale = float(mean.pow(2).sum())
    return spread / scale if scale > 0 else math.nan


class _WeightChange:
    """Keeps the weights of the newest logged step in memory: every checkpoint step is
    logged (and evaluated before it is saved, with the same weights), so the checkpoint
    ``c`` a later step compares with is usually the step kept, and the disk is read only
    after a resume (or for a checkpoint taken at an interruption)."""

    def __init__(self, run: Run, clock: StepClock) -> None:
        self.run, self.clock = run, clock
        self.cached: tuple[int, dict[str, torch.Tensor]] | None = None
        self.reads = 0  # checkpoints read from disk (the tests count them)

    def __call__(self, model: ModelHandle) -> float:
        step = self.clock.step
        steps = self.run.steps
        c = next((s for s in reversed(steps) if s < step), None)
        now = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        out = math.nan
        if c is not None:
            if self.cached is None or self.cached[0] != c:
                self.cached = (c, read_weights(self.run.checkpoint_path(c)))
                self.reads += 1
            then = self.cached[1]
            total = 0.0
            for name, p in now.items():
                total += float((p.double() - then[name].double()).pow(2).sum())
            out = math.sqrt(total)
        self.cached = (step, {n: p.clone() for n, p in now.items()})
        return out


class _GradientNoise:
    def __init__(self, batches: BatchLosses, clock: StepClock) -> None:
        self.batches, self.clock = batches, clock

    def __call__(self, model: ModelHandle) -> dict[str, float]:
        losses = self.batches(self.clock.step)
        if not losses:
            return {}  # not measured at this step: nothing logged
        params = [p for p in model.parameters() if p.requires_grad]
        grads = []
        with torch.enable_grad():
            for loss_of in losses:
                got = torch.autograd.grad(loss_of(model), params, allow_unused=True)
                grads.append(
                    torch.cat(
                        [
                            (g if g is not None else torch.zeros_like(p)).flatten()
                            for g, p in zip(got, params)
                        ]
                    )
                )
        mean_norm = float(torch.stack([g.double() for g in grads]).mean(0).norm())
        return {"noise": gradient_noise(grads), "norm_batches": mean_norm}


def sweep_measures(
    run: Run, clock: StepClock, batches: BatchLosses | None
) -> dict[str, Callable[[ModelHandle], Any]]:
    """The ``evals`` a sweep adds to a run's own: ``weight_change`` and (given the batches)
    ``grad`` (logged as ``grad_noise`` and ``grad_norm_batches``)."""
    out: dict[str, Callable[[ModelHandle], Any]] = {"weight_change": _WeightChange(run, clock)}
    if batches is not None:
        out["grad"] = _GradientNoise(batches, clock)
    return out
