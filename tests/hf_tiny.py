"""Tiny Hugging Face models of every family explorer converts, written offline for tests.

``write_family(family, folder)`` saves a 2-layer, d_model-32 model with random weights and a
small byte-level BPE tokenizer (trained here on a few KB of standard-library source plus the
IOI sentence, so `` Mary`` and `` John`` are single tokens) into ``folder`` with
``save_pretrained``, exactly as a user's downloaded model folder looks. Nothing is fetched.

Weights are redrawn with std 0.2 (norm weights included) so logits are of order one and a
conversion mistake (a missing Gemma ``1 + w``, a wrong rotary split) shows in the parity.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAMILIES = ("gpt2", "neox", "llama", "qwen2", "gemma", "mistral", "bert")
IOI = "When Mary and John went to the store, John gave a drink to"
SPECIALS = ["<|endoftext|>", "<pad>", "[CLS]", "[SEP]", "[MASK]"]


def tokenizer(vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained offline (about 0.3 s)."""
    import json as json_module
    import textwrap

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = inspect.getsource(json_module.decoder) + inspect.getsource(textwrap)
    corpus = [text[i : i + 400] for i in range(0, len(text), 400)] + [IOI + " Mary."] * 30
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def config(family: str, vocab_size: int, bos: int, pad: int):
    """The ``transformers`` config of a tiny model of ``family`` (2 layers, d_model 32)."""
    import transformers as T

    shared = {"vocab_size": vocab_size, "bos_token_id": bos, "eos_token_id": bos}
    decoder = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
        **shared,
    }
    if family == "gpt2":
        return T.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, **shared)
    if family == "neox":  # partial rotary: a quarter of each head's dimensions rotate
        return T.GPTNeoXConfig(**decoder, rotary_pct=0.25, use_parallel_residual=True)
    if family == "llama":  # grouped-query attention: 2 key/value heads for 4 query heads
        return T.LlamaConfig(**decoder, num_key_value_heads=2)
    if family == "qwen2":
        return T.Qwen2Config(**decoder, num_key_value_heads=2)
    if family == "gemma":  # multi-query attention, head_dim given explicitly
        return T.GemmaConfig(**decoder, num_key_value_heads=1, head_dim=8, pad_token_id=pad)
    if family == "mistral":
        return T.MistralConfig(**decoder, num_key_value_heads=2, sliding_window=4096)
    if family == "bert":
        return T.BertConfig(
            num_hidden_layers=2,
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            vocab_size=vocab_size,
            pad_token_id=pad,
        )
    raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")


def model(family: str, tok=None, seed: int = 0):
    """A random-weight ``transformers`` model of ``family`` (float32, eval mode)."""
    tok = tok or tokenizer()
    cfg = config(family, len(tok), tok.bos_token_id, tok.pad_token_id)
    return from_config(cfg, seed)


def from_config(cfg, seed: int = 0):
    """A model built from a ``transformers`` config, every weight redrawn with std 0.2."""
    import transformers as T

    torch.manual_seed(seed)
    is_bert = isinstance(cfg, T.BertConfig)
    net = T.BertForMaskedLM(cfg) if is_bert else T.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net.eval()


def write_family(family: str, folder: str | Path, tok=None) -> Path:
    """Save a tiny model of ``family`` and its tokenizer into ``folder``; return the folder."""
    folder = Path(folder)
    tok = tok or tokenizer()
    model(family, tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["architectures"]
    return folder


# ------------------------------------------------- every causal LM transformers can build
# A sample of AutoModelForCausalLM architectures that ``make test`` opens (the families
# explorer converts, those transformer-lens converts, and ones it cannot);
# ``python scripts/hf_architectures.py`` opens all of them (docs/transformer_lens.md).
CAUSAL_LM_SAMPLE = (
    "gpt2",
    "gpt_neox",
    "llama",
    "qwen2",
    "gemma",
    "gemma2",
    "gemma3_text",
    "mistral",
    "opt",
    "gptj",
    "gpt_neo",
    "qwen3",
    "bloom",
    "phi",
    "phi3",
    "stablelm",
    "olmo2",
    "falcon",
    "cohere",
    "codegen",
)
TINY = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "head_dim": 8,
    "is_decoder": True,
}
MAX_TINY_PARAMETERS = 3_000_000
# sizes named otherwise, for architectures of the sample
TINY_EXTRA = {
    "gpt_neo": {"attention_types": [[["global", "local"], 1]], "window_size": 4},
    "gptj": {"rotary_dim": 4},
    "codegen": {"rotary_dim": 4},
}


class NotTiny(Exception):
    """An architecture whose config does not shrink through the standard size names."""


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2])[:160]


def causal_lm_types() -> dict[str, str]:
    """model type -> the AutoModelForCausalLM class name transformers maps it to."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return dict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def tiny_causal_lm(model_type: str, tok, seed: int = 0):
    """A random-weight causal LM of ``model_type`` from its default config shrunk to the
    ``TINY`` sizes (std 0.2 weights, as ``from_config``); ``NotTiny`` when it cannot be."""
    import warnings

    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    ids = {
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.bos_token_id,
    }
    sizes = {**TINY, **ids, "pad_token_id": tok.pad_token_id, **TINY_EXTRA.get(model_type, {})}
    config_class = CONFIG_MAPPING[model_type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cfg = config_class(**sizes)
        except Exception:
            try:
                cfg = config_class()
            except Exception as err:  # its own defaults do not validate
                raise NotTiny(f"{type(err).__name__}: {_first_line(err)}") from None
            for key, value in sizes.items():
                try:
                    setattr(cfg, key, value)
                except Exception:
                    continue
        try:
            if hasattr(cfg, "validate"):
                cfg.validate()  # sizes that contradict each other (layer lists of 24)
            with torch.device("meta"):
                shape = AutoModelForCausalLM.from_config(cfg)
        except Exception as err:
            raise NotTiny(f"{type(err).__name__}: {_first_line(err)}") from None
        n = sum(p.numel() for p in shape.parameters())
        if n > MAX_TINY_PARAMETERS:
            raise NotTiny(
                f"{n:,} parameters at the standard tiny sizes (its sizes have other names)"
            )
        torch.manual_seed(seed)
        net = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net.eval()


def open_outcome(net, tok) -> tuple[str, str, object]:
    """How ``explorer.load(net)`` opens a model: ``("converted" | "nnsight" | "plain module"
    | "refused", what it said, the handle or the error)``."""
    import warnings

    import explorer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            handle = explorer.load(net, tokenizer=tok)
        except Exception as err:
            return "refused", str(err), err
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    if handle.kind != "tokens":
        return "plain module", said, handle
    if str(handle.family).endswith("via nnsight"):
        return "nnsight", said, handle
    return "converted", said, handle
