"""Splicing an SAE with its error term kept: the original model when nothing is edited (every
backend), and each edit changing only the edited features' contributions."""

from __future__ import annotations

import hf_tiny
import pytest
import torch

import explorer
from explorer.features import (
    Add,
    Scale,
    SparseAutoencoder,
    edit_features,
    run_spliced,
    splice_hooks,
    spliced,
)
from explorer.models import zoo
from explorer.models.config import TransformerConfig

CFG = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1)


def _tokens(d_vocab=20, seed=0, shape=(3, 7)):
    return torch.randint(0, d_vocab, shape, generator=torch.Generator().manual_seed(seed))


def _trained_like(sae: SparseAutoencoder) -> SparseAutoencoder:
    """Biases away from zero so that a missing term would show."""
    with torch.no_grad():
        for _, p in sae.sae.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return sae


def _models():
    ref = zoo.transformer(TransformerConfig(**CFG))
    yield "transformer-lens", ref
    light = zoo.transformer(TransformerConfig(**CFG), light=True)
    light.model.load_state_dict(ref.model.state_dict())  # (a test may open the module)
    yield "light", light


@pytest.mark.parametrize("architecture", ["topk", "standard", "jumprelu"])
def test_spliced_pass_equals_the_original_on_every_toy_backend(architecture):
    for backend, model in _models():
        hook = "blocks.0.hook_resid_post"
        sae = _trained_like(
            SparseAutoencoder.create(hook, d_in=16, d_sae=64, architecture=architecture, k=4)
        )
        x = _tokens()
        last = "blocks.1.hook_resid_post"
        plain = model.cache_pass(x, [last])[1][last]
        out = model.cache_pass(x, [last], fwd_hooks=splice_hooks(sae))[1][last]
        assert (out - plain).abs().max() < 1e-5, backend
        assert (run_spliced(model, x, sae) - model(x)).abs().max() < 1e-5, backend
        # the SAE alone (no error term) is far from the model: the error term did the work
        recon = model.cache_pass(
            x, [last], fwd_hooks=[(hook, lambda a, hook, sae=sae: sae.reconstruct(a))]
        )
        assert (recon[1][last] - plain).abs().max() > 1e-2, backend


def test_spliced_pass_equals_the_original_on_a_plain_module_and_a_per_head_hook():
    mlp = zoo.mnist_mlp(hidden=(16, 12), seed=0)
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    sae = _trained_like(SparseAutoencoder.create("blocks.0.mlp.hook_post", d_in=16, d_sae=40, k=5))
    assert (run_spliced(mlp, images, sae) - mlp(images)).abs().max() < 1e-5

    model = zoo.transformer(TransformerConfig(**CFG))
    sae_z = SparseAutoencoder.create("blocks.1.attn.hook_z", d_in=16, d_sae=48, k=6)
    sae_z.sae.turn_on_forward_pass_hook_z_reshaping()
    sae_z.sae.cfg.reshape_activations = "hook_z"
    x = _tokens()
    assert (run_spliced(model, x, sae_z) - model(x)).abs().max() < 1e-5


def test_spliced_pass_equals_the_original_on_the_nnsight_backend():
    tok = hf_tiny.tokenizer()
    hf_model = hf_tiny.model("gpt2", tok)
    nn_model = explorer.load(hf_model, tokenizer=tok, backend="nnsight")
    tl_model = explorer.load(hf_model, tokenizer=tok)
    d = nn_model.d_model
    sae = _trained_like(
        SparseAutoencoder.create("blocks.1.hook_resid_pre", d_in=d, d_sae=4 * d, k=8)
    )
    x = nn_model.to_tokens(["When Mary and John went to the store", "a b c d e f g h"])
    plain = nn_model(x)
    assert (run_spliced(nn_model, x, sae) - plain).abs().max() < 1e-5
    edit = {3: Add(2.0), 7: "zero"}
    assert (
        run_spliced(nn_model, x, sae, edit) - run_spliced(tl_model, x, sae, edit)
    ).abs().max() < 1e-4
    with pytest.raises(NotImplementedError, match="run_with_hooks"):
        with spliced(nn_model, sae):
            pass


def test_a_transcoder_splices_mlp_in_to_mlp_out_with_its_error_kept():
    model = zoo.transformer(TransformerConfig(**CFG))
    tc = _trained_like(
        SparseAutoencoder.create(
            "blocks.0.hook_resid_mid",
            d_in=16,
            d_sae=64,
            architecture="transcoder",
            hook_out="blocks.0.hook_mlp_out",
        )
    )
    assert tc.is_transcoder and tc.hooks == ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out"]
    x = _tokens()
    assert (run_spliced(model, x, tc) - model(x)).abs().max() < 1e-5
    _, clean = model.cache_pass(x, ["blocks.0.hook_mlp_out", "blocks.0.hook_resid_mid"])
    _, cache = model.cache_pass(
        x,
        ["blocks.1.hook_resid_pre", "blocks.0.hook_resid_mid"],
        fwd_hooks=splice_hooks(tc, {5: "zero"}),
    )
    f5 = tc.encode(clean["blocks.0.hook_resid_mid"])[..., 5]
    expected = (
        cache["blocks.0.hook_resid_mid"]
        + clean["blocks.0.hook_mlp_out"]
        - f5[..., None] * tc.decoder[5]
    )
    assert torch.allclose(cache["blocks.1.hook_resid_pre"], expected, atol=1e-5)


def test_an_edit_changes_only_the_edited_features_contribution():
    model = zoo.transformer(TransformerConfig(**CFG))
    hook, after = "blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"
    sae = _trained_like(SparseAutoencoder.create(hook, d_in=16, d_sae=64, architecture="standard"))
    x = _tokens()
    _, clean = model.cache_pass(x, [hook])
    acts = sae.encode(clean[hook])
    active = int(acts.sum((0, 1)).argmax())
    W = sae.decoder
    cases = {
        "zero": -acts[..., active, None] * W[active],
        Scale(3.0): 2 * acts[..., active, None] * W[active],
        Add(1.5): 1.5 * W[active].expand_as(clean[hook]),
        0.25: (0.25 - acts[..., active, None]) * W[active],
    }
    for value, change in cases.items():
        _, cache = model.cache_pass(x, [after], fwd_hooks=splice_hooks(sae, {active: value}))
        assert torch.allclose(cache[after] - clean[hook], change, atol=1e-5), value
    # one position only
    _, cache = model.cache_pass(
        x, [after], fwd_hooks=splice_hooks(sae, {active: Add(1.0)}, position=2)
    )
    moved = (cache[after] - clean[hook]).abs().amax(-1)
    assert moved[:, 2].min() > 0.1 and moved[:, [0, 1, 3, 4, 5, 6]].max() < 1e-5
    # a tensor per input (resample ablation) and a function over all features
    donor = acts[..., active].flip(0)
    _, cache = model.cache_pass(x, [after], fwd_hooks=splice_hooks(sae, {active: donor}))
    assert torch.allclose(
        cache[after] - clean[hook], (donor - acts[..., active])[..., None] * W[active], atol=1e-5
    )
    record: dict = {}
    out = run_spliced(model, x, sae, lambda a: a * 0, record=record)
    assert record[hook].abs().max() == 0 and out.shape == (3, 7, 20)


def test_the_context_manager_splices_every_pass_inside_it_and_none_after():
    model = zoo.transformer(TransformerConfig(**CFG))
    sae = _trained_like(
        SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=16, d_sae=64, k=4)
    )
    x = _tokens()
    plain = model(x)
    with spliced(model, sae, {0: Add(5.0), 1: Add(5.0)}):
        steered = model(x)
    assert (steered - plain).abs().max() > 1e-2
    assert torch.equal(model(x), plain)


def test_bad_edits_and_hooks_are_sentences():
    model = zoo.transformer(TransformerConfig(**CFG))
    sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=16, d_sae=64, k=4)
    x = _tokens()
    with pytest.raises(ValueError, match=r"feature 64 out of range: valid features are 0\.\.63"):
        run_spliced(model, x, sae, {64: 0.0})
    with pytest.raises(ValueError, match="'half' is not an edit; allowed: a number or tensor"):
        run_spliced(model, x, sae, {1: "half"})
    with pytest.raises(TypeError, match="list .* is not an edit"):
        run_spliced(model, x, sae, {1: [1.0]})
    with pytest.raises(ValueError, match=r"position 9 out of range: valid positions are 0\.\.6"):
        run_spliced(model, x, sae, {1: 0.0}, position=9)
    with pytest.raises(ValueError, match="must return feature activations of shape"):
        run_spliced(model, x, sae, lambda a: a[..., :3])
    other = SparseAutoencoder.create("blocks.7.hook_resid_post", d_in=16, d_sae=64, k=4)
    with pytest.raises(
        ValueError,
        match=r"reads hook 'blocks.7.hook_resid_post', which .* does not have: its hook_resid_post hooks are \['blocks.0",
    ):
        run_spliced(model, x, other)
    with pytest.raises(TypeError, match="SparseAutoencoder.from_saelens"):
        splice_hooks(sae.sae)
    elsewhere = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=16, d_sae=64, k=4).to(
        "meta"
    )
    assert elsewhere.device.type == "meta"
    with pytest.raises(
        ValueError,
        match=r"is on meta but the activation at blocks.0.hook_resid_post is on cpu: move the SAE to the model's device with sae.to\('cpu'\)",
    ):
        run_spliced(model, x, elsewhere)
    with pytest.raises(ValueError, match="does not broadcast"):
        edit_features(torch.zeros(3, 7, 64), {0: torch.zeros(5)}, sae)
