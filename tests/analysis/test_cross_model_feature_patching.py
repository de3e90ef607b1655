"""Cross-model SAE feature patching (``activation_patching(other=..., grid="feature",
sae=...)``): a planted change found in its one feature, and clear errors. tests/reference
has the equality with a hand-written hook loop."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import activation_patching, metrics
from explorer.features import SparseAutoencoder

HOOK = "blocks.0.hook_resid_post"


def _linear_sae(d: int, seed: int = 0) -> SparseAutoencoder:
    """An SAE whose features read an orthonormal basis with a large bias: encode is linear
    (no ReLU ever clips), so a change of the stream along ``q_j`` moves feature ``j`` only."""
    sae = SparseAutoencoder.create(HOOK, d_in=d, d_sae=d, architecture="standard", seed=seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        sae.sae.W_enc.copy_(q)
        sae.sae.W_dec.copy_(q.T)
        sae.sae.b_enc.fill_(100.0)
        sae.sae.b_dec.zero_()
    return sae


def test_the_planted_feature_carries_the_whole_change(mlp_transformer):
    a = mlp_transformer
    sae = _linear_sae(a.d_model)
    planted = 11
    b = a.copy()  # one neuron of B also writes along feature 11's direction
    w_out = a.weight("mlp_out", 0).clone()
    w_out[5] += 3.0 * sae.decoder[planted]
    b.set_weight("mlp_out", w_out, 0)
    tokens = torch.randint(1, 30, (4, 6), generator=torch.Generator().manual_seed(0))
    metric = metrics.logit_diff(3, 4)
    r = activation_patching(a, tokens, other=b, metric=metric, grid="feature", sae=sae)
    assert abs(r.clean_value - r.corrupted_value) > 0.01
    recovery = r.recovery[0]
    assert float(recovery[planted]) == pytest.approx(1.0, abs=1e-4)
    others = torch.cat([recovery[:planted], recovery[planted + 1 :]])
    assert float(others.abs().max()) < 1e-4
    assert r.models == (b.name, a.name) and "feature 11" in repr(r)
    back = activation_patching(b, tokens, other=a, metric=metric, grid="feature", sae=sae)
    assert float(back.recovery[0].argmax()) == planted


def test_bad_inputs_get_sentences(mlp_transformer):
    a, b = mlp_transformer, mlp_transformer.copy()
    tokens = torch.randint(1, 30, (2, 5), generator=torch.Generator().manual_seed(1))
    metric = metrics.logit_diff(3, 4)
    missing = SparseAutoencoder.create("blocks.7.hook_resid_post", d_in=32, d_sae=8, k=2)
    with pytest.raises(ValueError, match=r"blocks\.7\.hook_resid_post.*does not have"):
        activation_patching(a, tokens, other=b, metric=metric, grid="feature", sae=missing)
    wide = SparseAutoencoder.create(HOOK, d_in=48, d_sae=8, k=2)
    with pytest.raises(ValueError, match=r"reads 48 values per token.*has 32 there"):
        activation_patching(a, tokens, other=b, metric=metric, grid="feature", sae=wide)
    sae = SparseAutoencoder.create(HOOK, d_in=32, d_sae=8, k=2)
    with pytest.raises(ValueError, match="grid='feature' and sae= together"):
        activation_patching(a, tokens, other=b, metric=metric, grid="head", sae=sae)
    with pytest.raises(ValueError, match="corrupted=.*or other="):
        activation_patching(a, tokens, metric=metric, grid="feature", sae=sae)
