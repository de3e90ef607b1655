"""A converted Hugging Face model is the same model, judged in its own dtype, or it is refused.

Biases a Llama-style config switches on are converted; a conversion whose logits differ by
more than its dtype's tolerance is refused with the figure unless ``allow_mismatch=True``;
``dtype=`` works on both backends and a folder opens in the dtype it was saved in.
"""

from __future__ import annotations

import warnings

import hf_tiny
import pytest
import torch

import explorer
from explorer.models import _hf_convert


@pytest.fixture(scope="module")
def tok():
    return hf_tiny.tokenizer()


def _llama(tok, **overrides):
    import transformers

    cfg = transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        vocab_size=len(tok),
        **overrides,
    )
    return hf_tiny.from_config(cfg)


def test_llama_attention_biases_are_converted(tok):
    net = _llama(tok, attention_bias=True)
    assert net.model.layers[0].self_attn.k_proj.bias.abs().max() > 0.1  # real biases
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no MISMATCH warning either
        handle = explorer.load(net, tokenizer=tok)
    assert handle.family == "Llama" and handle.parity.ok and handle.parity.max_abs_diff < 1e-4
    ids = handle.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        assert (handle(ids) - net(ids).logits).abs().max() < 1e-4


def test_a_conversion_that_fails_parity_is_refused_with_its_figure(tok, monkeypatch):
    real = _hf_convert.converter

    def off_by_a_weight(arch):
        def convert(source, cfg):
            state = real(arch)(source, cfg)
            state["blocks.1.mlp.W_out"] = state["blocks.1.mlp.W_out"] * 0.5
            return state

        return convert

    monkeypatch.setattr(_hf_convert, "converter", off_by_a_weight)
    net = _llama(tok)
    with pytest.raises(ValueError) as err:
        explorer.load(net, tokenizer=tok)
    message = str(err.value)
    assert "the converted LlamaForCausalLM differs from the Hugging Face model by up to" in message
    assert "the tolerance for float32 is 0.0001" in message
    assert "backend='nnsight'" in message and "allow_mismatch=True" in message
    with pytest.warns(UserWarning, match="differs from the Hugging Face model"):
        handle = explorer.load(net, tokenizer=tok, allow_mismatch=True)
    assert not handle.parity.ok and "MISMATCH" in repr(handle)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["gemma", "llama", "gpt2"])
def test_parity_is_judged_in_the_models_own_dtype(family, dtype, tok):
    net = hf_tiny.model(family, tok).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle = explorer.load(net, tokenizer=tok)
    parity = handle.parity
    assert parity.ok and parity.dtype == str(dtype).removeprefix("torch.")
    assert handle.dtype == dtype  # converted in the model's dtype, not a float32 copy
    assert parity.tolerance >= _hf_convert.PARITY_TOLERANCE[parity.dtype]  # x max(1, |logit|)
    ids = handle.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        theirs = net(ids).logits.float()
        assert (handle(ids).float() - theirs).abs().max() <= parity.tolerance


@pytest.mark.parametrize("backend", ["transformer-lens", "nnsight"])
def test_dtype_works_on_both_backends_and_folders_keep_their_saved_dtype(backend, tok, tmp_path):
    folder = tmp_path / "llama-bf16"
    hf_tiny.model("llama", tok).to(torch.bfloat16).save_pretrained(folder)
    tok.save_pretrained(folder)
    saved = explorer.load(folder, backend=backend)
    assert saved.dtype == torch.bfloat16
    told = explorer.load(folder, backend=backend, dtype=torch.float32)
    assert told.dtype == torch.float32
    halved = explorer.load(folder, backend=backend, dtype="float16")
    assert halved.dtype == torch.float16
    ids = told.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        a, b = told.run_with_hooks(ids, []), saved.run_with_hooks(ids, []).float()
    assert (a - b).abs().max() < 0.1  # the same weights, read at two precisions


def test_bad_dtype_and_options_for_other_sources_are_refused(tok):
    net = hf_tiny.model("gpt2", tok)
    with pytest.raises(ValueError, match=r"dtype='int8': choose a floating dtype"):
        explorer.load(net, tokenizer=tok, dtype="int8")
    toy = explorer.zoo.attention_only_transformer(d_vocab=20, n_ctx=16)
    with pytest.raises(ValueError, match="dtype apply to Hugging Face models and folders"):
        explorer.load(toy.model, dtype=torch.float16)
