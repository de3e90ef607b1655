"""SAEs and transcoders trained by SAELens's SAETrainer on explorer's streamed activations:
every architecture learns on a toy model, any handle feeds it, and a killed run resumes to
the weights an unbroken run reaches."""

from __future__ import annotations

import hf_tiny
import pytest
import torch

import explorer
from explorer.features import load_sae, run_spliced
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.training import sae_stream
from explorer.training.sae_run import SAERun
from explorer.training.sae_training import train_sae

CFG = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1)
HOOK = "blocks.0.hook_resid_post"


def _toy():
    return zoo.transformer(TransformerConfig(**CFG))


def _tokens(n=24, seed=0):
    return torch.randint(0, 20, (n, 10), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "architecture, kwargs",
    [
        ("topk", {"k": 4}),
        ("batchtopk", {"k": 4}),
        ("standard", {"l1_coefficient": 1e-3}),
        ("jumprelu", {"l0_coefficient": 1e-4}),
    ],
)
def test_each_architecture_learns_and_its_metrics_are_logged(tmp_path, architecture, kwargs):
    model = _toy()
    sae = train_sae(
        model, _tokens(), HOOK, d_sae=48, architecture=architecture, n_samples=6400,
        samples_per_step=64, lr=3e-3, run=tmp_path / "run", log_every=5, progress=False, **kwargs,
    )  # fmt: skip
    run = SAERun.open(tmp_path / "run")
    assert run.status == "complete" and run.steps == (21, 41, 61, 81)
    rows = run.rows()
    assert rows[0]["step"] == 5 and rows[-1]["step"] == 100
    assert rows[-1]["mse_loss"] < 0.5 * rows[0]["mse_loss"], rows
    assert rows[-1]["explained_variance"] > rows[0]["explained_variance"]
    if architecture in ("topk", "batchtopk"):
        assert rows[-1]["l0"] <= 4.0 + 1e-6
    assert sae.hook == HOOK and sae.d_in == 16 and sae.d_sae == 48
    x = _tokens(3, seed=9)
    assert (run_spliced(model, x, sae) - model(x)).abs().max() < 1e-5
    assert load_sae(run.sae_folder(), model=model).fingerprint() == sae.fingerprint()


def test_a_transcoder_learns_mlp_in_to_mlp_out():
    model = _toy()
    tc = train_sae(
        model, _tokens(), "blocks.0.hook_resid_mid", hook_out="blocks.0.hook_mlp_out",
        architecture="transcoder", d_sae=64, n_samples=12800, samples_per_step=64, lr=3e-3,
        l1_coefficient=1e-4, progress=False,
    )  # fmt: skip
    assert tc.is_transcoder and tc.architecture == "transcoder" and (tc.d_in, tc.d_out) == (16, 16)
    x = _tokens(4, seed=5)
    _, cache = model.cache_pass(x, ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out"])
    target = cache["blocks.0.hook_mlp_out"]
    fvu = (tc.decode(tc.encode(cache["blocks.0.hook_resid_mid"])) - target).pow(2).sum() / (
        target - target.mean((0, 1))
    ).pow(2).sum()
    assert fvu < 0.5
    assert (run_spliced(model, x, tc) - model(x)).abs().max() < 1e-5


def test_a_killed_run_resumes_to_the_weights_of_an_unbroken_one(tmp_path, monkeypatch):
    model = _toy()
    settings = dict(
        d_sae=32, k=3, n_samples=3200, samples_per_step=64, lr=3e-3, checkpoints=4, progress=False
    )
    whole = train_sae(model, _tokens(), HOOK, run=tmp_path / "whole", **settings)

    real = sae_stream.ActivationStream.batches

    def dies_after_25(self, start=0):
        for i, batch in enumerate(real(self, start)):
            if i == 25:  # the 26th step of training (the norm estimate has a stream of its own)
                raise KeyboardInterrupt("killed")
            yield batch

    monkeypatch.setattr(sae_stream.ActivationStream, "batches", dies_after_25)
    with pytest.raises(KeyboardInterrupt):
        train_sae(model, _tokens(), HOOK, run=tmp_path / "broken", **settings)
    monkeypatch.setattr(sae_stream.ActivationStream, "batches", real)
    broken = SAERun.open(tmp_path / "broken")
    assert broken.status == "training" and broken.steps == (11, 21)
    # what a kill mid-checkpoint leaves: a staging folder and a folder the manifest never listed
    (tmp_path / "broken" / ".staging").mkdir()
    (tmp_path / "broken" / "checkpoints" / "step_000031").mkdir()
    (tmp_path / "broken" / "checkpoints" / "step_000031" / "cfg.json").write_text("{torn")
    resumed = train_sae(model, _tokens(), HOOK, run=tmp_path / "broken", **settings)
    assert SAERun.open(tmp_path / "broken").steps == (11, 21, 31, 41)
    assert not (tmp_path / "broken" / ".staging").exists()
    assert (tmp_path / "broken" / "checkpoints" / "step_000031" / "optimizer.json").is_file()
    for (name, a), (_, b) in zip(whole.sae.state_dict().items(), resumed.sae.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert [r["step"] for r in broken.rows()] == [
        r["step"] for r in SAERun.open(tmp_path / "whole").rows()
    ]
    again = train_sae(
        model, _tokens(), HOOK, run=tmp_path / "broken", **settings
    )  # complete: read back
    assert again.fingerprint() == resumed.fingerprint()
    with pytest.raises(ValueError, match=r"trained with other settings \(d_sae: 32 -> 40\)"):
        train_sae(model, _tokens(), HOOK, run=tmp_path / "broken", **{**settings, "d_sae": 40})


def test_any_handle_feeds_it_nnsight_and_a_plain_module():
    tok = hf_tiny.tokenizer()
    nn_model = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok, backend="nnsight")
    tokens = torch.randint(5, 500, (8, 8), generator=torch.Generator().manual_seed(0))
    sae = train_sae(
        nn_model,
        tokens,
        "blocks.1.hook_resid_pre",
        d_sae=64,
        k=4,
        n_samples=640,
        samples_per_step=64,
        progress=False,
    )
    assert sae.d_in == nn_model.d_model
    assert (run_spliced(nn_model, tokens[:2], sae) - nn_model(tokens[:2])).abs().max() < 1e-5
    mlp = zoo.mnist_mlp(hidden=(16, 12), seed=0)
    images = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    sae = train_sae(
        mlp,
        images,
        "blocks.0.mlp.hook_post",
        d_sae=24,
        k=3,
        n_samples=320,
        samples_per_step=32,
        progress=False,
    )
    assert (sae.d_in, sae.d_sae) == (16, 24)


def test_bad_settings_are_sentences(tmp_path):
    model = _toy()
    with pytest.raises(
        ValueError, match=r"architecture 'gated' is not trained here: use one of \['topk'"
    ):
        train_sae(model, _tokens(), HOOK, d_sae=8, architecture="gated")
    with pytest.raises(ValueError, match="a transcoder needs hook_out"):
        train_sae(model, _tokens(), HOOK, d_sae=8, architecture="transcoder")
    with pytest.raises(ValueError, match="hook_out is for architecture='transcoder'"):
        train_sae(model, _tokens(), HOOK, d_sae=8, hook_out="blocks.0.hook_mlp_out")
    with pytest.raises(ValueError, match="unknown hook 'blocks.9.hook_resid_post'"):
        train_sae(model, _tokens(), "blocks.9.hook_resid_post", d_sae=8)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an SAE run"):
        train_sae(model, _tokens(), HOOK, d_sae=8, run=tmp_path / "x")
