"""Models explorer cannot convert open on the nnsight backend, with their parity, and say so.

A config transformer-lens cannot compute (a rotary scaling it lacks, Qwen2's per-layer
sliding window, a gate bias) opens on the nnsight backend (which runs the Hugging Face model
as it is) with a warning that says why, and ``backend="nnsight"`` opens it directly.
"""

from __future__ import annotations

import warnings

import hf_tiny
import pytest
import torch

import explorer

BASE = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}
ROPE = {"rope_theta": 10000.0, "factor": 2.0}
UNCONVERTIBLE = {
    "rope linear": (
        "LlamaConfig",
        {"rope_parameters": {"rope_type": "linear", **ROPE}},
        "rotary scaling 'linear'",
    ),
    "rope dynamic": (
        "LlamaConfig",
        {"rope_parameters": {"rope_type": "dynamic", **ROPE}},
        "rotary scaling 'dynamic'",
    ),
    "rope yarn": (
        "LlamaConfig",
        {"rope_parameters": {"rope_type": "yarn", "original_max_position_embeddings": 32, **ROPE}},
        "rotary scaling 'yarn'",
    ),
    "qwen2 sliding window": (
        "Qwen2Config",
        {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1},
        "use_sliding_window=True",
    ),
    "llama gate bias": ("LlamaConfig", {"mlp_bias": True}, "MLP gate has a bias"),
}


@pytest.fixture(scope="module")
def tok():
    return hf_tiny.tokenizer()


def _net(tok, config_name, **overrides):
    import transformers

    cfg = getattr(transformers, config_name)(
        **BASE, num_key_value_heads=2, vocab_size=len(tok), **overrides
    )
    return hf_tiny.from_config(cfg)


@pytest.mark.parametrize("variant", list(UNCONVERTIBLE))
def test_an_unconvertible_config_opens_on_nnsight_and_says_why(variant, tok):
    config_name, overrides, why = UNCONVERTIBLE[variant]
    net = _net(tok, config_name, **overrides)
    with pytest.warns(UserWarning) as caught:
        handle = explorer.load(net, tokenizer=tok)
    message = " ".join(str(w.message) for w in caught)
    assert "cannot be converted to transformer-lens" in message and why in message
    assert "Opened on the nnsight backend instead" in message
    assert "explorer.load(model)" not in message and "plain-module" not in message
    assert handle.family.endswith("via nnsight") and handle.parity.ok
    assert f"parity {handle.parity.max_abs_diff:.1e}" in repr(handle)
    ids = handle.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        assert torch.equal(handle.run_with_hooks(ids, []), net(ids).logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no warning
        direct = explorer.load(net, tokenizer=tok, backend="nnsight")
    assert direct.parity == handle.parity
    # the analyses run there
    from explorer.analysis import ablate, metrics

    metric = metrics.logit_diff(" Mary", " John", model=handle)
    result = ablate(handle, ids, units="head 1.0", metric=metric)
    assert torch.isfinite(result.after).all() and result.hooks == ("blocks.1.attn.hook_z",)


def test_the_nnsight_parity_catches_a_hook_read_before_a_rescaling(tok, monkeypatch):
    from torch import nn

    from explorer.models import _nnsight_paths

    net = _net(tok, "LlamaConfig", rope_parameters={"rope_type": "linear", **ROPE})
    handle = explorer.load(net, tokenizer=tok, backend="nnsight")
    assert handle.parity.ok and handle.parity.max_abs_diff < 1e-5

    class Rescale(nn.Module):  # as a norm after the attention (Gemma 2, OLMo 2) would
        def forward(self, x):
            return 1.5 * x

    for block in net.model.layers:
        block.self_attn.o_proj = nn.Sequential(block.self_attn.o_proj, Rescale())
    # hook_attn_out read before the rescaling: what the residual adds is something else
    before = _nnsight_paths._Paths(
        **{**vars(_nnsight_paths._LLAMA), "o_proj": "self_attn.o_proj.0"}
    )
    monkeypatch.setitem(_nnsight_paths.PATHS, "LlamaForCausalLM", before)
    misread = explorer.load(net, tokenizer=tok, backend="nnsight")
    assert not misread.parity.ok and "MISMATCH" in repr(misread)
    with pytest.raises(ValueError, match="residual stream does not add up at the hook sites"):
        explorer.load(net, tokenizer=tok)


@pytest.mark.parametrize(
    ("config_name", "family"), [("Gemma2Config", "Gemma 2"), ("Gemma3TextConfig", "Gemma 3")]
)
def test_gemma_2_and_3_convert_by_architecture(config_name, family, tok):
    """transformer-lens knows Gemma 2/3 by Hub name only; explorer reads the config."""
    net = _net(tok, config_name, head_dim=8, sliding_window=4, query_pre_attn_scalar=8)
    net.config.name_or_path = "my-finetune"  # no family name to match
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handle = explorer.load(net, tokenizer=tok)
    assert handle.family == family and handle.parity.max_abs_diff < 1e-4
    assert handle.model.cfg.use_normalization_before_and_after and handle.prepend_bos
    ids = handle.to_tokens(hf_tiny.IOI)  # 15 tokens: the 4-token window matters
    with torch.no_grad():
        assert (handle(ids) - net(ids).logits).abs().max() < 1e-4
        net.config.sliding_window = 64
        wide = net(ids).logits
        net.config.sliding_window = 4
    assert (wide - net(ids).logits).abs().max() > 1e-3


# what each sampled architecture does, and the reason named where it is not converted
# (python scripts/hf_architectures.py prints the table for all of them)
SAMPLE_OUTCOMES = {
    "gpt_neo": ("refused", "Error(s) in loading state_dict for HookedTransformer"),
    # transformer-lens 3.9 reads a field transformers 5 moved; Phi's layout is mapped
    "phi": ("nnsight", "'PhiConfig' object has no attribute 'partial_rotary_factor'"),
    "stablelm": ("nnsight", "StableLmForCausalLM is not currently supported"),  # Llama's layout
    "olmo2": ("refused", "Olmo2ForCausalLM is not currently supported"),
    "falcon": ("refused", "FalconForCausalLM is not currently supported"),
    "cohere": ("refused", "CohereForCausalLM is not currently supported"),
    "codegen": ("refused", "CodeGenForCausalLM is not currently supported"),
}


@pytest.mark.parametrize("model_type", hf_tiny.CAUSAL_LM_SAMPLE)
def test_each_architecture_converts_or_opens_on_nnsight_or_says_why(model_type, tok):
    net = hf_tiny.tiny_causal_lm(model_type, tok)
    arch = type(net).__name__
    outcome, said, result = hf_tiny.open_outcome(net, tok)
    expected, reason = SAMPLE_OUTCOMES.get(model_type, ("converted", ""))
    assert outcome == expected, said or result
    text = said if outcome != "refused" else str(result)
    assert "explorer.load(model)" not in text  # no advice that fails the same way
    if outcome == "converted":
        assert result.parity.ok and result.parity.max_abs_diff < 1e-4
        ids = result.to_tokens(hf_tiny.IOI)
        with torch.no_grad():
            assert (result(ids) - net(ids).logits).abs().max() < 1e-4
    elif outcome == "nnsight":
        assert result.parity.ok and f"{arch} cannot be converted to transformer-lens: " in text
        assert reason in text and "Opened on the nnsight backend instead" in text
        from explorer.analysis import ablate, metrics

        ids = result.to_tokens(hf_tiny.IOI)
        metric = metrics.logit_diff(" Mary", " John", model=result)
        assert torch.isfinite(ablate(result, ids, units="head 1.0", metric=metric).after).all()
        with torch.no_grad():
            assert torch.equal(result.run_with_hooks(ids, []), net(ids).logits)
        with pytest.raises(ValueError, match="has no weight converter here"):
            result.weight("W_O", 0)
    else:
        assert isinstance(result, ValueError)
        assert f"{arch} is not converted to transformer-lens: " in text and reason in text
        assert "cannot open it either: " in text  # and why the plain-module route fails
