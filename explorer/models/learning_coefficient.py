"""The local learning coefficient (LLC) of a model at its weights, estimated with devinterp.

The LLC ``λ̂`` (Lau et al. 2023; developmental interpretability's measure of a network's
effective dimension, whose jumps mark phase transitions) is estimated by sampling weights
near ``w*`` with SGLD and comparing their loss with the loss at ``w*``:
``λ̂ = nβ (E_w[L(w)] − L(w*))``. The sampling is devinterp's (``devinterp.slt.llc.llc``,
its SGLD with localization ``γ``): this module only hands it a copy of the model and a
loss, because the torch module a handle wraps is this layer's to read (nothing outside
``explorer/models/`` reads it).

A handle is enough: ``learning_coefficient(model, inputs, labels=...)`` samples around
the handle's weights (which are left as they were: devinterp moves a copy) with the
per-example cross-entropy of ``labels`` at the last position (a classifier's logits), or,
with ``labels=None``, the next-token loss of every position of ``inputs``. The global
random state (torch, numpy, random) is restored afterwards: devinterp seeds it, and a
measure taken while training must not change the training.

Cost: per chain, ``num_init_batches`` forward passes at ``w*`` and ``burnin + draws``
SGLD steps (a forward and a backward pass each), all of ``batch_size`` examples. The
defaults (2 chains x 40 draws of 32 examples) are 80 forward+backward passes of 32
examples plus 8 forward passes: docs/sweeps.md has measured times.

>>> import torch
>>> from explorer.models import zoo
>>> model = zoo.modular_addition_transformer(p=5, d_model=8)
>>> a, b = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
>>> inputs = torch.stack([a.flatten(), b.flatten(), torch.full((25,), 5)], 1)
>>> result = learning_coefficient(model, inputs, labels=(a + b).flatten() % 5,
...                               sampler=LLCSampler(draws=5, batch_size=8))
>>> result.sampler.draws, len(result.per_chain), bool(torch.isfinite(torch.tensor(result.mean)))
(5, 2, True)
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer._display import RecordShown
from explorer.models.handle import ModelHandle
from explorer.models.protocol import Handle

__all__ = ["LLCSampler", "LearningCoefficient", "learning_coefficient"]

#: ``loss(model, inputs, labels) -> [batch]``: the per-example loss the sampler averages
ExampleLoss = Callable[[Handle, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass(frozen=True)
class LLCSampler:
    """devinterp's SGLD settings for one estimate (its argument names in brackets).

    ``lr`` (``lr``): the SGLD step size ε. ``n_beta`` (``n_beta``): the inverse temperature
    nβ; None is devinterp 1.x's default ``batch_size / log(batch_size)``. ``localization``
    (``localization``): γ, the pull back to ``w*``. ``chains`` (``num_chains``), ``draws``
    (``num_draws``), ``burnin`` (``num_burnin_steps``), ``batch_size``, ``init_batches``
    (``num_init_loss_batches``: batches of the loss at ``w*``), ``seed`` (``init_seed``).
    """

    lr: float = 1e-4
    n_beta: float | None = None
    localization: float = 100.0
    chains: int = 2
    draws: int = 40
    burnin: int = 0
    batch_size: int = 32
    init_batches: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("chains", "draws", "batch_size", "init_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LLCSampler.{name} must be a whole number >= 1, got {value!r}")
        if isinstance(self.burnin, bool) or not isinstance(self.burnin, int) or self.burnin < 0:
            raise ValueError(f"LLCSampler.burnin must be a whole number >= 0, got {self.burnin!r}")
        for name in ("lr", "localization"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"LLCSampler.{name} must be a finite number >= 0, got {value!r}")
        if self.n_beta is not None and not (math.isfinite(self.n_beta) and self.n_beta > 0):
            raise ValueError(f"LLCSampler.n_beta must be > 0 or None, got {self.n_beta!r}")

    def beta(self, batch_size: int) -> float:
        """nβ for sampling with batches of ``batch_size`` examples."""
        if self.n_beta is not None:
            return float(self.n_beta)
        return batch_size / math.log(batch_size) if batch_size > 1 else 1.0

    @property
    def steps(self) -> int:
        """SGLD steps per chain (each a forward and backward pass of one batch)."""
        return self.burnin + self.draws


@dataclass(frozen=True, repr=False)
class LearningCoefficient(RecordShown):
    """An LLC estimate: ``mean`` over chains (devinterp's ``llc_mean``), ``std`` across
    chains, each chain's value, the loss at ``w*`` (``init_loss``), the ``n_beta`` and
    sampler used, how many examples it sampled from, and its wall time."""

    mean: float
    std: float
    per_chain: tuple[float, ...]
    init_loss: float
    n_beta: float
    n_examples: int
    seconds: float
    sampler: LLCSampler = field(default_factory=LLCSampler)

    def settings(self) -> dict[str, Any]:
        """The sampler's settings with the nβ used (a row of docs/sweeps.md's cost table)."""
        return {**asdict(self.sampler), "n_beta": self.n_beta}


def _example_loss(model: Handle, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    if labels is not None:
        logits = model.last_position_logits(inputs).float()
        return F.cross_entropy(logits, labels, reduction="none")
    logits = model(inputs)[:, :-1].float()
    per_token = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), inputs[:, 1:].reshape(-1), reduction="none"
    )
    return per_token.view(inputs.shape[0], -1).mean(-1)


class _Sampled(nn.Module):
    """The module devinterp copies and moves: the handle's torch module, registered."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


@contextmanager
def _quiet_and_restored() -> Iterator[None]:
    # lazy: devinterp's sampler module, patched only while one estimate runs
    from devinterp.slt import sampler as devinterp_sampler
    from tqdm.auto import trange

    states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        # devinterp draws a progress bar per chain; a sweep measures many checkpoints. It
        # also runs gc.collect() before and after each chain to free GPU memory: on CPU
        # that only costs time (1.6 s a call with transformers loaded: 90% of an estimate)
        with (
            mock.patch.object(devinterp_sampler, "trange", partial(trange, disable=True)),
            mock.patch.object(devinterp_sampler, "_gc_and_empty_cache", lambda: None),
        ):
            yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def learning_coefficient(
    model: Handle,
    inputs: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    loss: ExampleLoss | None = None,
    sampler: LLCSampler | None = None,
) -> LearningCoefficient:
    """The local learning coefficient of ``model`` at its weights on ``inputs``.

    Args:
        model: a local handle (transformer-lens, light or plain-module backend); its weights
            are not changed.
        inputs: the examples sampled from (batches of ``sampler.batch_size``, shuffled).
        labels: one class per example: the loss is the cross-entropy of the logits at the
            last position. None (tokens): the mean next-token loss of each sequence.
        loss: instead, ``loss(model, inputs, labels) -> [batch]`` per-example losses.
        sampler: devinterp's SGLD settings (``LLCSampler()`` by default).

    Returns:
        a ``LearningCoefficient`` (``mean`` is the estimate).
    """
    if not isinstance(model, ModelHandle):
        raise ValueError(
            f"the learning coefficient samples a local copy of the weights; {model.name} "
            f"({type(model).__name__}) runs elsewhere: load the model locally"
        )
    sampler = sampler or LLCSampler()
    inputs = torch.as_tensor(inputs)
    n = int(inputs.shape[0]) if inputs.ndim else 0
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape[:1] != inputs.shape[:1]:
            raise ValueError(
                f"labels has {tuple(labels.shape)} for {n} inputs: give one label per input"
            )
    if n < 1:
        raise ValueError("learning_coefficient needs at least one example in inputs")
    per_example = loss or _example_loss
    batch_size = min(sampler.batch_size, n)
    n_beta = sampler.beta(batch_size)
    handles: dict[int, Handle] = {}

    def handle_of(module: _Sampled) -> Handle:
        # the sampler's copy of the module gets its own handle (one per chain)
        if module.net is model.model:
            return model
        if id(module) not in handles:
            handles.clear()
            handles[id(module)] = model._same(module.net)
        return handles[id(module)]

    def loss_fn(module: _Sampled, ids: torch.Tensor) -> torch.Tensor:
        idx = ids[:, 0]
        got = per_example(handle_of(module), inputs[idx], None if labels is None else labels[idx])
        return got.float().unsqueeze(-1)  # devinterp's per-token shape: [batch, 1]

    # an example is its index: devinterp reads "input_ids" rows of length >= 2
    dataset = [{"input_ids": torch.tensor([i, i])} for i in range(n)]
    started = time.perf_counter()
    was_training = model.training
    with _quiet_and_restored(), tempfile.TemporaryDirectory(prefix="llc-") as folder:
        # lazy: devinterp imports datasets/transformers/zarr (seconds): only an estimate needs it
        from devinterp.slt.llc import llc

        out = llc(
            _Sampled(model.model),
            dataset,  # type: ignore[arg-type]
            {},
            lr=sampler.lr,
            n_beta=n_beta,
            loss_fn=loss_fn,
            num_chains=sampler.chains,
            num_draws=sampler.draws,
            num_burnin_steps=sampler.burnin,
            batch_size=batch_size,
            num_init_loss_batches=sampler.init_batches,
            init_seed=sampler.seed,
            localization=sampler.localization,
            device="cpu",
            output_path=os.path.join(folder, "samples.zarr"),
        )
        per_chain = tuple(float(v) for v in out["llc_per_chain"].values)
        mean, std = float(out["llc_mean"]), float(out["llc_std"])
        init_loss = float(out["init_loss"])
    model.train(was_training)
    return LearningCoefficient(
        mean=mean,
        std=std,
        per_chain=per_chain,
        init_loss=init_loss,
        n_beta=n_beta,
        n_examples=n,
        seconds=time.perf_counter() - started,
        sampler=sampler,
    )
