"""Models whose mechanism is known by construction, to check hypothesis tests against truth.

A test of hypotheses is only trustworthy if it supports true claims and refutes false
ones. These tiny models have their weights set by hand, so the truth is known:

- ``previous_token_model()``: a 1-layer attention-only transformer whose head 0.0 attends
  from each position to the one before and copies that token to the output; the model
  predicts the previous token. Heads 0.1..0.3 keep their random (seeded) weights.
- ``concept_neuron_model()``: an MLP on feature vectors whose neuron 0.3 fires exactly
  when feature 0 (the planted concept) is on; the other neurons are random.

>>> model, data = previous_token_model(), previous_token_examples(4, seed=0)
>>> bool((model(data.inputs)[:, -1].argmax(-1) == data.labels).all())
True
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.hypotheses.examples import Examples
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.loading import wrap

N_CTX = 16
D_VOCAB = 16
PREVIOUS_TOKEN_HEAD = (0, 0)
CONCEPT_NEURON = (0, 3)
HEAD_WEIGHTS = ("query", "key", "value", "attn_out", "query_bias", "key_bias", "value_bias")


def previous_token_model(*, seed: int = 0, strength: float = 40.0) -> ModelHandle:
    """Head 0.0 is a previous-token head that copies the previous token to the logits.

    The residual stream is laid out in blocks of 16 dimensions: position one-hots, token
    one-hots, and an output block that head 0.0 writes and the unembedding reads.
    """
    cfg = TransformerConfig(
        n_layers=1,
        d_model=64,
        n_heads=4,
        d_head=16,
        d_vocab=D_VOCAB,
        n_ctx=N_CTX,
        normalization=None,
        seed=seed,
    )
    model = zoo.transformer(cfg, name="planted-previous-token")
    pos, tok, out = slice(0, 16), slice(16, 32), slice(32, 48)
    eye = torch.eye(16)
    layer, head = PREVIOUS_TOKEN_HEAD

    def blank(name: str, at: int | None = None) -> torch.Tensor:
        shape = model.weight(name, at).shape
        return torch.zeros(shape[1:] if name in HEAD_WEIGHTS else shape)

    def write(name: str, value: torch.Tensor, at: int | None = None) -> None:
        model.set_weight(name, value, at, head=head if name in HEAD_WEIGHTS else None)

    embed, pos_embed = blank("embed"), blank("pos_embed")
    embed[:, tok] = eye
    pos_embed[:, pos] = eye
    query, key = blank("query", layer), blank("key", layer)
    query[pos] = strength * eye  # query at i is e_i
    key[pos, 1:] = eye[:, :-1]  # key at j is e_(j+1): matches query j+1
    value, attn_out = blank("value", layer), blank("attn_out", layer)
    value[tok] = eye  # value: the token's identity
    attn_out[:, out] = eye
    unembed = blank("unembed")
    unembed[out] = 20.0 * eye
    write("embed", embed)
    write("pos_embed", pos_embed)
    for name, weight in (("query", query), ("key", key), ("value", value), ("attn_out", attn_out)):
        write(name, weight, layer)
    for name in ("query_bias", "key_bias", "value_bias", "attn_out_bias"):
        write(name, blank(name, layer), layer)
    write("unembed", unembed)
    write("unembed_bias", blank("unembed_bias"))
    return model


def previous_token_examples(n: int, *, seq_len: int = 12, seed: int = 0) -> Examples:
    """Random token sequences; ``labels`` is the previous token at the last position.

    ``corrupted`` changes that previous token, and ``alt_labels`` is what it became, so
    ``logit_diff`` measures how much the model prefers the clean answer.
    """
    if not 2 <= seq_len <= N_CTX:
        raise ValueError(f"seq_len must lie in 2..{N_CTX}, got {seq_len}")
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, D_VOCAB, (n, seq_len), generator=g)
    shift = torch.randint(1, D_VOCAB, (n,), generator=g)
    corrupted = tokens.clone()
    corrupted[:, -2] = (tokens[:, -2] + shift) % D_VOCAB
    return Examples(
        inputs=tokens, labels=tokens[:, -2], alt_labels=corrupted[:, -2], corrupted=corrupted
    )


def concept_neuron_model(*, n_features: int = 8, width: int = 16, seed: int = 0) -> ModelHandle:
    """An MLP ``features -> ReLU(width) -> 2 classes``; neuron 0.3 fires iff feature 0 is on."""
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, 2))
    model = wrap(module, input_shape=(n_features,), name="planted-concept-mlp")
    layer, neuron = CONCEPT_NEURON
    incoming = torch.zeros(n_features)
    incoming[0] = 6.0  # fires (at 3) when feature 0 is 1, never when 0
    readout = torch.tensor([-2.0, 2.0])
    model.set_unit_weights(layer, neuron, incoming=incoming, bias=-3.0, outgoing=readout)
    return model


def concept_examples(n: int, *, n_features: int = 8, rate: float = 0.3, seed: int = 0) -> Examples:
    """Gaussian features where feature 0 is the concept (1 with probability ``rate``, else 0)
    plus a little noise; ``concept`` marks the examples that have it."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, n_features, generator=g)
    concept = torch.rand(n, generator=g) < rate
    features[:, 0] = concept.float() + 0.1 * torch.randn(n, generator=g)
    return Examples(inputs=features, labels=concept.long(), concept=concept)
