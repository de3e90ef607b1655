"""Hugging Face models open offline, from a folder or an object, with logit parity asserted.

Every family's tiny random-weight model is written by ``save_pretrained`` into a temporary
folder (``hf_tiny``); nothing touches the Hub (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import socket
import time
import warnings

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import metrics


@pytest.fixture(scope="module")
def tok():
    return hf_tiny.tokenizer()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tok):
    root = tmp_path_factory.mktemp("hf")
    return {f: hf_tiny.write_family(f, root / f, tok) for f in hf_tiny.FAMILIES}


@pytest.fixture(scope="module")
def handles(folders):
    return {f: explorer.load(folder) for f, folder in folders.items()}


FAMILY_NAMES = {
    "gpt2": "GPT-2",
    "neox": "GPT-NeoX",
    "llama": "Llama",
    "qwen2": "Qwen2",
    "gemma": "Gemma",
    "mistral": "Mistral",
    "bert": "BERT",
}


@pytest.mark.parametrize("family", hf_tiny.FAMILIES)
def test_every_family_loads_from_a_folder_with_logit_parity(family, folders, handles, tok):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    handle = handles[family]
    auto = AutoModelForMaskedLM if family == "bert" else AutoModelForCausalLM
    reference = auto.from_pretrained(folders[family], local_files_only=True).eval()
    tokens = handle.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        theirs = reference(input_ids=tokens, attention_mask=torch.ones_like(tokens)).logits
        ours = handle(tokens)
    # logits of order one (weights drawn with std 0.2), so 1e-4 would catch a wrong conversion
    assert theirs.abs().max() > 0.5
    assert (ours - theirs).abs().max() < 1e-4
    assert handle.parity.max_abs_diff < 1e-4 and handle.parity.dtype == "float32"
    assert handle.family == FAMILY_NAMES[family]
    assert f"{FAMILY_NAMES[family]}, parity" in repr(handle)
    assert (handle.n_layers, handle.n_heads, handle.d_model, handle.d_vocab) == (2, 4, 32, len(tok))


def test_conversion_mistakes_would_show_in_the_parity(folders):
    """Gemma scales embeddings by sqrt(d_model) and its RMSNorm multiplies by (1 + w): a
    conversion that skipped them would be far off, so the parity check is not vacuous."""
    from explorer.models import hf

    gemma = hf_tiny.model("gemma")
    handle = explorer.load(gemma)
    assert handle.parity.max_abs_diff < 1e-4
    with torch.no_grad():
        handle.model.embed.W_E.div_(32**0.5)  # undo the embedding scale
    with pytest.warns(UserWarning, match="differs from the Hugging Face model"):
        broken = hf.check_parity(gemma, handle.model, encoder=False)
    assert broken.max_abs_diff > 1e-2 and not broken.ok and "MISMATCH" in repr(broken)
    assert handle.parity.ok and "MISMATCH" not in repr(handle)


def test_grouped_query_attention_hooks_have_one_entry_per_query_head(handles):
    for family in ("llama", "gemma", "mistral", "qwen2"):
        handle = handles[family]
        name = handle.hook_name("v", 0)
        _, cache = handle.cache_pass(hf_tiny.IOI, names=[name, handle.hook_name("k", 1)])
        assert cache[name].shape[2] == handle.n_heads == 4


def test_partial_rotary_and_parallel_residual_are_read_from_the_config(handles):
    cfg = handles["neox"].model.cfg
    assert cfg.rotary_dim == 2 and cfg.d_head == 8  # rotary_pct 0.25
    assert cfg.parallel_attn_mlp
    assert handles["gemma"].model.cfg.n_key_value_heads == 1


def test_load_a_model_object_with_its_tokenizer(tok):
    from transformers import GPT2LMHeadModel

    gpt2 = hf_tiny.model("gpt2", tok)
    assert isinstance(gpt2, GPT2LMHeadModel)
    handle = explorer.load(gpt2, tokenizer=tok, name="tiny-gpt2")
    assert handle.name == "tiny-gpt2" and handle.parity.max_abs_diff < 1e-4
    assert handle.to_str_tokens(handle.to_tokens(" Mary and John")[0]) == [
        "<|endoftext|>",
        " Mary",
        " and",
        " John",
    ]
    with torch.no_grad():
        ids = handle.to_tokens(hf_tiny.IOI)
        assert torch.allclose(handle(ids), gpt2(ids).logits, atol=1e-4)


def test_a_model_object_read_from_a_folder_finds_its_tokenizer(folders):
    from transformers import AutoModelForCausalLM

    llama = AutoModelForCausalLM.from_pretrained(folders["llama"], local_files_only=True)
    handle = explorer.load(llama)
    assert handle.tokenizer is not None and handle.name == "llama"
    assert handle.to_single_token(" Mary") != handle.to_single_token(" John")


def test_local_path_with_a_hub_name_reads_the_folder(folders):
    handle = explorer.load("gpt2", local_path=folders["gpt2"])
    assert handle.family == "GPT-2" and handle.name == "gpt2"
    with pytest.raises(FileNotFoundError, match="config.json"):
        explorer.load("gpt2", local_path=folders["gpt2"] / "missing")


def test_text_prompts_and_token_strings(handles):
    gpt2, llama, bert = handles["gpt2"], handles["llama"], handles["bert"]
    tokens = gpt2.check_inputs(hf_tiny.IOI)
    assert tokens.shape == (1, 15) and int(tokens[0, 0]) == gpt2.tokenizer.bos_token_id
    assert gpt2.to_str_tokens(tokens[0])[1:4] == ["When", " Mary", " and"]
    assert torch.equal(gpt2.check_inputs([hf_tiny.IOI, hf_tiny.IOI]), tokens.repeat(2, 1))
    assert not (bert.to_tokens("When Mary") == bert.tokenizer.bos_token_id).any()  # no BOS
    for family in ("neox", "qwen2"):  # trained without BOS (transformer-lens's default too)
        assert handles[family].to_tokens("When Mary")[0, 0] != gpt2.tokenizer.bos_token_id
    assert handles["mistral"].to_tokens("When Mary")[0, 0] == gpt2.tokenizer.bos_token_id
    padded = llama.to_tokens(["When Mary", "When Mary and John"])  # tests/models/test_padding.py
    assert llama.attention_mask(padded).tolist() == [[0, 0, 1, 1, 1], [1] * 5]
    with pytest.raises(
        ValueError, match=r"is 3 tokens for llama, not one: .*\[. Mary., .la., .nd.\]"
    ):
        llama.to_single_token(" Maryland")
    with pytest.raises(ValueError, match="no tokenizer"):
        explorer.zoo.attention_only_transformer(d_vocab=20, n_ctx=16).to_tokens("hi")


def test_logit_diff_takes_token_strings(handles):
    model = handles["qwen2"]
    prompts = [hf_tiny.IOI, hf_tiny.IOI.replace("Mary", "John", 1).replace("John", "Mary", 2)]
    tokens = model.to_tokens(prompts)
    logits = model(tokens)
    mary, john = model.to_single_token(" Mary"), model.to_single_token(" John")
    expected = logits[:, -1, mary] - logits[:, -1, john]
    same_for_all = metrics.logit_diff(" Mary", " John", model=model)(logits)
    per_example = metrics.logit_diff([" Mary", " John"], [" John", " Mary"], model=model)(logits)
    assert torch.allclose(same_for_all, expected)
    assert torch.allclose(per_example, expected * torch.tensor([1.0, -1.0]))
    assert torch.allclose(metrics.logit_diff(mary, john)(logits), expected)
    acc = metrics.accuracy(" Mary", model=model)(logits)
    assert acc.tolist() == (logits[:, -1].argmax(-1) == mary).float().tolist()
    with pytest.raises(ValueError, match="pass model="):
        metrics.logit_diff(" Mary", " John")


def test_bare_name_offline_fails_at_once_and_says_how_to_pass_a_folder(monkeypatch, handles):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(OSError, match="Pass a local folder") as err:
        explorer.load("gpt2")
    assert time.perf_counter() - start < 0.5  # no retry loop, not even an import
    assert "save_pretrained" in str(err.value) and "explorer.load('/path/to/gpt2')" in str(
        err.value
    )


def test_bare_name_without_a_route_to_the_hub_fails_at_once(monkeypatch, handles):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(OSError, match="not reachable"):
        explorer.load("EleutherAI/pythia-70m")


@pytest.mark.parametrize("config_name", ["OPTConfig", "GPTJConfig", "Qwen3Config"])
def test_other_decoders_transformer_lens_knows_convert_with_parity(config_name, tok):
    import transformers

    sizes = {
        "OPTConfig": {"num_hidden_layers": 2, "ffn_dim": 64, "word_embed_proj_dim": 32},
        "GPTJConfig": {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 64, "rotary_dim": 4},
        "Qwen3Config": {"num_hidden_layers": 2, "num_key_value_heads": 2, "head_dim": 8},
    }[config_name]
    common = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
    if config_name == "GPTJConfig":
        common = {}
    cfg = getattr(transformers, config_name)(
        vocab_size=len(tok), max_position_embeddings=64, **common, **sizes
    )
    net = hf_tiny.from_config(cfg)
    handle = explorer.load(net, tokenizer=tok)
    arch = type(net).__name__
    assert handle.family == f"{arch} via transformer-lens" and handle.parity.max_abs_diff < 1e-4
    ids = handle.to_tokens(hf_tiny.IOI)
    with torch.no_grad():
        assert (handle(ids) - net(ids).logits).abs().max() < 1e-4
    assert handle.n_layers == 2 and handle.n_heads == 4


def test_unknown_architecture_falls_back_with_a_statement(tok):
    from transformers import FalconConfig, FalconForCausalLM

    falcon = hf_tiny.from_config(
        FalconConfig(
            num_hidden_layers=2, hidden_size=32, num_attention_heads=4, vocab_size=len(tok)
        )
    )
    assert isinstance(falcon, FalconForCausalLM)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            handle = explorer.load(falcon)
        except ValueError as err:  # the plain route may find no hidden layer: it says so
            message = str(err)
            assert "The plain-module route (explorer.load(nn.Module)) cannot open it" in message
        else:
            message = " ".join(str(w.message) for w in caught)
            assert handle.kind != "tokens" and handle.family is None
            assert "plain module: FalconForCausalLM" in repr(handle)
            assert "token ids, text prompts, attention heads and logit parity are not" in message
    assert "FalconForCausalLM is not converted to transformer-lens" in message
    assert "FalconForCausalLM is not currently supported" in message  # why: TL's own word
    assert "GPT-2 (GPT2LMHeadModel)" in message and "BERT (BertForMaskedLM)" in message


def test_the_readme_hugging_face_example_runs(folders):
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Hugging Face models, offline", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'folder = "models/gpt2"' in code
    code = code.replace('"models/gpt2"', repr(str(folders["gpt2"])))
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)
    model, printed = ns["model"], out.getvalue().splitlines()
    assert (
        printed[0].startswith("ModelHandle('gpt2', tokens, n_layers=2")
        and "GPT-2, parity" in printed[0]
    )
    assert model.family == "GPT-2" and model.parity.max_abs_diff < 1e-4
    logits = model(model.to_tokens(ns["prompt"]))[0, -1]
    mary, john = model.to_single_token(" Mary"), model.to_single_token(" John")
    assert float(printed[1]) == pytest.approx(
        float((logits[mary] - logits[john]).detach()), abs=1e-5
    )


VARIANTS = {
    "llama3 rope scaling": (
        "LlamaConfig",
        {
            "num_key_value_heads": 2,
            "rope_parameters": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
                "rope_theta": 500000.0,
            },
        },
    ),
    "mistral sliding window 4": ("MistralConfig", {"num_key_value_heads": 2, "sliding_window": 4}),
    "qwen2 tied embeddings": (
        "Qwen2Config",
        {"num_key_value_heads": 2, "tie_word_embeddings": True},
    ),
    "neox sequential residual": (
        "GPTNeoXConfig",
        {"rotary_pct": 0.5, "use_parallel_residual": False},
    ),
}


def _variant(config_name: str, tok, **overrides):
    import transformers

    cfg = getattr(transformers, config_name)(
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        vocab_size=len(tok),
        **overrides,
    )
    return hf_tiny.from_config(cfg)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_config_variants_keep_parity(variant, tok):
    config_name, overrides = VARIANTS[variant]
    net = _variant(config_name, tok, **overrides)
    handle = explorer.load(net, tokenizer=tok)
    assert handle.parity.max_abs_diff < 1e-4
    if variant.startswith("mistral"):  # the window matters on the 12-token parity input
        full = _variant(config_name, tok, **{**overrides, "sliding_window": None})
        ids = handle.to_tokens(hf_tiny.IOI)
        with torch.no_grad():
            assert (full(ids).logits - net(ids).logits).abs().max() > 1e-3


def test_pickled_weights_are_refused(tmp_path, tok):
    folder = hf_tiny.write_family("gpt2", tmp_path / "gpt2", tok)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not read")  # never unpickled
    with pytest.raises(ValueError, match=r"only pytorch_model.bin: pickles.*safetensors only"):
        explorer.load(folder)


def test_a_custom_transformers_model_opens_as_a_plain_module_with_a_statement():
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel

    class TinyConfig(PretrainedConfig):
        model_type = "explorer-tiny-mlp"

    class TinyMLPLM(PreTrainedModel):
        config_class = TinyConfig

        def __init__(self, config):
            super().__init__(config)
            self.embed, self.up = nn.Embedding(50, 16), nn.Linear(16, 32)
            self.act, self.down = nn.ReLU(), nn.Linear(32, 50)
            self.post_init()

        def forward(self, input_ids):
            return self.down(self.act(self.up(self.embed(input_ids))))

    with pytest.warns(UserWarning, match="TinyMLPLM is not converted to transformer-lens") as w:
        handle = explorer.load(TinyMLPLM(TinyConfig()))
    message = " ".join(str(x.message) for x in w)
    assert "does not recognize this architecture" in message  # why, in transformers' words
    assert "token ids, text prompts, attention heads and logit parity are not available" in message
    assert handle.layer_widths == (32,) and handle.family is None
    assert "plain module: TinyMLPLM is not converted" in repr(handle)


def test_a_tokenizer_that_adds_bos_itself_gets_no_second_one(tok, handles):
    import copy

    from tokenizers import processors

    with_bos = copy.deepcopy(tok)
    bos = with_bos.bos_token_id
    with_bos.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)]
    )
    assert with_bos("When Mary")["input_ids"][0] == bos  # the tokenizer adds it (as Llama's does)
    llama = explorer.load(hf_tiny.model("llama", tok), tokenizer=with_bos)
    ids = llama.to_tokens("When Mary")
    assert ids[0, 0] == bos and ids[0, 1] != bos
    assert torch.equal(ids, handles["llama"].to_tokens("When Mary"))
    twin = llama.copy()
    assert twin.tokenizer is with_bos and twin.parity == llama.parity and twin.prepend_bos
    assert torch.equal(twin.to_tokens("When Mary"), ids)


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama", "bert"])
def test_a_tokenizer_json_without_its_config_keeps_the_vocabulary(
    family, folders, handles, tmp_path
):
    import shutil

    bare = tmp_path / family
    shutil.copytree(folders[family], bare)
    (bare / "tokenizer_config.json").unlink()
    assert (bare / "tokenizer.json").is_file()
    handle, full = explorer.load(bare), handles[family]
    tokenizer = handle.tokenizer
    assert len(tokenizer) == len(full.tokenizer) == handle.d_vocab  # nothing added after it
    for role in ("bos", "eos", "pad", "unk"):
        token_id = getattr(tokenizer, f"{role}_token_id")
        assert token_id is None or 0 <= token_id < handle.d_vocab, (role, token_id)
    if family != "bert":  # the BOS config.json names, the one the full folder has
        assert tokenizer.bos_token_id == full.tokenizer.bos_token_id
    assert torch.equal(handle.to_tokens(hf_tiny.IOI), full.to_tokens(hf_tiny.IOI))
