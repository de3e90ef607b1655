"""Composition and OV copying scores beside transformer-lens and ARENA on the same weights."""

from __future__ import annotations

import torch

from explorer.analysis.composition import composition_scores, ov_copying_scores
from explorer.models import zoo


def test_composition_equals_transformer_lens_all_composition_scores():
    model = zoo.attention_only_transformer(
        n_layers=3, d_model=32, n_heads=4, d_vocab=20, n_ctx=16, normalization=None, seed=3
    )
    ours = composition_scores(model)
    for kind in ("q", "k", "v"):
        theirs = model.model.all_composition_scores(kind.upper())
        for la in range(3):
            for lb in range(la + 1, 3):
                torch.testing.assert_close(
                    ours.get(kind)[la, :, lb, :], theirs[la, :, lb, :], atol=1e-5, rtol=0
                )


def test_layernorm_folding_equals_transformer_lens_processed_weights():
    model = zoo.attention_only_transformer(
        n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16, seed=4
    )
    with torch.no_grad():  # non-trivial LayerNorm weights so folding matters
        g = torch.Generator().manual_seed(0)
        for block in model.model.blocks:
            block.ln1.w.copy_(torch.rand(32, generator=g) * 2 + 0.1)
    ours = composition_scores(model).get("k")[0, :, 1, :]
    unfolded = composition_scores(model, fold_layernorm=False).get("k")[0, :, 1, :]
    folded = model.copy()
    folded.model.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=False)
    theirs = folded.model.all_composition_scores("K")[0, :, 1, :]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    assert not torch.allclose(ours, unfolded, atol=1e-3)


def test_copying_scores_equal_the_full_ov_circuit_read_by_hand():
    model = zoo.attention_only_transformer(
        n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16, normalization=None, seed=5
    )
    tl = model.model
    ours = ov_copying_scores(model)  # default: every token but BOS (id 0)
    everything = ov_copying_scores(model, token_ids=range(20))
    ids = torch.arange(1, 20)
    for layer in range(2):
        for head in range(4):
            # transformer-lens's factored full OV circuit, rows and columns without BOS
            full = (tl.W_E[ids] @ tl.OV[layer, head] @ tl.W_U[:, ids]).AB.double()
            eig = torch.linalg.eigvals(full)  # Elhage et al.: sum(lambda) / sum(|lambda|)
            elhage = float(eig.real.sum() / eig.abs().sum())
            # ARENA: the fraction of rows whose own token has the largest logit
            arena = float((full.argmax(-1) == torch.arange(19)).double().mean())
            assert abs(float(ours.eigenvalue[layer, head]) - elhage) < 1e-5
            assert abs(float(ours.diagonal_top1[layer, head]) - arena) < 1e-6
            with_bos = (tl.W_E @ tl.OV[layer, head] @ tl.W_U).AB.double()
            eig = torch.linalg.eigvals(with_bos)
            elhage_all = float(eig.real.sum() / eig.abs().sum())
            assert abs(float(everything.eigenvalue[layer, head]) - elhage_all) < 1e-5
    assert ours.n_tokens == 19 and everything.n_tokens == 20
