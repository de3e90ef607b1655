"""Configs are checked before anything is built: types, sane ranges, and sizes consistent
with the weights file's header; unclear loading errors of the fault audit read as sentences."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import explorer
from explorer.models import zoo
from explorer.models.checkpoint import load_checkpoint, save_checkpoint, tensor_shapes
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig

CONFIGS = [
    TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_vocab=11, n_ctx=8),
    TransformerConfig(
        n_layers=2,
        d_model=16,
        n_heads=4,
        d_vocab=11,
        n_ctx=8,
        d_mlp=32,
        normalization="LN",
        d_vocab_out=7,
        d_head=3,
    ),
    MLPConfig(input_shape=(1, 6, 6), hidden=(5, 4), n_classes=3),
    MLPConfig(input_shape=(4,), hidden=(3,), n_classes=2),
    CNNConfig(input_shape=(2, 9, 9), channels=(3, 4), n_classes=5),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.family)
def test_weight_shapes_are_the_built_models_parameters(cfg):
    model = zoo.build(cfg)
    params = {k: tuple(v.shape) for k, v in model.model.named_parameters()}
    assert cfg.weight_shapes() == params


def _edit_config(folder, **changes):
    header = json.loads((folder / "config.json").read_text())
    header["config"].update(changes)
    (folder / "config.json").write_text(json.dumps(header))


@pytest.fixture
def saved_transformer(tmp_path):
    save_checkpoint(zoo.attention_only_transformer(n_layers=2, d_model=16, d_vocab=10, n_ctx=8),
                    tmp_path / "ck")  # fmt: skip
    return tmp_path / "ck"


def test_a_million_layers_fails_at_once_with_a_clear_message(saved_transformer):
    _edit_config(saved_transformer, n_layers=1_000_000)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_layers 1000000 is out of range: .*1\.\.512 layers"):
        explorer.load(saved_transformer)
    assert time.perf_counter() - start < 5  # it used to hang building a million blocks


def test_sizes_that_disagree_with_the_weights_header_fail_before_building(
    saved_transformer, monkeypatch
):
    built = []
    monkeypatch.setattr(zoo, "build", lambda *a, **k: built.append(a))
    _edit_config(saved_transformer, n_layers=200)
    with pytest.raises(ValueError, match="says n_layers 200, the weights hold 2 layers"):
        explorer.load(saved_transformer)
    _edit_config(saved_transformer, n_layers=2, d_vocab=12, vocab=None)
    with pytest.raises(
        ValueError, match=r"shapes differ: \['embed.W_E: config \(12, 16\) vs file \(10, 16\)"
    ):
        load_checkpoint(saved_transformer)
    assert built == []  # nothing was built


def test_the_header_is_read_without_loading_tensors(saved_transformer):
    shapes = tensor_shapes(saved_transformer / "model.safetensors")
    assert shapes["embed.W_E"] == (10, 16) and shapes["blocks.1.attn.W_Q"] == (4, 16, 4)
    (saved_transformer / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(ValueError, match="bad header length"):
        tensor_shapes(saved_transformer / "model.safetensors")


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"n_layers": "2"}, ValueError, "n_layers must be a positive integer, got '2'"),
        ({"d_model": -16}, ValueError, "d_model must be a positive integer, got -16"),
        ({"n_heads": 2.0}, ValueError, "n_heads must be a positive integer, got 2.0"),
        ({"d_vocab": 10**9}, ValueError, "d_vocab 1000000000 is out of range"),
        ({"n_ctx": None}, ValueError, "n_ctx must be a positive integer, got None"),
    ],
)
def test_config_types_and_ranges_are_checked(saved_transformer, changes, error, match):
    _edit_config(saved_transformer, **changes)
    with pytest.raises(error, match=match):
        explorer.load(saved_transformer)


def test_configs_in_code_are_checked_too():
    with pytest.raises(ValueError, match="hidden width 5000000 is out of range"):
        MLPConfig(hidden=(5_000_000,))
    with pytest.raises(TypeError, match="hidden must be a list of positive integers"):
        MLPConfig(hidden="64")
    with pytest.raises(ValueError, match="hidden must not be empty"):
        MLPConfig(hidden=())
    with pytest.raises(ValueError, match="input_shape is \\(channels, height, width\\)"):
        CNNConfig(input_shape=(28, 28))
    with pytest.raises(ValueError, match="describes .* parameters"):
        TransformerConfig(n_layers=512, d_model=65_536, n_heads=64, d_vocab=1000, n_ctx=8)
    assert MLPConfig(hidden=(np.int64(4),)).hidden == (4,)  # numpy ints are integers


def test_a_malformed_config_json_is_named_not_called_foreign(saved_transformer):
    (saved_transformer / "config.json").write_text('{"format": "explorer-checkpoint", ')
    with pytest.raises(ValueError, match=r"config.json' is not valid JSON .*damaged"):
        explorer.load(saved_transformer)


def test_a_string_version_is_a_clear_error(saved_transformer):
    header = json.loads((saved_transformer / "config.json").read_text())
    header["version"] = "2"
    (saved_transformer / "config.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="format version '2'; a version is a whole number"):
        explorer.load(saved_transformer)


def test_step_on_a_single_checkpoint_is_not_ignored(tmp_path):
    model = zoo.mnist_mlp(hidden=(4,))
    save_checkpoint(model, tmp_path / "plain")
    with pytest.raises(ValueError, match="step=3 selects a checkpoint of a training run"):
        explorer.load(tmp_path / "plain", step=3)
    save_checkpoint(model, tmp_path / "at5", meta={"step": 5})
    assert explorer.load(tmp_path / "at5", step=5).fingerprint() == model.fingerprint()
    with pytest.raises(ValueError, match=r"\(saved at step 5\)"):
        explorer.load(tmp_path / "at5", step=3)


def test_bool_tokens_are_refused_and_small_int_tokens_work():
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=8)
    with pytest.raises(TypeError, match="got a bool tensor"):
        model(torch.ones(2, 4, dtype=torch.bool))
    ids = torch.tensor([[1, 2, 3, 4]])
    for dtype in (torch.uint8, torch.int16, torch.int32):
        assert torch.equal(model(ids.to(dtype)), model(ids))
