"""Cross-model SAE feature patching beside a hand-written hook loop, to 1e-5.

Model B is a toy transformer A with every weight perturbed. By hand: encode B's activation
at the SAE's hook on the inputs, then for every feature ``i`` run A once with one hook that
encodes A's activation, replaces feature ``i`` (every position) by B's value, decodes and
adds A's own error term ``x - decode(encode(x))``; and the way back with the models swapped.
Two hooks: the residual stream after a block (the fan-out from mid-model) and an MLP's
neurons (stacked copies of the batch through the whole model).
"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import activation_patching, metrics
from explorer.features import SparseAutoencoder
from explorer.models import zoo
from explorer.models.config import TransformerConfig

ATOL = 1e-5


@pytest.fixture(scope="module")
def pair():
    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=30, n_ctx=32, seed=1
    )
    a = zoo.transformer(cfg)
    b = a.copy()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen) * (p.std() + 0.1))
    tokens = torch.randint(0, 30, (3, 7), generator=torch.Generator().manual_seed(4))
    return a, b, tokens


@torch.no_grad()
def hand_feature_patching(receiver, source, inputs, corrupted, metric, sae) -> torch.Tensor:
    _, cache = source.cache_pass(inputs, names=[sae.hook])
    theirs = sae.encode(cache[sae.hook])
    out = torch.empty(sae.d_sae)
    for i in range(sae.d_sae):

        def patch(act, hook, i=i):
            f = sae.encode(act)
            error = act - sae.decode(f)
            f = f.clone()
            f[..., i] = theirs[..., i]
            return sae.decode(f) + error

        logits = receiver.run_with_hooks(corrupted, [(sae.hook, patch)])
        out[i] = metric(logits).mean()
    return out


@pytest.mark.parametrize(
    ("hook", "d_in"), [("blocks.0.hook_resid_post", 32), ("blocks.1.mlp.hook_post", 64)]
)
def test_cross_model_feature_patching_equals_a_hook_loop_both_ways(pair, hook, d_in):
    a, b, tokens = pair
    sae = SparseAutoencoder.create(hook, d_in=d_in, d_sae=24, architecture="standard", seed=2)
    metric = metrics.logit_diff(torch.tensor([3, 7, 11]), torch.tensor([5, 5, 2]))
    for receiver, source in ((a, b), (b, a)):
        ours = activation_patching(
            receiver, tokens, other=source, metric=metric, grid="feature", sae=sae
        )
        ref = hand_feature_patching(receiver, source, tokens, tokens, metric, sae)
        assert ours.values.shape == (1, sae.d_sae) and ours.axes == ("layer", "feature")
        torch.testing.assert_close(ours.values[0].double(), ref.double(), atol=ATOL, rtol=1e-5)
        with torch.no_grad():
            own = float(metric(receiver(tokens)).mean())
            theirs = float(metric(source(tokens)).mean())
        assert ours.corrupted_value == pytest.approx(own, abs=ATOL)
        assert ours.clean_value == pytest.approx(theirs, abs=ATOL)
        assert abs(theirs - own) > 0.05  # the models differ: recovery is defined
        expect = (ref - own) / (theirs - own)
        torch.testing.assert_close(ours.recovery[0].double(), expect.double(), atol=1e-4, rtol=1e-4)
        assert ours.models == (source.name, receiver.name)
        assert (ref - own).abs().max() > 1e-3  # some feature moves the metric


def test_with_corrupted_inputs_too(pair):
    a, b, tokens = pair
    corrupted = tokens.flip(0)
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=32, d_sae=16, k=4, seed=3)
    metric = metrics.logit_diff(3, 5)
    ours = activation_patching(
        a, tokens, corrupted=corrupted, other=b, metric=metric, grid="feature", sae=sae
    )
    ref = hand_feature_patching(a, b, tokens, corrupted, metric, sae)
    torch.testing.assert_close(ours.values[0].double(), ref.double(), atol=ATOL, rtol=1e-5)
