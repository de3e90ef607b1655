"""Running a model while keeping only the activations asked for, and batching inputs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from explorer._checks import check_positive
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.models.handle import ModelHandle

__all__ = [
    "CacheResult",
    "run_with_cache",
]


@dataclass(frozen=True, repr=False)
class CacheResult(Shown):
    """The output of one forward pass and the activations of the requested hooks."""

    output: torch.Tensor
    activations: dict[str, torch.Tensor]

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.activations:
            raise KeyError(f"{name!r} was not cached; cached hooks: {sorted(self.activations)}")
        return self.activations[name]

    def to_dataframe(self) -> Any:
        """One row per tensor, the output first: ``hook``, ``shape``, ``dtype``, ``mean`` and
        ``abs_max`` (the activations themselves stay tensors: ``result[hook]``)."""
        tensors = [("output", self.output), *self.activations.items()]
        return pandas().DataFrame(
            [
                (name, str(list(t.shape)), str(t.dtype).removeprefix("torch."),
                 float(t.double().mean()) if t.numel() else float("nan"),
                 float(t.double().abs().max()) if t.numel() else float("nan"))
                for name, t in tensors
            ],
            columns=["hook", "shape", "dtype", "mean", "abs_max"],
        )  # fmt: skip

    def _summary(self) -> str:
        return f"output {list(self.output.shape)}, {len(self.activations)} hooks"

    def _top(self) -> list[str]:
        return [f"{name} {list(act.shape)}" for name, act in list(self.activations.items())[:3]]

    def _table(self) -> tuple:
        rows = [("output", list(self.output.shape), str(self.output.dtype).removeprefix("torch."))]
        rows += [
            (name, list(act.shape), str(act.dtype).removeprefix("torch."))
            for name, act in list(self.activations.items())[: MAX_ROWS - 1]
        ]
        return "Cached activations", ("hook", "shape", "dtype"), rows, ""


@renamed_arguments(names="hooks")
@torch.no_grad()
def run_with_cache(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    hooks: str | Iterable[str],
    logits: bool = True,
) -> CacheResult:
    """Run ``model`` on ``inputs`` and cache only the ``hooks`` named (unknown names raise
    ValueError).

    ``logits=False``: the caller needs only the activations, so a transformer stops after
    the last block holding one of ``hooks`` (no unembedding: a quarter of GPT-2-small's
    work at 1,024 tokens, and its 206 MB of logits); ``output`` is then not the logits.

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
    >>> r = run_with_cache(m, repeated_tokens(3, 5, 20), hooks=["blocks.0.attn.hook_pattern"])
    >>> list(r.activations), tuple(r["blocks.0.attn.hook_pattern"].shape)
    (['blocks.0.attn.hook_pattern'], (3, 4, 11, 11))
    """
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    stop = None if logits else _last_block(model, names)
    output, cache = model.cache_pass(inputs, names=names, stop_at_layer=stop)
    return CacheResult(output.detach(), cache)


def _last_block(model: ModelHandle, names: list[str]) -> int | None:
    """``stop_at_layer`` that still runs every hook of ``names``, where the model can stop
    (None when a name lies outside the blocks, e.g. ``ln_final``)."""
    if not model.stops_early or not names:
        return None
    layers = []
    for name in names:
        parts = name.split(".")
        if parts[0] != "blocks" or len(parts) < 3 or not parts[1].isdigit():
            return None
        layers.append(int(parts[1]))
    return max(layers) + 1


def iter_batches(
    data: torch.Tensor | Iterable[torch.Tensor], batch_size: int
) -> Iterator[torch.Tensor]:
    """Yield batches from a tensor (split along dim 0) or pass through an iterable of batches.

    Raises ValueError if nothing at all is yielded (an empty dataset).
    """
    check_positive("batch_size", batch_size)
    empty = True
    if isinstance(data, torch.Tensor):
        batches: Iterable[torch.Tensor] = data.split(batch_size) if data.ndim else []
    else:
        batches = data
    for batch in batches:
        if isinstance(batch, (tuple, list)):  # (inputs, labels) from a DataLoader
            batch = batch[0]
        if len(batch) == 0:
            continue
        empty = False
        yield batch
    if empty:
        raise ValueError("the dataset is empty: no batch to run on")
