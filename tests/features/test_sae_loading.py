"""Loading SAELens's folder format: a toy model and a Hugging Face GPT-2-shaped folder, the
pretrained release layout (offline), and a sentence for every mismatch or unsafe folder."""

from __future__ import annotations

import json
import os

import hf_tiny
import pytest
import torch
from safetensors.torch import save_file

import explorer
from explorer._inside import OutsideFolderError
from explorer.features import SparseAutoencoder, check_fits, load_sae, run_spliced, sae_folders
from explorer.models import zoo
from explorer.models.config import TransformerConfig

CFG = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1)


def _toy():
    return zoo.transformer(TransformerConfig(**CFG))


def test_a_saved_sae_loads_with_the_same_weights_hook_and_widths(tmp_path):
    model = _toy()
    for arch in ("topk", "standard", "jumprelu"):
        sae = SparseAutoencoder.create(
            "blocks.1.hook_resid_pre", d_in=16, d_sae=48, architecture=arch, k=5
        )
        sae.save(tmp_path / arch)
        assert sorted(os.listdir(tmp_path / arch)) == ["cfg.json", "sae_weights.safetensors"]
        loaded = load_sae(tmp_path / arch, model=model)
        assert (loaded.hook, loaded.d_in, loaded.d_sae, loaded.architecture) == (
            "blocks.1.hook_resid_pre",
            16,
            48,
            arch,
        )
        x = torch.randn(2, 3, 16)
        assert torch.equal(loaded.encode(x), sae.encode(x))
        assert loaded.fingerprint() == sae.fingerprint()
    tc = SparseAutoencoder.create(
        "blocks.0.hook_resid_mid",
        d_in=16,
        d_sae=32,
        architecture="transcoder",
        hook_out="blocks.0.hook_mlp_out",
    )
    loaded = load_sae(tc.save(tmp_path / "tc"), model=model)
    assert loaded.is_transcoder and loaded.hook_out == "blocks.0.hook_mlp_out"


def test_a_gpt2_shaped_hugging_face_folder_takes_an_sae_on_both_backends(tmp_path):
    folder = hf_tiny.write_family("gpt2", tmp_path / "gpt2")
    for backend in ("transformer-lens", "nnsight"):
        model = explorer.load(folder, backend=backend)
        sae = SparseAutoencoder.create(
            "blocks.0.hook_resid_post", d_in=model.d_model, d_sae=64, k=4
        )
        loaded = load_sae(sae.save(tmp_path / f"sae-{backend}"), model=model)
        x = model.to_tokens(["the cat sat on the mat"])
        assert (run_spliced(model, x, loaded) - model(x)).abs().max() < 1e-5
        wide = SparseAutoencoder.create(
            "blocks.0.hook_resid_post", d_in=model.d_model + 1, d_sae=64, k=4
        )
        with pytest.raises(
            ValueError,
            match=rf"reads d_in={model.d_model + 1} at blocks.0.hook_resid_post, but .* has width {model.d_model}",
        ):
            load_sae(wide.save(tmp_path / f"wide-{backend}"), model=model)


def test_the_release_layout_needs_an_sae_id_and_offers_the_choices(tmp_path):
    model = _toy()
    release = tmp_path / "release"
    for layer in (0, 1):
        SparseAutoencoder.create(f"blocks.{layer}.hook_resid_pre", d_in=16, d_sae=32, k=4).save(
            release / f"blocks.{layer}.hook_resid_pre"
        )
    (release / "README.md").write_text("not an SAE")
    assert sae_folders(release) == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
    with pytest.raises(
        ValueError,
        match=r"holds 2 SAEs \(a release folder\), not one: pass sae_id= one of \['blocks.0.hook_resid_pre'",
    ):
        load_sae(release, model=model)
    assert (
        load_sae(release, model=model, sae_id="blocks.1.hook_resid_pre").hook
        == "blocks.1.hook_resid_pre"
    )
    # a Hugging Face cache snapshot: files are links into the repository's blobs/
    repo = tmp_path / "hub" / "models--someone--toy-saes"
    snap = repo / "snapshots" / "abc123" / "blocks.0.hook_resid_pre"
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for name in ("cfg.json", "sae_weights.safetensors"):
        blob = repo / "blobs" / f"blob-{name}"
        blob.write_bytes((release / "blocks.0.hook_resid_pre" / name).read_bytes())
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    assert load_sae(snap.parent, model=model, sae_id="blocks.0.hook_resid_pre").d_sae == 32


def test_mismatches_are_sentences(tmp_path):
    model = _toy()
    folder = SparseAutoencoder.create("blocks.5.hook_resid_pre", d_in=16, d_sae=32, k=4).save(
        tmp_path / "a"
    )
    with pytest.raises(
        ValueError,
        match=r"reads hook 'blocks.5.hook_resid_pre', which transformer does not have: its hook_resid_pre hooks are \['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre'\]",
    ):
        load_sae(folder, model=model)
    assert load_sae(folder).hook == "blocks.5.hook_resid_pre"  # no model: nothing to check against
    assert (
        load_sae(folder, model=model, hook="blocks.0.hook_resid_pre").hook
        == "blocks.0.hook_resid_pre"
    )
    sae = SparseAutoencoder.create("blocks.0.mlp.hook_post", d_in=16, d_sae=32, k=4)
    with pytest.raises(
        ValueError,
        match=r"reads d_in=16 at blocks.0.mlp.hook_post, but transformer's activation there has width 32",
    ):
        check_fits(model, sae)
    with pytest.raises(ValueError, match="does not exist or is not a folder"):
        load_sae(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ValueError,
        match="is not an SAE folder: SAELens's format has cfg.json and sae_weights.safetensors",
    ):
        load_sae(tmp_path / "empty")


def test_a_folder_is_data_not_a_program(tmp_path):
    folder = SparseAutoencoder.create("blocks.0.hook_resid_pre", d_in=16, d_sae=32, k=4).save(
        tmp_path / "release" / "a"
    )
    with pytest.raises(OutsideFolderError, match="not a plain name inside release folder"):
        load_sae(tmp_path / "release", sae_id="../release/a")
    cfg = json.loads((folder / "cfg.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sae_weights.safetensors").write_bytes((folder / "sae_weights.safetensors").read_bytes())
    (bad / "cfg.json").write_text(json.dumps({**cfg, "architecture": "evil_code"}))
    with pytest.raises(
        ValueError,
        match=r"names architecture 'evil_code', which SAELens .* does not know: known are \[.*'topk'",
    ):
        load_sae(bad)
    (bad / "cfg.json").write_text(json.dumps({**cfg, "d_in": "16"}))
    with pytest.raises(
        ValueError, match="gives d_in='16': an SAE config needs a positive integer d_in"
    ):
        load_sae(bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cfg.json").write_text(json.dumps(cfg))
    (bad / "cfg.json").unlink()
    (bad / "cfg.json").symlink_to(outside / "cfg.json")
    with pytest.raises(OutsideFolderError, match="symlink that leads outside"):
        load_sae(bad)
    (tmp_path / "pickled").mkdir()
    torch.save({"W_enc": torch.zeros(2)}, tmp_path / "pickled" / "sae_weights.pt")
    with pytest.raises(ValueError, match="is not an SAE folder"):
        load_sae(tmp_path / "pickled")


def test_a_saelens_5_release_folder_loads_on_a_gpt2_shaped_model(tmp_path):
    """The layout of SAELens's older GPT-2 releases (gpt2-small-res-jb): ``hook_point``
    instead of ``hook_name``, no architecture, a CUDA device and a dtype string."""
    model = explorer.load(hf_tiny.write_family("gpt2", tmp_path / "gpt2"))
    d = model.d_model
    folder = tmp_path / "gpt2-small-res-jb" / "blocks.1.hook_resid_pre"
    folder.mkdir(parents=True)
    cfg = {
        "model_name": "gpt2-small", "hook_point": "blocks.1.hook_resid_pre", "hook_point_layer": 1,
        "hook_point_head_index": None, "d_in": d, "d_sae": 4 * d, "dtype": "torch.float32",
        "device": "cuda", "context_size": 128, "normalize_activations": False,
    }  # fmt: skip
    (folder / "cfg.json").write_text(json.dumps(cfg))
    gen = torch.Generator().manual_seed(0)
    weights = {
        "W_enc": torch.randn(d, 4 * d, generator=gen), "b_enc": torch.zeros(4 * d),
        "W_dec": torch.randn(4 * d, d, generator=gen), "b_dec": torch.zeros(d),
    }  # fmt: skip
    save_file(weights, str(folder / "sae_weights.safetensors"))
    sae = load_sae(folder.parent, model=model, sae_id="blocks.1.hook_resid_pre")
    assert (sae.architecture, sae.hook, sae.d_in, sae.d_sae) == (
        "standard",
        "blocks.1.hook_resid_pre",
        d,
        4 * d,
    )
    assert torch.equal(sae.decoder, weights["W_dec"])
    x = model.to_tokens(["the cat sat on the mat"])
    assert (run_spliced(model, x, sae) - model(x)).abs().max() < 1e-5
