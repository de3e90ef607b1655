"""Prompts of unequal length run as one padded batch and give what each prompt gives alone.

``to_tokens`` pads (decoders on the left, encoders on the right) and the handle keeps the
mask, which every backend applies; an id batch holding the pad id with no mask is refused.
"""

from __future__ import annotations

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import ablation_sweep, metrics

PROMPTS = [hf_tiny.IOI, "def f(x): return", "import json"]
CASES = [
    ("llama", "transformer-lens", "left"),
    ("llama", "transformer-lens", "right"),
    ("gpt2", "transformer-lens", "left"),
    ("neox", "transformer-lens", "left"),
    ("bert", "transformer-lens", "right"),
    ("llama", "nnsight", "left"),
    ("gpt2", "nnsight", "right"),
    ("neox", "nnsight", "left"),
]


@pytest.fixture(scope="module")
def tok():
    return hf_tiny.tokenizer()


@pytest.fixture(scope="module")
def nets(tok):
    return {f: hf_tiny.model(f, tok) for f in ("llama", "gpt2", "neox", "bert")}


def _logits(handle, tokens):
    with torch.no_grad():
        return handle.run_with_hooks(tokens, [])


@pytest.mark.parametrize(("family", "backend", "side"), CASES)
def test_a_padded_batch_equals_each_prompt_alone(family, backend, side, nets, tok):
    handle = explorer.load(nets[family], tokenizer=tok, backend=backend)
    tokens = handle.to_tokens(PROMPTS, padding_side=side)
    mask = handle.attention_mask(tokens)
    lengths = [handle.to_tokens(p).shape[1] for p in PROMPTS]
    assert mask.sum(1).tolist() == lengths and len(set(lengths)) == 3
    pad = tok.pad_token_id
    assert (tokens[mask == 0] == pad).all()  # the padding really is there
    if side == "left":
        assert (mask[:, -1] == 1).all()
    batch = _logits(handle, tokens)
    with torch.no_grad():  # a plain call (captum's route) masks too
        assert torch.allclose(handle(tokens), batch, atol=1e-6)
    last = handle.last_positions(tokens)
    for i, prompt in enumerate(PROMPTS):
        alone = _logits(handle, handle.to_tokens(prompt))[0]
        assert (batch[i][mask[i].bool()] - alone).abs().max() < 1e-5
        assert int(last[i]) == (tokens.shape[1] - 1 if side == "left" else lengths[i] - 1)
    # a metric reads each prompt's own last token (position -1 when left-padded)
    position = None if side == "left" else last
    metric = metrics.logit_diff(" Mary", " John", model=handle, position=position)
    own_last = metrics.logit_diff(" Mary", " John", model=handle)
    each = torch.stack([own_last(_logits(handle, handle.to_tokens(p)))[0] for p in PROMPTS])
    assert torch.allclose(metric(batch), each, atol=1e-5)


def test_unpadded_ids_would_have_been_wrong(nets, tok):
    """The size of the error a missing mask makes (what the mask fixes)."""
    handle = explorer.load(nets["llama"], tokenizer=tok)
    tokens = handle.to_tokens(PROMPTS)
    ids = {"input_ids": tokens, "attention_mask": torch.ones_like(tokens)}
    with torch.no_grad():
        unmasked = handle.model(tokens)[2, -1]  # the torch module, no mask
        alone = handle(handle.to_tokens(PROMPTS[2]))[0, -1]
    assert (unmasked - alone).abs().max() > 1e-2
    with pytest.raises(ValueError, match="hold the pad id"):
        handle(ids)  # a mapping whose mask says the pads are real tokens


def test_sweeps_and_copies_carry_the_mask(nets, tok):
    handle = explorer.load(nets["gpt2"], tokenizer=tok)
    tokens = handle.to_tokens(PROMPTS)
    metric = metrics.logit_diff(" Mary", " John", model=handle)
    batch = ablation_sweep(handle, tokens, metric=metric, layer=1).after_per_example
    for i, prompt in enumerate(PROMPTS):
        alone = ablation_sweep(handle, handle.to_tokens(prompt), metric=metric, layer=1)
        assert torch.allclose(batch[:, i], alone.after_per_example[:, 0], atol=1e-5)
    twin = handle.copy()
    assert torch.allclose(_logits(twin, tokens[1:]), _logits(handle, tokens)[1:], atol=1e-6)


def test_an_id_batch_with_the_pad_id_and_no_mask_is_refused(nets, tok):
    handle = explorer.load(nets["llama"], tokenizer=tok)
    encoded = tok(PROMPTS, padding=True, return_tensors="pt")
    ids = encoded["input_ids"]
    assert (ids == tok.pad_token_id).any()
    with pytest.raises(ValueError) as err:
        handle(ids)
    message = str(err.value)
    assert f"hold the pad id {tok.pad_token_id}" in message and "no attention mask" in message
    assert "model.to_tokens(prompts)" in message and "'attention_mask': mask" in message
    # passed with its mask (the tokenizer's output as it is): accepted and masked
    with torch.no_grad():
        out = handle(encoded)
        for i, prompt in enumerate(PROMPTS):
            alone = tok(prompt, return_tensors="pt")["input_ids"]
            real = encoded["attention_mask"][i].bool()
            assert (out[i][real] - handle(alone)[0]).abs().max() < 1e-5


def test_encoders_are_padded_on_the_right_only(nets, tok):
    bert = explorer.load(nets["bert"], tokenizer=tok)
    with pytest.raises(ValueError, match="padded on the right"):
        bert.to_tokens(PROMPTS, padding_side="left")
    tokens, mask = bert.to_tokens(PROMPTS[:2]), torch.tensor([[1] * 3, [0, 1, 1]])
    with pytest.raises(ValueError, match="pad its prompts on the right"):
        bert({"input_ids": tokens[:, :3], "attention_mask": mask})


def test_a_metric_position_is_checked():
    logits = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError, match=r"position must lie in -3..2"):
        metrics.logit_diff(1, 0, position=torch.tensor([0, 3]))(logits)
    with pytest.raises(TypeError, match="position must be an int"):
        metrics.accuracy(torch.tensor([1, 0]), position="last")


def test_a_metric_reads_a_named_token_of_each_right_padded_prompt(nets, tok):
    bert = explorer.load(nets["bert"], tokenizer=tok)
    prompts = ["When Mary and John went [MASK] the store", "f [MASK] x"]
    tokens = bert.to_tokens(prompts)
    where = bert.token_positions(tokens, "[MASK]")
    assert bert.attention_mask(tokens)[1, -1] == 0 and where.tolist() == [
        bert.token_positions(bert.to_tokens(p), "[MASK]").item() for p in prompts
    ]
    metric = metrics.logit_diff(" Mary", " John", model=bert, position=where)
    with torch.no_grad():
        batch = metric(bert(tokens))
        for i, prompt in enumerate(prompts):
            alone = metrics.logit_diff(" Mary", " John", model=bert, position=int(where[i]))(
                bert(bert.to_tokens(prompt))
            )
            assert torch.allclose(batch[i], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"rows \[0, 1\] do not hold the token"):
        bert.token_positions(tokens, "[CLS]")  # this tokenizer adds none
