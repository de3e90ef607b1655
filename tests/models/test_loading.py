from __future__ import annotations

import pytest
import torch
from torch import nn

import explorer
from explorer.models import CNNConfig, MLPConfig, ModelHandle, TransformerConfig, zoo


def test_load_from_config_builds_seeded_transformer():
    cfg = TransformerConfig(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16, seed=5)
    a, b = explorer.load(cfg), explorer.load(cfg)
    assert a.kind == "tokens" and a.n_layers == 2 and a.n_heads == 4 and a.d_mlp is None
    assert a.fingerprint() == b.fingerprint()
    assert (
        explorer.load(TransformerConfig(**{**cfg.to_dict(), "seed": 6})).fingerprint()
        != a.fingerprint()
    )
    assert "blocks.1.attn.hook_pattern" in a.hook_names


def test_load_plain_module_adds_hook_points_in_tl_vocabulary():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    handle = explorer.load(net, input_shape=(4,))
    assert handle.kind == "images"
    assert handle.layer_widths == (5,) and handle.n_layers == 1 and handle.n_heads is None
    x = torch.randn(7, 4)
    out, cache = handle.cache_pass(x, names=["blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"])
    pre = net[1](x)
    # independent computation, and the in-place ReLU must not overwrite the cached pre-activation
    assert torch.allclose(cache["blocks.0.mlp.hook_pre"], pre, atol=1e-6)
    assert torch.allclose(cache["blocks.0.mlp.hook_post"], pre.relu(), atol=1e-6)
    assert (cache["blocks.0.mlp.hook_pre"] < 0).any()
    assert torch.allclose(out, net[3](pre.relu()), atol=1e-6)


def test_run_with_hooks_changes_output_and_removes_hooks(mnist_mlp):
    x = torch.rand(3, 1, 28, 28)
    base = mnist_mlp(x)
    zeroed = mnist_mlp.run_with_hooks(x, [("blocks.1.mlp.hook_post", lambda a, hook: a * 0)])
    bias = mnist_mlp.model.module[-1].bias
    assert torch.allclose(zeroed, bias.expand_as(zeroed))
    assert torch.allclose(mnist_mlp(x), base)  # hooks gone afterwards


def test_hooks_removed_after_an_error(mnist_mlp):
    def boom(act, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        mnist_mlp.run_with_hooks(torch.rand(1, 1, 28, 28), [("blocks.0.mlp.hook_post", boom)])
    mnist_mlp(torch.rand(1, 1, 28, 28))  # still usable


def test_cnn_channels_are_units(mnist_cnn):
    assert mnist_cnn.layer_widths == (4, 6)
    _, cache = mnist_cnn.cache_pass(torch.rand(2, 1, 28, 28), names="blocks.1.mlp.hook_post")
    assert cache["blocks.1.mlp.hook_post"].shape == (2, 6, 14, 14)


def test_str_tokens_use_vocab():
    m = zoo.modular_addition_transformer(p=7)
    assert m.to_str_tokens(torch.tensor([3, 4, 7])) == ["3", "4", "="]


def test_copy_is_independent(mnist_cnn):
    twin = mnist_cnn.copy()
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(twin(x), mnist_cnn(x))
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    _, cache = twin.cache_pass(x, names=["blocks.0.mlp.hook_post"])
    assert not torch.allclose(twin(x), mnist_cnn(x))
    assert cache  # the copy's own hook points fire


@pytest.mark.parametrize("cfg", [MLPConfig(hidden=(8,)), CNNConfig(channels=(3,))])
def test_load_configs_for_image_models(cfg):
    handle = explorer.load(cfg)
    assert handle.kind == "images" and handle.input_shape == (1, 28, 28)
    assert handle(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_source_type():
    with pytest.raises(TypeError, match="cannot load a int"):
        explorer.load(3)


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="no such file"):
        explorer.load("./does-not-exist")


def test_unknown_hub_name_is_refused_clearly(monkeypatch):
    from explorer.models import hf

    monkeypatch.setattr(hf, "offline", lambda: False)  # online: the name itself is refused
    with pytest.raises(ValueError, match="neither a path"):
        explorer.load("not-a-real-model-name-xyz")


def test_handle_requires_hooked_module():
    with pytest.raises(TypeError, match="HookedRootModule"):
        ModelHandle(nn.Linear(2, 2), kind="images")


def test_module_without_activation_is_refused():
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x).square()

    with pytest.raises(ValueError, match="found no hidden layer in Linear"):
        explorer.load(Linear())
