"""The activations an SAE trains on: a deterministic stream from any hook of any handle.

``ActivationStream(model, inputs, hooks, ...)`` runs the model over ``inputs`` in passes of
``batch_size`` inputs, reads the hooks' activations (``cache_pass``: any backend), flattens
them to ``[samples, width]`` (positions become samples; a per-head hook is flattened to
heads x d_head), shuffles each pass's samples and hands out batches of ``samples_per_step``.
For a transcoder (two hooks) a sample is its input and its target side by side.

The stream is a function of the sample index alone (the epoch's order of inputs and each
pass's shuffle come from ``seed``), so ``batches(start)`` resumes at any sample without
running the passes before it: a resumed training run sees exactly the batches an unbroken
one would.

>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> tokens = torch.randint(0, 10, (5, 6), generator=torch.Generator().manual_seed(0))
>>> stream = ActivationStream(model, tokens, ["blocks.0.hook_resid_post"], samples_per_step=4)
>>> stream.width, stream.samples_per_epoch
(8, 30)
>>> first = list(zip(range(3), stream.batches(0)))[2][1]
>>> bool(torch.equal(first, next(stream.batches(8))))
True
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import torch

__all__ = ["ActivationStream"]


class ActivationStream:
    """Batches ``[samples_per_step, width]`` of a handle's activations at ``hooks``."""

    def __init__(
        self,
        model: Any,
        inputs: Any,
        hooks: Sequence[str],
        *,
        samples_per_step: int = 256,
        batch_size: int = 16,
        seed: int = 0,
        flatten_heads: bool = False,
    ) -> None:
        for hook in hooks:
            model.check_hook(hook)
        self.model = model
        self.inputs = model.check_inputs(inputs)
        if len(self.inputs) == 0:
            raise ValueError("no inputs to train on: pass at least one input")
        self.hooks = list(hooks)
        self.samples_per_step = int(samples_per_step)
        self.batch_size = int(batch_size)
        if self.samples_per_step <= 0 or self.batch_size <= 0:
            raise ValueError(
                f"samples_per_step and batch_size must be >= 1, got {samples_per_step} and {batch_size}"
            )
        self.seed = int(seed)
        self.flatten_heads = flatten_heads
        layers = [int(m.group(1)) for h in self.hooks if (m := re.match(r"blocks\.(\d+)\.", h))]
        self._stop = (
            max(layers) + 1
            if model.stops_early
            and len(layers) == len(self.hooks)
            and max(layers) + 1 < model.n_layers
            else None
        )
        probe = self._acts(self.inputs[:1])
        self.per_input = probe.shape[0]
        self.widths = self._widths
        self.width = probe.shape[1]
        self.n_inputs = len(self.inputs)
        self.samples_per_epoch = self.n_inputs * self.per_input

    def _acts(self, chunk: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            _, cache = self.model.cache_pass(chunk, self.hooks, stop_at_layer=self._stop)
        parts = []
        for hook in self.hooks:
            act = cache[hook]
            if self.flatten_heads and act.ndim >= 4:
                act = act.flatten(-2)
            parts.append(act.reshape(-1, act.shape[-1]).float())
        self._widths = [p.shape[1] for p in parts]
        return torch.cat(parts, -1)

    def _pass(self, epoch: int, index: int) -> torch.Tensor:
        """The shuffled samples of pass ``index`` of ``epoch``."""
        order = torch.randperm(
            self.n_inputs, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch)
        )
        chosen = order[index * self.batch_size : (index + 1) * self.batch_size]
        acts = self._acts(self.inputs[chosen])
        shuffle = torch.Generator().manual_seed(self.seed * 104729 + epoch * 100003 + index)
        return acts[torch.randperm(len(acts), generator=shuffle)]

    def batches(self, start: int = 0) -> Iterator[torch.Tensor]:
        """Batches from sample ``start`` on, forever (epoch after epoch)."""
        per_pass = self.batch_size * self.per_input
        passes = -(-self.n_inputs // self.batch_size)
        epoch, offset = divmod(int(start), self.samples_per_epoch)
        index, skip = divmod(offset, per_pass)
        buffer = torch.empty(0, self.width)
        while True:
            acts = self._pass(epoch, index)[skip:]
            skip = 0
            buffer = torch.cat([buffer, acts])
            while len(buffer) >= self.samples_per_step:
                yield buffer[: self.samples_per_step]
                buffer = buffer[self.samples_per_step :]
            index += 1
            if index == passes:
                epoch, index = epoch + 1, 0
