"""The handle protocol (issue 24): one ``Handle`` that every backend implements, each in its
own module, with no fake attributes; weights and sweeps asked of the handle."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import metrics
from explorer.analysis.interventions import run_interventions
from explorer.models import (
    WEIGHT_NAMES,
    Handle,
    LightHandle,
    ModelHandle,
    ModuleHandle,
    TransformerConfig,
    builders,
    zoo,
)
from explorer.models._handle_base import HandleBase
from explorer.models._nnsight import NNsightHandle
from explorer.models.sweeps import SweepPlan
from explorer.training import last_position_logits

BACKENDS = {
    ModelHandle: "explorer.models.handle",
    LightHandle: "explorer.models.light_handle",
    ModuleHandle: "explorer.models.module_handle",
    NNsightHandle: "explorer.models._nnsight",
}
FIELDS = sorted(Handle.__annotations__)  # set by each handle's __init__
MEMBERS = sorted(n for n in vars(Handle) if not n.startswith("_") or n == "__call__")


@pytest.fixture(scope="module")
def nnsight_handle():
    tok = hf_tiny.tokenizer()
    return explorer.load(hf_tiny.model("llama", tok), tokenizer=tok, backend="nnsight")


def _cfg(**kw):
    return TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=12, n_ctx=8, **kw)


def test_each_backend_lives_in_its_own_module_and_implements_every_member():
    assert len(set(BACKENDS.values())) == len(BACKENDS)
    for cls, module in BACKENDS.items():
        assert cls.__module__ == module
        missing = [n for n in MEMBERS if not hasattr(cls, n)]
        assert not missing, (cls.__name__, missing)
        for name in MEMBERS:  # every method is an implementation, not the protocol's stub
            owner = next((c for c in cls.__mro__ if name in vars(c)), None)
            assert owner is not Handle, (cls.__name__, name)


def test_analysis_and_the_layers_above_ask_only_what_the_protocol_lists():
    """Every ``model.x`` / ``handle.x`` read outside explorer/models/ is a protocol member."""
    root = Path(explorer.__file__).parent
    asked = set()
    for package in ("analysis", "hypotheses", "training", "studies", "views"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    if node.value.id in ("model", "handle"):
                        asked.add(node.attr)
    assert {"run_sweep", "unit_weights", "weight", "cache_pass"} <= asked
    assert sorted(asked - set(MEMBERS) - set(FIELDS)) == []


def test_every_backend_is_a_handle(nnsight_handle):
    light = builders.transformer(_cfg(), light=True)
    handles = [zoo.attention_only_transformer(n_layers=1), light, zoo.mnist_mlp(hidden=(4,))]
    handles.append(nnsight_handle)
    assert [type(h) for h in handles] == [ModelHandle, LightHandle, ModuleHandle, NNsightHandle]
    assert all(hasattr(h, field) for h in handles for field in FIELDS)
    assert all(isinstance(h, Handle) and isinstance(h, HandleBase) for h in handles)
    assert explorer.load(nnsight_handle) is nnsight_handle  # any backend's handle loads as is


def test_nnsight_fakes_no_module(nnsight_handle):
    """The nnsight backend is no ``ModelHandle`` and its torch module has no hook points:
    its hook sites are its own table, its config its own field."""
    assert not isinstance(nnsight_handle, ModelHandle)
    module = nnsight_handle.as_torch_module()
    assert not hasattr(module, "hook_dict") and not hasattr(module, "cfg")
    assert "blocks.0.attn.hook_z" in nnsight_handle.hook_names
    assert nnsight_handle.n_layers == nnsight_handle.cfg.n_layers
    tokens = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(nnsight_handle(tokens), module(tokens))


def test_model_handle_picks_the_backend_of_the_module_it_wraps():
    light = builders.transformer(_cfg(), light=True)
    again = ModelHandle(light.as_torch_module(), kind="tokens", name="again")
    assert type(again) is LightHandle and again.runs_from_layer
    plain = zoo.mnist_mlp(hidden=(4,))
    assert type(plain.copy()) is ModuleHandle and type(light.copy()) is LightHandle


def test_neutral_weight_names_read_what_transformer_lens_names_do(nnsight_handle):
    for handle in (builders.transformer(_cfg()), builders.transformer(_cfg(), light=True)):
        for neutral, tl in WEIGHT_NAMES.items():
            model_wide = neutral in ("embed", "pos_embed", "unembed", "unembed_bias")
            layer = None if model_wide else 1
            a, b = handle.weight(neutral, layer), handle.weight(tl, layer)
            assert a.shape == b.shape and a.data_ptr() == b.data_ptr(), neutral
    w = nnsight_handle.weight("query", 0)
    assert torch.equal(w, nnsight_handle.weight("W_Q", 0))
    with pytest.raises(ValueError, match="unknown weight 'W_X': choose one of embed, pos_embed"):
        nnsight_handle.weight("W_X", 0)
    with pytest.raises(ValueError, match="converted copy, not written back"):
        nnsight_handle.set_weight("query", w, 0)


def test_set_weight_writes_in_place_and_checks_the_shape():
    m = builders.transformer(_cfg())
    before = m.weights_version()
    m.set_weight("mlp_out_bias", torch.full((16,), 0.5), 1)
    assert m.weights_version() > before and bool((m.weight("b_out", 1) == 0.5).all())
    with pytest.raises(ValueError, match=r"query head 1 has shape \[16, 8\], got \[8, 8\]"):
        m.set_weight("query", torch.zeros(8, 8), 0, head=1)


def test_unit_weights_come_from_the_handle():
    m = zoo.mnist_mlp(hidden=(6, 5))
    io = m.layer_modules(0)
    assert torch.equal(m.unit_weights(0, 2, "incoming"), io.incoming.weight[2])
    assert torch.equal(m.unit_weights(0, 2, "outgoing"), io.outgoing.weight[:, 2])
    cnn = zoo.mnist_cnn(channels=(3, 4))
    last = cnn.layer_modules(1)  # a conv flattened into the output Linear
    per = last.outgoing.weight.reshape(10, 4, -1)[:, 1].sum(-1)
    assert torch.equal(cnn.unit_weights(1, 1, "outgoing"), per)
    m.set_unit_weights(1, 4, incoming=torch.ones(6), bias=-1.0, outgoing=torch.arange(10.0))
    assert m.unit_weights(1, 4, "incoming").tolist() == [1.0] * 6
    assert m.layer_modules(1).incoming.bias[4] == -1.0
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        m.unit_weights(0, 1, "sideways")
    with pytest.raises(ValueError, match="is a transformer: read its weights with weight"):
        zoo.attention_only_transformer(n_layers=1).unit_weights(0, 1, "incoming")


def test_run_sweep_takes_a_plan_and_stacks_or_fans_out():
    m = builders.transformer(_cfg(seed=3))
    tokens = torch.randint(0, 12, (3, 6), generator=torch.Generator().manual_seed(0))
    metric = metrics.logit_diff(1, 2)
    hooks = ["blocks.1.mlp.hook_post"]
    _, clean = m.cache_pass(tokens, names=hooks + m.sweep_bases(hooks))
    sources = {hooks[0]: torch.zeros_like(clean[hooks[0]])}
    sites = [(hooks[0], (slice(None), slice(None), n)) for n in range(5)]
    batch = tokens.shape[0]

    def reduce(logits, copies):
        return metrics.evaluate_copies(metric, logits, copies, batch)

    fanned = m.run_sweep(tokens, SweepPlan([[s] for s in sites], sources, reduce, clean=clean))
    stacked = m.run_sweep(tokens, SweepPlan([[s] for s in sites], sources, reduce))
    loop = run_interventions(
        m, tokens, interventions=[[s] for s in sites], sources=sources, metric=metric
    )
    torch.testing.assert_close(fanned, stacked, atol=1e-5, rtol=0)
    assert torch.equal(stacked, loop)
    with pytest.raises(ValueError, match="single-site interventions"):
        m.run_sweep(tokens, SweepPlan([sites[:2]], sources, reduce, clean=clean))


def test_shape_only_costs_one_element():
    act = torch.ones(4, 3, 2)
    stand_in = zoo.mnist_mlp(hidden=(4,)).shape_only(act)
    assert stand_in.shape == act.shape and stand_in.untyped_storage().nbytes() == 4
    assert inspect.getmodule(HandleBase.shape_only).__name__ == "explorer.models._transfer"


def test_training_logits_of_an_nnsight_handle_take_the_full_pass():
    """The faked ``hook_dict`` sent nnsight handles down the transformer-lens shortcut,
    where its ``None`` hook points failed; a handle with no fake attributes runs a pass."""
    tok = hf_tiny.tokenizer()
    nns = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok, backend="nnsight")
    tokens = torch.tensor([[5, 6, 7], [8, 9, 10]])
    assert torch.equal(last_position_logits(nns, tokens), nns(tokens)[:, -1])
