"""Cross-model patching for the fine-tuning study: a planted change is found where it was
planted, equals a hand-written hook loop, and the hypothesis machinery judges it."""

from __future__ import annotations

import torch

from explorer.analysis.units import Head
from explorer.hypotheses import Split
from explorer.hypotheses.examples import Examples
from explorer.models import zoo
from explorer.studies.finetuning_units import (
    change_carried,
    change_hypothesis,
    head_change_grid,
    patched_from,
)


def _pair():
    a = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=12)
    b = a.copy()
    b.set_weight("value", a.weight("value", 1)[2] * 4, 1, head=2)  # the change: head 1.2
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 20, (80, 10), generator=g)
    labels = tokens[:, -1]
    ex = Examples(tokens, labels=labels, alt_labels=(labels + 1) % 20)
    return a, b, ex


def test_patching_from_the_other_model_equals_a_hand_written_hook_loop():
    a, b, ex = _pair()
    _, cache = b.cache_pass(ex.inputs, names=["blocks.0.attn.hook_z"])

    def hook(act, hook):
        act = act.clone()
        act[:, :, 3] = cache["blocks.0.attn.hook_z"][:, :, 3]
        return act

    expected = a.run_with_hooks(ex.inputs, [("blocks.0.attn.hook_z", hook)])
    got = patched_from(a, ex.inputs, other=b, units=[Head(0, 3)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_planted_head_carries_the_whole_change_and_the_others_none():
    a, b, ex = _pair()
    grid = head_change_grid(a, ex, other=b)
    assert abs(float(grid[1, 2]) - 1.0) < 1e-4
    others = torch.cat([grid[0], grid[1, :2], grid[1, 3:]])
    assert float(others.abs().max()) < 1e-4
    ev = change_carried(b)(a, ex, [Head(1, 2)])
    assert ev.details["tuned"] != ev.details["base"]


def test_the_hypothesis_is_supported_for_the_planted_head_and_rejected_for_another():
    a, b, ex = _pair()
    splits = {"formation": Split(range(40)), "held_out": Split(range(40, 80))}
    right = change_hypothesis([Head(1, 2)], b, **splits, n_boot=200).test(a, ex)
    wrong = change_hypothesis([Head(0, 1)], b, **splits, n_boot=200).test(a, ex)
    assert right.status == "supported" and right.value > 0.99
    assert wrong.status == "refuted"


def test_the_head_grid_equals_cross_model_activation_patching():
    from explorer.analysis import activation_patching, metrics

    a, b, ex = _pair()
    b.set_weight("query", a.weight("query", 0)[1] * 2, 0, head=1)  # a second, smaller change
    ours = head_change_grid(a, ex, other=b)
    metric = metrics.logit_diff(ex.labels, ex.alt_labels)
    theirs = activation_patching(a, ex.inputs, other=b, metric=metric, grid="head").recovery
    torch.testing.assert_close(ours, theirs.float(), atol=1e-4, rtol=0)
