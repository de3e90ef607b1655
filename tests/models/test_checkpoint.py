from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import explorer
from explorer.models import zoo
from explorer.models.checkpoint import load_checkpoint, save_checkpoint


@pytest.mark.parametrize(
    "build",
    [
        lambda: zoo.modular_addition_transformer(p=5, d_model=16),
        lambda: zoo.attention_only_transformer(n_layers=2, d_model=16, d_vocab=10, n_ctx=8),
        lambda: zoo.mnist_mlp(hidden=(6,)),
        lambda: zoo.mnist_cnn(channels=(2,)),
    ],
)
def test_round_trip(tmp_path, build):
    model = build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the seeded init
    save_checkpoint(model, tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded = explorer.load(tmp_path / "ck")
    assert loaded.fingerprint() == model.fingerprint()
    assert loaded.hook_names == model.hook_names


def test_corrupt_weights_are_refused(tmp_path):
    save_checkpoint(zoo.mnist_mlp(hidden=(4,)), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="corrupt or not safetensors"):
        load_checkpoint(tmp_path)


def test_truncated_weights_are_refused(tmp_path):
    save_checkpoint(zoo.mnist_mlp(hidden=(4,)), tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path)


def test_mismatched_config_is_refused(tmp_path):
    save_checkpoint(zoo.mnist_mlp(hidden=(4,)), tmp_path)
    header = json.loads((tmp_path / "config.json").read_text())
    header["config"]["hidden"] = [5]
    (tmp_path / "config.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match=r"does not match model.safetensors.*shapes differ"):
        load_checkpoint(tmp_path)


def test_bad_json_and_unknown_fields(tmp_path):
    save_checkpoint(zoo.mnist_mlp(hidden=(4,)), tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError):
        explorer.load(tmp_path)
    save_checkpoint(zoo.mnist_mlp(hidden=(4,)), tmp_path)
    header = json.loads((tmp_path / "config.json").read_text())
    header["config"]["evil"] = 1
    (tmp_path / "config.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="unknown fields"):
        load_checkpoint(tmp_path)


def test_nan_weights_are_refused(tmp_path):
    model = zoo.mnist_mlp(hidden=(4,))
    with torch.no_grad():
        model.model.module[1].weight[0, 0] = float("nan")
    save_checkpoint(model, tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        load_checkpoint(tmp_path)


def test_custom_module_weights_load_into_given_instance(tmp_path):
    from safetensors.torch import save_file

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors")
    )
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    handle = explorer.load(tmp_path / "w.safetensors", module=fresh)
    x = torch.randn(2, 3)
    assert torch.allclose(handle(x), net(x))


def test_custom_module_cannot_save_without_config(tmp_path):
    handle = explorer.load(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="no explorer config"):
        save_checkpoint(handle, tmp_path)


def test_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not an explorer checkpoint"):
        explorer.load(tmp_path)


def test_float16_checkpoints_are_half_the_size_and_load_back_close(tmp_path):
    from safetensors import safe_open

    model = zoo.attention_only_transformer(n_layers=2, d_model=32, d_vocab=50, n_ctx=16)
    save_checkpoint(model, tmp_path / "full")
    save_checkpoint(model, tmp_path / "half", dtype=torch.float16)
    with safe_open(str(tmp_path / "half" / "model.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes["embed.W_E"] == "F16"
    assert all(d in ("F16", "BOOL") for d in dtypes.values())  # masks stay boolean
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < 0.6 * full
    loaded = load_checkpoint(tmp_path / "half")
    assert loaded.model.embed.W_E.dtype == torch.float32
    tokens = torch.randint(0, 50, (2, 16))
    assert torch.allclose(loaded(tokens), model(tokens), atol=1e-2)
    with torch.no_grad():
        model.model.embed.W_E[0, 0] = 1e6  # beyond float16
    with pytest.raises(ValueError, match="exceed the range of torch.float16"):
        save_checkpoint(model, tmp_path / "too-big", dtype=torch.float16)


def test_rotary_transformers_round_trip_and_old_configs_still_compare_equal(tmp_path):
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=1,
        d_model=16,
        n_heads=2,
        d_mlp=32,
        d_vocab=12,
        n_ctx=8,
        positional_embedding="rotary",
    )
    model = zoo.transformer(cfg)
    assert model.model.cfg.positional_embedding_type == "rotary"
    save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.config.positional_embedding == "rotary"
    tokens = torch.randint(0, 12, (2, 8))
    assert torch.allclose(loaded(tokens), model(tokens))
    # the default is not written, so configs saved before the field existed are unchanged
    standard = TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=8)
    assert "positional_embedding" not in standard.to_dict()
    with pytest.raises(ValueError, match="positional_embedding"):
        TransformerConfig(
            n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=8, positional_embedding="alibi"
        )
