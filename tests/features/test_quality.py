"""SAE quality on held-out inputs: the figures equal their definitions, a trained SAE beats a
random one, planted dead and dense features are counted, and the result displays itself."""

from __future__ import annotations

import hf_tiny
import pytest
import torch
import torch.nn.functional as F

import explorer
from explorer.features import SAEQuality, SparseAutoencoder, sae_quality
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.training import train_sae

CFG = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1)
HOOK = "blocks.0.hook_resid_post"


def _toy():
    return zoo.transformer(TransformerConfig(**CFG))


def _tokens(n, seed):
    return torch.randint(0, 20, (n, 10), generator=torch.Generator().manual_seed(seed))


def test_the_figures_equal_their_definitions():
    model = _toy()
    sae = SparseAutoencoder.create(HOOK, d_in=16, d_sae=40, architecture="standard", seed=3)
    x = _tokens(6, seed=1)
    q = sae_quality(model, x, sae, batch_size=4, dense_above=0.3)
    logits, cache = model.cache_pass(x, [HOOK])
    act = cache[HOOK].reshape(-1, 16)
    with torch.no_grad():
        feats = sae.encode(act)
        recon = sae.decode(feats)
    mse = (recon - act).pow(2).sum(-1).mean()
    explained = 1 - mse / (act - act.mean(0)).pow(2).sum(-1).mean()
    assert q.n_samples == 60
    assert q.explained_variance == pytest.approx(float(explained), abs=1e-5)
    assert q.fvu == pytest.approx(1 - q.explained_variance)
    assert q.mse == pytest.approx(float(mse), rel=1e-5)
    assert q.l0 == pytest.approx(float((feats != 0).float().sum(-1).mean()))
    rate = (feats != 0).float().mean(0)
    assert torch.allclose(q.frequency, rate)
    assert q.dead_fraction == pytest.approx(float((rate == 0).float().mean()))
    assert q.dense_fraction == pytest.approx(float((rate > 0.3).float().mean()))

    def ce(out):
        return float(F.cross_entropy(out[:, :-1].flatten(0, 1), x[:, 1:].flatten()).detach())

    spliced = model.run_with_hooks(x, [(HOOK, lambda a, hook: sae.reconstruct(a))])
    ablated = model.run_with_hooks(x, [(HOOK, lambda a, hook: a * 0)])
    assert q.ce_loss == pytest.approx(ce(logits), rel=1e-5)
    assert q.ce_loss_spliced == pytest.approx(ce(spliced), rel=1e-5)
    assert q.ce_loss_ablated == pytest.approx(ce(ablated), rel=1e-5)
    assert q.ce_loss_recovered == pytest.approx(
        (ce(ablated) - ce(spliced)) / (ce(ablated) - ce(logits)), rel=1e-4
    )


def test_planted_dead_and_dense_features_are_counted():
    model = _toy()
    sae = SparseAutoencoder.create(HOOK, d_in=16, d_sae=20, architecture="standard", seed=0)
    with torch.no_grad():
        sae.sae.b_enc[:5] = -1e4  # never fire
        sae.sae.b_enc[5:8] = 1e4  # always fire
    q = sae_quality(model, _tokens(4, seed=2), sae)
    assert q.dead_fraction >= 5 / 20 and q.dense_fraction >= 3 / 20
    assert (q.frequency[:5] == 0).all() and (q.frequency[5:8] == 1).all()


def test_a_trained_sae_beats_a_random_one_on_held_out_text():
    model = _toy()
    trained = train_sae(
        model, _tokens(32, seed=0), HOOK, d_sae=48, k=4, n_samples=9600, samples_per_step=64,
        lr=3e-3, progress=False,
    )  # fmt: skip
    random = SparseAutoencoder.create(HOOK, d_in=16, d_sae=48, k=4, seed=0)
    held_out = _tokens(8, seed=99)
    good, bad = sae_quality(model, held_out, trained), sae_quality(model, held_out, random)
    assert good.explained_variance > 0.5 > bad.explained_variance
    # (an untrained model loses little to zeroing a hook, so compare the losses themselves)
    assert abs(good.ce_loss_spliced - good.ce_loss) < 0.2 * abs(bad.ce_loss_spliced - bad.ce_loss)
    assert good.l0 <= 4 + 1e-6


def test_any_handle_and_the_display_layer():
    tok = hf_tiny.tokenizer()
    nn_model = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok, backend="nnsight")
    tl_model = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok)
    sae = SparseAutoencoder.create("blocks.1.hook_resid_pre", d_in=nn_model.d_model, d_sae=64, k=8)
    text = ["the cat sat on the mat", "When Mary and John went"]  # padded: the mask counts
    a = sae_quality(nn_model, nn_model.to_tokens(text), sae, batch_size=1)
    padded = tl_model.to_tokens(text)
    b = sae_quality(tl_model, padded, sae)
    real = int(tl_model.attention_mask(padded).sum())
    assert real < padded.numel() and a.n_samples == b.n_samples == real
    assert a.ce_loss == pytest.approx(b.ce_loss, rel=1e-4)
    assert a.ce_loss_recovered == pytest.approx(b.ce_loss_recovered, rel=1e-3, abs=1e-4)
    mlp = zoo.mnist_mlp(hidden=(16, 12), seed=0)
    q = sae_quality(
        mlp,
        torch.rand(8, 1, 28, 28),
        SparseAutoencoder.create("blocks.0.mlp.hook_post", d_in=16, d_sae=24, k=3),
    )
    assert q.n_samples == 8 and q.l0 == 3 and q.ce_loss != q.ce_loss  # NaN: no next token
    assert (
        isinstance(q, SAEQuality) and len(repr(q)) <= 300 and repr(q).startswith("SAEQuality(sae=")
    )
    frame = a.to_dataframe()
    assert len(frame) == 1 and "frequency" not in frame and frame["l0"][0] == a.l0
    assert "<table" in a._repr_html_() and "ce_loss_recovered" in a._repr_html_()
    with pytest.raises(ValueError, match="dense_above must be a firing rate between 0 and 1"):
        sae_quality(
            mlp,
            torch.rand(2, 1, 28, 28),
            SparseAutoencoder.create("blocks.0.mlp.hook_post", d_in=16, d_sae=24),
            dense_above=2,
        )
