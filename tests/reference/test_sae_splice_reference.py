"""The spliced SAE beside SAELens's own ``HookedSAETransformer`` on the same SAE: equal
logits to 1e-5 with the error term kept, with and without feature edits (zero, steer), for
SAEs of each architecture, a per-head (hook_z) SAE and a transcoder; and ``sae_quality``'s
loss figures beside SAELens's ``evals.get_recons_loss``."""

from __future__ import annotations

import pytest
import torch
from sae_lens import HookedSAETransformer
from sae_lens.evals import get_recons_loss
from sae_lens.training.activation_scaler import ActivationScaler

from explorer.features import Add, SparseAutoencoder, run_spliced, sae_quality
from explorer.models import zoo
from explorer.models.config import TransformerConfig

CFG = dict(
    n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1, normalization="LN"
)
ATOL = 1e-5


@pytest.fixture(scope="module")
def pair():
    ours = zoo.transformer(TransformerConfig(**CFG))
    with torch.no_grad():  # biases and norms away from their init, so that each one counts
        gen = torch.Generator().manual_seed(0)
        for name, p in ours.model.named_parameters():
            if "W_" not in name:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    theirs = HookedSAETransformer(ours.model.cfg)
    theirs.load_state_dict(ours.model.state_dict())
    return ours, theirs.eval()


def _perturbed(sae):
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for _, p in sae.sae.named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return sae


def _saes():
    yield _perturbed(SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=16, d_sae=64, k=4))
    yield _perturbed(
        SparseAutoencoder.create(
            "blocks.1.hook_resid_pre", d_in=16, d_sae=48, architecture="standard"
        )
    )
    yield _perturbed(
        SparseAutoencoder.create(
            "blocks.0.hook_mlp_out", d_in=16, d_sae=40, architecture="jumprelu"
        )
    )
    z = SparseAutoencoder.create("blocks.1.attn.hook_z", d_in=16, d_sae=32, k=6)
    z.sae.cfg.reshape_activations = "hook_z"
    z.sae.turn_on_forward_pass_hook_z_reshaping()
    yield _perturbed(z)
    yield _perturbed(
        SparseAutoencoder.create(
            "blocks.0.ln2.hook_normalized", d_in=16, d_sae=64, architecture="transcoder",
            hook_out="blocks.0.hook_mlp_out",
        )
    )  # fmt: skip


def _theirs(theirs, sae, tokens, edit=None):
    """SAELens: the SAE attached with its error term, ``edit`` applied to its feature
    activations through its own hook point."""
    theirs.add_sae(sae.sae, use_error_term=True)
    try:
        names = [n for n in theirs.hook_dict if n.endswith("hook_sae_acts_post")]
        assert len(names) == 1, names
        hooks = [(names[0], edit)] if edit is not None else []
        return theirs.run_with_hooks(tokens, fwd_hooks=hooks)
    finally:
        theirs.reset_saes()


@pytest.mark.parametrize("index", range(5))
def test_the_splice_equals_hooked_sae_transformer(pair, index):
    ours, theirs = pair
    sae = list(_saes())[index]
    tokens = torch.randint(0, 20, (3, 9), generator=torch.Generator().manual_seed(index))
    plain = ours(tokens)
    mine = run_spliced(ours, tokens, sae)
    ref = _theirs(theirs, sae, tokens)
    assert (mine - ref).abs().max() < ATOL
    assert (mine - plain).abs().max() < ATOL
    acts = sae.encode(ours.cache_pass(tokens, [sae.hook])[1][sae.hook])
    feature = int((acts != 0).float().sum((0, 1)).argmax())

    def zero(act, hook):
        act = act.clone()
        act[..., feature] = 0
        return act

    def steer(act, hook):
        return act + 2.0 * (torch.arange(act.shape[-1]) == feature)

    edited = run_spliced(ours, tokens, sae, {feature: "zero"})
    assert (edited - _theirs(theirs, sae, tokens, zero)).abs().max() < ATOL
    assert (edited - plain).abs().max() > 1e-3  # the edit did something
    steered = run_spliced(ours, tokens, sae, {feature: Add(2.0)})
    assert (steered - _theirs(theirs, sae, tokens, steer)).abs().max() < ATOL


def test_quality_losses_equal_saelens_get_recons_loss(pair):
    ours, theirs = pair
    sae = next(iter(_saes()))
    tokens = torch.randint(0, 20, (4, 9), generator=torch.Generator().manual_seed(7))
    ref = get_recons_loss(
        sae.sae, theirs, ActivationScaler(), tokens, compute_kl=False, compute_ce_loss=True
    )
    q = sae_quality(ours, tokens, sae)
    assert q.ce_loss == pytest.approx(float(ref["ce_loss_without_sae"].mean()), rel=1e-5)
    assert q.ce_loss_spliced == pytest.approx(float(ref["ce_loss_with_sae"].mean()), rel=1e-5)
    assert q.ce_loss_ablated == pytest.approx(float(ref["ce_loss_with_ablation"].mean()), rel=1e-5)
