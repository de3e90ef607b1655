from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis import ablate
from explorer.analysis.composition import composition_scores, ov_copying_scores
from explorer.analysis.head_scores import HeadScores
from explorer.analysis.induction import (
    find_induction_circuit,
    heads_above,
    induction_progress,
)
from explorer.analysis.metrics import in_context_learning_score, repeated_half_advantage
from explorer.analysis.units import Head
from explorer.models import TransformerConfig, zoo

VOCAB, CTX = 12, 24
TOK, POS, PREV, OUT = 0, VOCAB, VOCAB + CTX, 2 * VOCAB + CTX  # subspace offsets
D_MODEL = 3 * VOCAB + CTX


def hand_built_induction_model():
    """Two layers, three heads each; head 0.0 is a previous-token head, head 1.0 an
    induction head reading it through K-composition. Every other head is all zeros.

    Residual stream: [token one-hot | position one-hot | previous token | output].
    """
    cfg = TransformerConfig(
        n_layers=2,
        d_model=D_MODEL,
        n_heads=3,
        d_head=CTX,
        d_vocab=VOCAB,
        n_ctx=CTX,
        normalization=None,
        bos_token=0,
        seed=0,
    )
    model = zoo.transformer(cfg)
    tl = model.model
    sharp = 40.0
    with torch.no_grad():
        for p in tl.parameters():
            p.zero_()
        for t in range(VOCAB):
            tl.embed.W_E[t, TOK + t] = 1.0
            tl.unembed.W_U[OUT + t, t] = 1.0
        for p in range(CTX):
            tl.pos_embed.W_pos[p, POS + p] = 1.0
        prev, ind = tl.blocks[0].attn, tl.blocks[1].attn
        for p in range(CTX):
            prev.W_Q[0, POS + p, p] = sharp  # query at p ...
            if p + 1 < CTX:
                prev.W_K[0, POS + p, p + 1] = 1.0  # ... matches the key at p - 1
        for t in range(VOCAB):
            prev.W_V[0, TOK + t, t] = 1.0
            prev.W_O[0, t, PREV + t] = 1.0  # writes "the previous token was t"
            ind.W_Q[0, TOK + t, t] = sharp  # query: my token is t
            ind.W_K[0, PREV + t, t] = 1.0  # key: my previous token was t
            ind.W_V[0, TOK + t, t] = 1.0
            ind.W_O[0, t, OUT + t] = 10.0  # predict the attended token
    return model


def distinct_repeats(n: int, half: int, seed: int = 0) -> torch.Tensor:
    """[BOS][L][L] without repeats inside a half, so each query has one earlier copy."""
    g = torch.Generator().manual_seed(seed)
    halves = torch.stack([torch.randperm(VOCAB - 1, generator=g)[:half] + 1 for _ in range(n)])
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), halves, halves], dim=1)


@pytest.fixture(scope="module")
def induction_model():
    return hand_built_induction_model()


def test_in_context_learning_score_is_late_minus_early_loss():
    tokens = distinct_repeats(3, 5)
    uniform = torch.zeros(3, 11, VOCAB)
    assert torch.allclose(in_context_learning_score(tokens)(uniform), torch.zeros(3), atol=1e-6)
    perfect = torch.zeros(3, 11, VOCAB)
    perfect[:, :-1].scatter_(-1, tokens[:, 1:, None], 50.0)  # knows every next token
    perfect[:, :5] = 0.0  # ... except in the first half
    score = in_context_learning_score(tokens)(perfect)
    assert torch.allclose(score, torch.full((3,), -math.log(VOCAB)), atol=1e-4)
    assert torch.allclose(repeated_half_advantage(tokens)(perfect), -score)
    # explicit positions: predictions 1..2 vs 7..9
    custom = in_context_learning_score(tokens, early=slice(1, 3), late=slice(7, 10))(perfect)
    assert torch.allclose(custom, score, atol=1e-4)


def test_hand_built_circuit_is_found(induction_model):
    tokens = distinct_repeats(8, 8)
    circuit = find_induction_circuit(induction_model, tokens)
    assert circuit.induction_heads == (Head(1, 0),)
    assert circuit.previous_token_heads == (Head(0, 0),)
    assert circuit.heads == (Head(0, 0), Head(1, 0))
    prev, ind, k_score = circuit.pairs[0]
    assert (prev, ind) == (Head(0, 0), Head(1, 0))
    # W_OV^A W_QK^B.T is sharp * identity on 12 token directions: score 1/sqrt(12)
    assert k_score == pytest.approx(1 / math.sqrt(VOCAB), rel=1e-4)
    assert k_score > circuit.composition.baseline + 3 * circuit.composition.baseline_std
    assert circuit.scores.get("induction")[1, 0] > 0.95
    assert circuit.scores.get("previous_token")[0, 0] > 0.95


def test_hand_built_induction_head_copies_and_carries_the_advantage(induction_model):
    tokens = distinct_repeats(8, 8)
    copying = ov_copying_scores(induction_model)
    assert copying.eigenvalue[1, 0] == pytest.approx(1.0, abs=1e-5)
    assert copying.diagonal_top1[1, 0] == pytest.approx(1.0)
    progress = induction_progress(induction_model, tokens)
    assert progress.repeated_half_loss < 0.01
    assert progress.first_half_loss > 1.0
    assert progress.in_context_learning_score == pytest.approx(
        progress.repeated_half_loss - progress.first_half_loss
    )
    assert progress.max_induction_score > 0.95
    assert set(progress.as_dict()) == {
        "repeated_half_loss",
        "first_half_loss",
        "in_context_learning_score",
        "max_induction_score",
        "max_previous_token_score",
    }
    advantage = repeated_half_advantage(tokens)
    without_induction = ablate(induction_model, tokens, units=["head 1.0"], metric=advantage)
    assert without_induction.before_mean > 3.0
    assert without_induction.after_mean == pytest.approx(0.0, abs=1e-5)  # nothing writes logits
    # without the previous-token head, head 1.0 attends to every earlier token alike: it still
    # favours tokens seen in context (the repeated half's), but far less than induction does
    without_previous = ablate(induction_model, tokens, units=["head 0.0"], metric=advantage)
    assert without_previous.after_mean < 0.6 * without_previous.before_mean
    bystanders = ablate(induction_model, tokens, units=["head 0.1", "head 1.2"], metric=advantage)
    assert bystanders.after_mean == pytest.approx(bystanders.before_mean, rel=1e-5)


def test_untrained_model_has_no_circuit():
    model = zoo.attention_only_transformer(n_layers=2, d_model=32, d_vocab=20, n_ctx=24, seed=0)
    from explorer.data import repeated_tokens

    circuit = find_induction_circuit(model, repeated_tokens(8, 10, 20, seed=1))
    assert circuit.induction_heads == ()
    assert circuit.pairs == ()


def test_heads_above_sorts_and_filters_layers():
    grid = torch.tensor([[[0.1, 0.9], [0.5, 0.7]]])  # [kind, layer, head]
    scores = HeadScores(grid, ("induction",))
    assert heads_above(scores, "induction", 0.4) == [Head(0, 1), Head(1, 1), Head(1, 0)]
    assert heads_above(scores, "induction", 0.4, layers=[1]) == [Head(1, 1), Head(1, 0)]
    batched = HeadScores(torch.stack([grid, grid * 0]), ("induction",))  # batch mean halves
    assert heads_above(batched, "induction", 0.4) == [Head(0, 1)]


def test_composition_scores_of_hand_built_circuit_single_out_the_pair(induction_model):
    scores = composition_scores(induction_model)
    top = scores.top("k", 1)[0]
    assert (top[0], top[1]) == (Head(0, 0), Head(1, 0))
    assert scores.top("q", 1)[0][2] < 1e-6  # layer 0 writes only where queries do not read
