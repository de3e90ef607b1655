from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis.composition import (
    composition_score,
    composition_scores,
    head_circuits,
    ov_copying_scores,
    random_composition_baseline,
)
from explorer.analysis.units import Head
from explorer.models import TransformerConfig, zoo

D_MODEL, D_HEAD = 32, 8


def blank_model(normalization=None, d_vocab=20):
    """A 2-layer attention-only model with every head's weights set to zero."""
    cfg = TransformerConfig(
        n_layers=2,
        d_model=D_MODEL,
        n_heads=4,
        d_vocab=d_vocab,
        n_ctx=16,
        normalization=normalization,
        seed=0,
    )
    model = zoo.transformer(cfg)
    with torch.no_grad():
        for block in model.model.blocks:
            for w in (block.attn.W_Q, block.attn.W_K, block.attn.W_V, block.attn.W_O):
                w.zero_()
    return model


def basis(i: int) -> torch.Tensor:
    e = torch.zeros(D_MODEL)
    e[i] = 1.0
    return e


def set_ov(model, layer, head, read: torch.Tensor, write: torch.Tensor):
    """Make W_OV = read^T write (rank 1): the head writes ``write`` when it reads ``read``."""
    attn = model.model.blocks[layer].attn
    with torch.no_grad():
        attn.W_V[head, :, 0] = read
        attn.W_O[head, 0, :] = write


def set_qk(model, layer, head, query: torch.Tensor, key: torch.Tensor):
    """Make W_QK = query^T key (rank 1): the head matches ``query`` against ``key``."""
    attn = model.model.blocks[layer].attn
    with torch.no_grad():
        attn.W_Q[head, :, 0] = query
        attn.W_K[head, :, 0] = key


def test_aligned_rank_one_heads_score_one_and_only_for_their_kind():
    model = blank_model()
    # head 0.1 writes direction 5; head 1.2 reads direction 5 on its keys only
    set_ov(model, 0, 1, basis(0), basis(5))
    set_qk(model, 1, 2, basis(3), basis(5))
    for head in range(4):  # the other heads: unrelated directions, so norms are non-zero
        if head != 1:
            set_ov(model, 0, head, basis(10 + head), basis(20 + head))
        set_ov(model, 1, head, basis(30), basis(31))
        if head != 2:
            set_qk(model, 1, head, basis(25), basis(26))
    scores = composition_scores(model)
    assert scores.score("k", Head(0, 1), Head(1, 2)) == pytest.approx(1.0, abs=1e-6)
    assert scores.score("q", Head(0, 1), Head(1, 2)) == pytest.approx(0.0, abs=1e-6)
    assert scores.score("v", Head(0, 1), Head(1, 2)) == pytest.approx(0.0, abs=1e-6)
    top = scores.top("k", 1)[0]
    assert (top[0], top[1]) == (Head(0, 1), Head(1, 2))
    grid = scores.between("k", 0, 1)
    assert grid.shape == (4, 4)
    assert int((grid > 0.5).sum()) == 1
    # layer 1 cannot feed layer 0
    assert torch.isnan(scores.get("k")[1, :, 0, :]).all()
    assert scores.above_baseline("k")[0][:2] == (Head(0, 1), Head(1, 2))


def test_query_and_value_composition_are_read_on_their_own_side():
    model = blank_model()
    set_ov(model, 0, 0, basis(0), basis(7))
    set_qk(model, 1, 0, basis(7), basis(9))  # reads direction 7 with its queries
    set_ov(model, 1, 1, basis(7), basis(8))  # reads direction 7 with its values
    for head in range(1, 4):
        set_ov(model, 0, head, basis(20), basis(21))
    for head in range(4):
        if head != 0:
            set_qk(model, 1, head, basis(22), basis(23))
        if head != 1:
            set_ov(model, 1, head, basis(24), basis(25))
    scores = composition_scores(model)
    assert scores.score("q", "head 0.0", "head 1.0") == pytest.approx(1.0, abs=1e-6)
    assert scores.score("k", "head 0.0", "head 1.0") == pytest.approx(0.0, abs=1e-6)
    assert scores.score("v", "head 0.0", "head 1.1") == pytest.approx(1.0, abs=1e-6)


def test_full_rank_head_reading_a_subspace_scores_its_share():
    # W_A = projection on a k-dim subspace, W_B = identity: ||P||/(||P|| sqrt(d)) = 1/sqrt(d)
    d, k = 16, 4
    p = torch.zeros(d, d)
    p[:k, :k] = torch.eye(k)
    assert float(composition_score(p, torch.eye(d))) == pytest.approx(1 / math.sqrt(d))
    with pytest.raises(ValueError, match="inner sizes"):
        composition_score(torch.ones(3, 4), torch.ones(3, 4))
    assert float(composition_score(torch.zeros(3, 3), torch.ones(3, 3))) == 0.0


def test_random_heads_score_near_the_random_baseline():
    mean, std = random_composition_baseline(64, 16, n_samples=300)
    assert mean == pytest.approx(1 / math.sqrt(64), rel=0.05)
    assert 0 < std < mean / 5
    model = zoo.attention_only_transformer(
        n_layers=2, d_model=64, n_heads=4, d_vocab=30, n_ctx=16, normalization=None, seed=1
    )
    with torch.no_grad():  # Gaussian weights like the baseline's (the default init is not)
        g = torch.Generator().manual_seed(1)
        for block in model.model.blocks:
            for w in (block.attn.W_Q, block.attn.W_K, block.attn.W_V, block.attn.W_O):
                w.copy_(torch.randn(w.shape, generator=g))
    scores = composition_scores(model)
    assert scores.baseline == pytest.approx(mean, rel=0.05)
    for kind in ("q", "k", "v"):
        grid = scores.between(kind, 0, 1)
        assert abs(float(grid.mean()) - scores.baseline) < 3 * scores.baseline_std
        assert float(grid.max()) < scores.baseline + 6 * scores.baseline_std


def one_hot_model(normalization=None):
    """Tokens embed as one-hot directions and unembed back: W_E W_OV W_U = W_OV[:20, :20]."""
    model = blank_model(normalization, d_vocab=20)
    with torch.no_grad():
        model.model.embed.W_E.copy_(torch.eye(20, D_MODEL))
        model.model.unembed.W_U.copy_(torch.eye(D_MODEL, 20))
    return model


def test_copying_head_scores_one_and_anti_copying_scores_minus_one():
    model = one_hot_model()
    attn = model.model.blocks[1].attn
    with torch.no_grad():
        # head 1.0 copies tokens 1..8; head 1.1 suppresses them; head 1.2 maps t to t + 1
        for head, sign in ((0, 1.0), (1, -1.0)):
            attn.W_V[head] = torch.eye(D_MODEL)[:, 1 : 1 + D_HEAD]
            attn.W_O[head] = sign * torch.eye(D_MODEL)[1 : 1 + D_HEAD]
        attn.W_V[2] = torch.eye(D_MODEL)[:, 1 : 1 + D_HEAD]
        attn.W_O[2] = torch.eye(D_MODEL)[1 : 1 + D_HEAD].roll(1, dims=1)
    copying = ov_copying_scores(model, token_ids=range(1, 1 + D_HEAD))
    assert copying.n_tokens == D_HEAD
    assert copying.chance_top1 == pytest.approx(1 / D_HEAD)
    assert copying.eigenvalue[1, 0] == pytest.approx(1.0, abs=1e-5)
    assert copying.diagonal_top1[1, 0] == pytest.approx(1.0)
    assert copying.eigenvalue[1, 1] == pytest.approx(-1.0, abs=1e-5)
    assert copying.diagonal_top1[1, 1] == pytest.approx(0.0)
    assert copying.diagonal_top1[1, 2] == pytest.approx(0.0)
    assert abs(float(copying.eigenvalue[1, 2])) < 0.2  # a shift is nilpotent: eigenvalues 0


def test_random_ov_circuits_do_not_copy():
    model = zoo.attention_only_transformer(
        n_layers=2, d_model=64, n_heads=4, d_vocab=64, n_ctx=16, seed=2
    )
    copying = ov_copying_scores(model)
    assert copying.n_tokens == 63  # BOS left out
    assert float(copying.eigenvalue.abs().mean()) < 0.3
    assert float(copying.diagonal_top1.mean()) < 5 * copying.chance_top1


def test_bad_inputs_raise_with_the_valid_range():
    model = zoo.attention_only_transformer(n_layers=2, d_model=32, d_vocab=20, n_ctx=16)
    scores = composition_scores(model)
    with pytest.raises(ValueError, match="composition"):
        scores.get("x")
    with pytest.raises(ValueError, match="layer_a < layer_b"):
        scores.between("k", 1, 0)
    with pytest.raises(ValueError, match="0..19"):
        ov_copying_scores(model, token_ids=[1, 25])
    with pytest.raises(ValueError, match="no attention heads"):
        composition_scores(zoo.mnist_mlp(hidden=(4,)))
    assert tuple(head_circuits(model)[0].shape) == (2, 4, 32, 32)
