"""Where a fine-tuned behaviour lives: patch units of the fine-tuned model into the base.

For a base model A and its fine-tune B, patching a set of units runs A with those units'
activations taken from B on the same inputs; the share of the behaviour change they carry is
``sum(patched - A) / sum(B - A)`` over examples (the ratio ``PatchingRecovery`` uses for
clean and corrupted inputs), with the behaviour a logit difference at the last position
(labels minus alt_labels, as ``QuoteProbe.examples()`` gives). ``change_carried`` is that
measure in the form a ``Hypothesis`` takes, so "heads X and Y carry at least 80% of the
change" is judged on held-out files against random head sets of the same size.

>>> from explorer.models import zoo
>>> a = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=8, n_ctx=6)
>>> ex = Examples(torch.tensor([[1, 2, 3]]), labels=torch.tensor([4]), alt_labels=torch.tensor([5]))
>>> b = a.copy()
>>> b.set_weight("value", a.weight("value", 0)[1] * 3, 0, head=1)
>>> grid = head_change_grid(a, ex, other=b)
>>> [round(float(v), 3) + 0.0 for v in grid[0]]
[0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from explorer.analysis.metrics import logit_diff
from explorer.analysis.units import Head, Unit, unit_slice
from explorer.hypotheses.bootstrap import Evidence
from explorer.hypotheses.examples import Examples, Split
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.models.handle import ModelHandle

__all__ = ["change_carried", "change_hypothesis", "head_change_grid", "patched_from"]


def _behaviour(examples: Examples) -> Callable[[torch.Tensor], torch.Tensor]:
    return logit_diff(
        examples.require("labels", "the behaviour"), examples.require("alt_labels", "the behaviour")
    )


@torch.no_grad()
def patched_from(
    model: ModelHandle, inputs: torch.Tensor, *, other: ModelHandle, units: Sequence[Unit]
) -> torch.Tensor:
    """Logits of ``model`` on ``inputs`` with ``units``' activations taken from ``other``."""
    if model.hook_names != other.hook_names:
        raise ValueError(
            f"{model.name} and {other.name} have different hooks: not one architecture"
        )
    hooks = sorted({u.hook(model) for u in units})
    _, cache = other.cache_pass(inputs, names=hooks)

    def patch(act: torch.Tensor, hook: Any) -> torch.Tensor:
        act = act.clone()
        for unit in units:
            if unit.hook(model) == hook.name:
                index = unit_slice(act, unit)
                act[index] = cache[hook.name][index].to(act.dtype)
        return act

    return model.run_with_hooks(inputs, [(h, patch) for h in hooks])


def change_carried(other: ModelHandle) -> Callable[..., Evidence]:
    """A hypothesis measure ``fn(model, examples, units)``: the share of the behaviour change
    from ``model`` to ``other`` that ``units`` carry (patched from ``other`` into ``model``)."""

    def carried(model: ModelHandle, examples: Examples, units: Sequence[Unit]) -> Evidence:
        metric = _behaviour(examples)
        with torch.no_grad():
            base = metric(model(examples.inputs)).double()
            tuned = metric(other(examples.inputs)).double()
            patched = metric(
                patched_from(model, examples.inputs, other=other, units=units)
            ).double()
        details = {
            "base": float(base.mean()),
            "tuned": float(tuned.mean()),
            "patched": float(patched.mean()),
        }
        return Evidence(
            patched - base, statistic="ratio", denominators=tuned - base, details=details
        )

    carried.__qualname__ = "change_carried"
    return carried


def head_change_grid(model: ModelHandle, inputs: Examples, *, other: ModelHandle) -> torch.Tensor:
    """``[layer, head]``: the share of the change each head carries alone, on ``inputs``
    (examples with labels and alt_labels). ``activation_patching(..., other=, grid="head")``
    gives the same grid, batched."""
    measure = change_carried(other)
    grid = torch.zeros(model.n_layers, model.n_heads)
    for layer in range(model.n_layers):
        for head in range(model.n_heads):
            ev = measure(model, inputs, [Head(layer, head)])
            grid[layer, head] = float(ev.values.sum() / ev.denominators.sum())
    return grid


def change_hypothesis(
    units: Sequence[Unit | str],
    other: ModelHandle,
    *,
    formation: Split,
    held_out: Split,
    threshold: float = 0.8,
    **options: Any,
) -> Hypothesis:
    """ "``units`` carry at least ``threshold`` of the change to ``other``", as a hypothesis
    (test it with the base model and the examples the splits index)."""
    names = " and ".join(str(u) for u in units)
    return Hypothesis(
        claim=f"{names} carry at least {threshold:.0%} of the change fine-tuning made",
        units=tuple(units),
        measure=change_carried(other),
        threshold=threshold,
        formation=formation,
        held_out=held_out,
        **options,
    )
