"""Head scores beside transformer-lens's ``detect_head`` and ARENA's diagonal scores.

The conversions asserted here are the ones docs/scores.md and the
``explorer.analysis.head_scores`` docstring state.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from transformer_lens.head_detector import detect_head

from explorer.analysis import head_scores
from explorer.analysis.head_scores import target_mask

from .conftest import L

TL_NAMES = {
    "previous_token": "previous_token_head",
    "duplicate_token": "duplicate_token_head",
    "prefix_matching": "induction_head",
}


def patterns(model, tokens):
    """``[batch, layer, head, q, k]`` attention patterns from transformer-lens's own cache."""
    _, cache = model.model.run_with_cache(tokens)
    return torch.stack([cache["pattern", layer] for layer in range(model.n_layers)], dim=1)


# ARENA (chapter 1.2): the mean of one diagonal of each head's pattern on [BOS][L][L]
def arena_induction(pattern, half_len):
    return pattern.diagonal(offset=1 - half_len, dim1=-2, dim2=-1).mean(-1)


def arena_previous_token(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def arena_duplicate_token(pattern, half_len):
    return pattern.diagonal(offset=-half_len, dim1=-2, dim2=-1).mean(-1)


def tl_detect_head(model, tokens, name, **options):
    """transformer-lens's ``detect_head`` on our token ids, one prompt per row, averaged."""
    tl = model.model
    by_text = {" ".join(map(str, row.tolist())): row[None] for row in tokens}
    # zoo models have no tokenizer; detect_head only reads token ids through to_tokens
    tl.to_tokens = lambda seq, **_: (
        torch.cat([by_text[s] for s in seq]) if isinstance(seq, list) else by_text[seq]
    )
    try:
        return detect_head(tl, list(by_text), name, **options).float()
    finally:
        del tl.to_tokens


@pytest.mark.parametrize("kind", sorted(TL_NAMES))
def test_detect_head_mul_equals_ours_times_queries_with_a_target_over_seq_len(
    attn2, rep_tokens, kind
):
    theirs = tl_detect_head(attn2, rep_tokens, TL_NAMES[kind])  # "mul", no exclusions
    ours = head_scores(attn2, rep_tokens, scores=[kind], per_example=True).get(
        kind
    )  # [b, layer, head]
    n_q = target_mask(rep_tokens, kind).any(-1).sum(-1).float()  # [b]
    converted = (ours * n_q[:, None, None] / rep_tokens.shape[1]).mean(0)
    torch.testing.assert_close(converted, theirs, atol=1e-5, rtol=0)
    assert float(theirs.max()) > 0.05  # patterns are sharp enough to mean something


def test_induction_is_arena_diagonal_over_the_repeated_half(attn2, rep_tokens):
    pattern = patterns(attn2, rep_tokens)  # [b, layer, head, q, k]
    ours = head_scores(attn2, rep_tokens, scores=["induction"]).get("induction")
    repeated_half = pattern.diagonal(offset=1 - L, dim1=-2, dim2=-1)[..., 2:]  # queries L+1..2L
    torch.testing.assert_close(ours, repeated_half.mean(-1).mean(0), atol=1e-6, rtol=0)
    # ARENA's own mean also takes queries L-1 and L (keys 0 and 1): the documented conversion
    extra = pattern[..., L - 1, 0] + pattern[..., L, 1]
    arena = arena_induction(pattern, L).mean(0)
    torch.testing.assert_close((L * ours + extra.mean(0)) / (L + 2), arena, atol=1e-6, rtol=0)


ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_say_what_induction_equals_not_that_it_is_arenas():
    # the score converts to ARENA's as asserted above: the README, docs/induction.md and the
    # docstrings say so (the two first-half entries), none calls it plainly "ARENA's"
    hs = importlib.import_module("explorer.analysis.head_scores")  # the module, not the verb
    ind = importlib.import_module("explorer.analysis.induction")
    texts = {
        "README.md": (ROOT / "README.md").read_text(),
        "docs/induction.md": (ROOT / "docs" / "induction.md").read_text(),
        "head_scores": hs.__doc__,
        "find_induction_circuit": ind.find_induction_circuit.__doc__,
    }
    for where, text in texts.items():
        flat = " ".join(text.split())
        assert "first-half" in flat, where
        for plain in ("ARENA's:", "(ARENA's)", "ARENA's induction score", "ARENA's score,"):
            assert plain not in flat, (where, plain)
    scores = " ".join((ROOT / "docs" / "scores.md").read_text().split())
    assert "arena_induction = (L × induction + A[L-1, 0] + A[L, 1]) / (L + 2)" in scores


def test_induction_differs_from_prefix_matching_when_the_span_repeats_itself(attn2, rep_tokens):
    scores = head_scores(attn2, rep_tokens, scores=["induction", "prefix_matching"])
    gap = (scores.get("induction") - scores.get("prefix_matching")).abs().max()
    assert gap > 1e-3  # two different scores, as documented: every copy vs the period's


def test_previous_token_is_arena_diagonal_exactly(attn2, rep_tokens):
    pattern = patterns(attn2, rep_tokens)
    ours = head_scores(attn2, rep_tokens, scores=["previous_token"]).get("previous_token")
    torch.testing.assert_close(ours, arena_previous_token(pattern).mean(0), atol=1e-6, rtol=0)


def test_duplicate_token_is_arena_diagonal_when_the_span_has_no_repeats(attn2):
    g = torch.Generator().manual_seed(5)
    span = torch.stack([torch.randperm(29, generator=g)[:L] + 1 for _ in range(4)])
    tokens = torch.cat([torch.zeros(4, 1, dtype=torch.long), span, span], dim=1)
    pattern = patterns(attn2, tokens)
    ours = head_scores(attn2, tokens, scores=["duplicate_token"]).get("duplicate_token")
    # ARENA's -L diagonal also holds query L -> key 0 (BOS): (L * ours + A[L, 0]) / (L + 1)
    arena = arena_duplicate_token(pattern, L).mean(0)
    converted = (L * ours + pattern[..., L, 0].mean(0)) / (L + 1)
    torch.testing.assert_close(converted, arena, atol=1e-6, rtol=0)
    # and with no repeats in the span, induction is prefix matching
    both = head_scores(attn2, tokens, scores=["induction", "prefix_matching"])
    torch.testing.assert_close(
        both.get("induction"), both.get("prefix_matching"), atol=1e-6, rtol=0
    )
