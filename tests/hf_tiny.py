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
