from __future__ import annotations

import pytest
import torch

from explorer.analysis import Head, head_scores
from explorer.analysis.head_scores import target_mask
from explorer.data import repeated_tokens
from explorer.models import TransformerConfig, zoo


def previous_token_model():
    """One attention-only layer whose head 0 attends from position i to i-1 by construction."""
    n_ctx = 16
    cfg = TransformerConfig(n_layers=1, d_model=64, n_heads=4, d_vocab=20, n_ctx=n_ctx, seed=0)
    model = zoo.transformer(cfg)
    tl = model.model
    with torch.no_grad():
        tl.embed.W_E.zero_()
        tl.pos_embed.W_pos.zero_()
        tl.pos_embed.W_pos[:, :n_ctx] = torch.eye(n_ctx)  # position as a one-hot
        attn = tl.blocks[0].attn
        attn.W_Q[0].zero_()
        attn.W_K[0].zero_()
        attn.b_Q.zero_()
        attn.b_K.zero_()
        attn.W_Q[0, :n_ctx, :n_ctx] = 60 * torch.eye(n_ctx)
        for j in range(n_ctx - 1):
            attn.W_K[0, j, j + 1] = 1.0  # key j looks like query j + 1
    return model


def test_hand_built_previous_token_head_scores_one_and_not_induction():
    model = previous_token_model()
    g = torch.Generator().manual_seed(0)
    halves = torch.stack([torch.randperm(19, generator=g)[:7] + 1 for _ in range(4)])
    tokens = torch.cat(
        [torch.zeros(4, 1, dtype=torch.long), halves, halves], dim=1
    )  # no adjacent repeats
    scores = head_scores(model, tokens)
    assert scores.get("previous_token")[0, 0] > 0.99
    assert scores.get("induction")[0, 0] < 0.01
    assert scores.get("duplicate_token")[0, 0] < 0.01
    others = scores.get("previous_token")[0, 1:]
    assert (others < 0.5).all()


def test_masks_on_a_small_sequence():
    t = torch.tensor([[0, 5, 6, 5, 6]])
    induction = target_mask(t, "induction")[0]
    # query 3 (token 5) -> key 2 (after the earlier 5 at position 1); query 4 -> key 3
    assert induction.nonzero().tolist() == [[3, 2], [4, 3]]
    dup = target_mask(t, "duplicate_token")[0]
    assert dup.nonzero().tolist() == [[3, 1], [4, 2]]
    prev = target_mask(t, "previous_token")[0]
    assert prev.nonzero().tolist() == [[1, 0], [2, 1], [3, 2], [4, 3]]


def test_induction_is_the_period_diagonal_prefix_matching_uses_every_copy():
    # [BOS] 5 1 5 | 5 1 5: token 5 repeats inside the span; query 6 (a 5) has three
    # earlier copies, but its induction target is only the key after the copy one period back
    t = torch.tensor([[0, 5, 1, 5, 5, 1, 5]])
    assert target_mask(t, "induction")[0, 6].nonzero().flatten().tolist() == [4]
    assert target_mask(t, "prefix_matching")[0, 6].nonzero().flatten().tolist() == [2, 4, 5]
    queries = target_mask(t, "induction")[0].any(-1).nonzero().flatten().tolist()
    assert queries == [4, 5, 6]  # exactly the repeated half
    no_bos = torch.tensor([[3, 4, 3, 4]])  # [S][S]: queries 2 and 3, targets 1 and 2
    assert target_mask(no_bos, "induction")[0].nonzero().tolist() == [[2, 1], [3, 2]]
    with pytest.raises(ValueError, match=r"needs repeated sequences.*prefix_matching"):
        target_mask(torch.tensor([[0, 5, 1, 5, 2, 5]]), "induction")


def test_per_example_scores_average_to_the_batch_score(attn_model, repeated):
    batch = head_scores(attn_model, repeated)
    each = head_scores(attn_model, repeated, per_example=True)
    assert each.scores.shape == (repeated.shape[0], 4, 2, 4)
    assert torch.allclose(each.scores.mean(0), batch.scores, atol=1e-6)
    (head, value), *_ = batch.top("induction", 2)
    assert isinstance(head, Head) and value >= batch.top("induction", 2)[1][1]
    assert value == pytest.approx(batch.get("induction")[head.layer, head.head].item())


def test_bad_inputs(attn_model, mnist_mlp):
    with pytest.raises(ValueError, match="unknown head score"):
        head_scores(attn_model, repeated_tokens(2, 4, 30), scores=["copying_lol"])
    with pytest.raises(ValueError, match="no attention heads"):
        head_scores(mnist_mlp, torch.zeros(1, 1, 28, 28))
    with pytest.raises(TypeError, match="integer token ids"):
        head_scores(attn_model, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="token ids must lie in 0..29"):
        head_scores(attn_model, torch.tensor([[0, 31]]))
    with pytest.raises(ValueError, match="exceeds the context"):
        head_scores(attn_model, torch.zeros(1, 40, dtype=torch.long))
    with pytest.raises(ValueError, match="induction score needs repeated sequences"):
        head_scores(attn_model, torch.arange(10)[None], scores=["induction"])
    with pytest.raises(ValueError, match="no query in this batch has a duplicate_token"):
        head_scores(attn_model, torch.arange(10)[None], scores=["duplicate_token"])
    with pytest.raises(ValueError, match="empty"):
        head_scores(attn_model, torch.zeros(0, 5, dtype=torch.long))


def test_unscorable_scores_are_skipped_with_the_reason_in_one_pass(attn_model):
    """A batch without a repeated half has no induction target: "skip" scores the rest
    exactly as asking for them alone would, and names what it skipped and why."""
    tokens = torch.tensor([[1, 2, 3, 2, 5, 6]])  # t2 repeats: duplicate/prefix targets exist
    with pytest.raises(ValueError, match="induction score needs repeated sequences"):
        head_scores(attn_model, tokens)
    skipped = head_scores(attn_model, tokens, unscorable="skip")
    assert [k for k, _ in skipped.skipped] == ["induction"]
    assert "repeated sequences" in skipped.skipped[0][1]
    rest = ("previous_token", "duplicate_token", "prefix_matching")
    assert skipped.names == rest
    torch.testing.assert_close(skipped.scores, head_scores(attn_model, tokens, scores=rest).scores)
    nothing = head_scores(attn_model, tokens[:, :1], scores=("duplicate_token",), unscorable="skip")
    assert nothing.names == () and tuple(nothing.scores.shape) == (0, 2, 4)
    with pytest.raises(ValueError, match="unknown unscorable 'ignore'"):
        head_scores(attn_model, tokens, unscorable="ignore")
