"""Cross-model activation patching beside a hand-written transformer-lens hook loop, to 1e-5.

Model B is model A (a GPT-2-shaped and a Llama-shaped family) with every weight perturbed.
By hand: cache B's activations on the inputs, then for every cell run A once with one hook
that writes B's value into that cell (a head's ``hook_z`` at every position, a neuron's
``hook_post``, a position's ``hook_resid_pre``), and the way back with the models swapped.
"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import activation_patching, metrics

from .test_comparison_reference import _perturbed
from .test_lm_analyses_reference import _family

ATOL = 1e-5
HOOKS = {"head": "attn.hook_z", "neuron": "mlp.hook_post", "resid": "hook_resid_pre"}


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def pair(request):
    a = _family(request.param)
    b = _perturbed(a, scale=1.0)
    tokens = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(4))
    return a, b, tokens


def _cell(grid: str, act: torch.Tensor, index: int) -> tuple:
    if grid == "head":
        return (slice(None), slice(None), index)  # [b, pos, head, d_head]
    if grid == "neuron":
        return (slice(None), slice(None), index)  # [b, pos, neuron]
    return (slice(None), index)  # [b, pos, d_model]


@torch.no_grad()
def hand_cross_patching(receiver, source, tokens, metric, grid: str) -> torch.Tensor:
    rtl, stl = receiver.model, source.model
    names = [f"blocks.{layer}.{HOOKS[grid]}" for layer in range(rtl.cfg.n_layers)]
    _, cache = stl.run_with_cache(tokens, names_filter=lambda n: n in names)
    size = {"head": rtl.cfg.n_heads, "neuron": rtl.cfg.d_mlp, "resid": tokens.shape[1]}[grid]
    out = torch.empty(len(names), size)
    for layer, name in enumerate(names):
        for index in range(size):

            def patch(act, hook, index=index):
                cell = _cell(grid, act, index)
                act[cell] = cache[hook.name][cell]
                return act

            logits = rtl.run_with_hooks(tokens, fwd_hooks=[(name, patch)])
            out[layer, index] = metric(logits).mean()
    return out


@pytest.mark.parametrize("grid", ["head", "neuron", "resid"])
def test_cross_model_patching_equals_a_hook_loop_both_ways(pair, grid):
    a, b, tokens = pair
    metric = metrics.logit_diff(torch.tensor([3, 7, 11]), torch.tensor([5, 5, 2]))
    for receiver, source in ((a, b), (b, a)):
        ours = activation_patching(receiver, tokens, other=source, metric=metric, grid=grid)
        ref = hand_cross_patching(receiver, source, tokens, metric, grid)
        torch.testing.assert_close(ours.values.double(), ref.double(), atol=ATOL, rtol=1e-5)
        with torch.no_grad():
            own = float(metric(receiver.model(tokens)).mean())
            theirs = float(metric(source.model(tokens)).mean())
        assert ours.corrupted_value == pytest.approx(own, abs=ATOL)
        assert ours.clean_value == pytest.approx(theirs, abs=ATOL)
        assert abs(theirs - own) > 0.05  # the models differ: recovery is defined
        expect = (ref - own) / (theirs - own)
        torch.testing.assert_close(ours.recovery.double(), expect.double(), atol=1e-4, rtol=1e-4)
