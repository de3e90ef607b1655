"""AttentionView without a browser: trait changes produce the right analysis and payloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

from explorer.analysis import head_scores, run_with_cache
from explorer.data import repeated_tokens
from explorer.models import zoo
from explorer.views import AttentionView
from explorer.views.serialize import payload_bytes


def _pattern(model, tokens, layer, head):
    name = model.hook_name("pattern", layer)
    return run_with_cache(model, tokens, hooks=[name])[name][0, head].numpy()


def test_selecting_a_head_sends_its_cached_pattern(attn_model, repeated):
    view = AttentionView(attn_model, repeated)
    for layer, head in [(1, 2), (0, 3), (1, 0)]:
        view.layer, view.head = layer, head
        sent = view.pattern.numpy()
        assert sent.shape == (17, 17)
        assert np.abs(sent - _pattern(attn_model, repeated[:1], layer, head)).max() < 1e-3
    assert view.error == ""


def test_scores_and_thumbnails_cover_every_head(attn_model, repeated):
    view = AttentionView(attn_model, repeated)
    expected = head_scores(attn_model, repeated)
    assert view.score_names == list(expected.names)
    assert np.allclose(view.scores.numpy(), expected.scores.numpy(), atol=1e-6)
    assert view.thumbnails.numpy().shape == (2, 4, 17, 17)


def test_changing_the_prompt_recomputes_tokens_and_pattern(attn_model, repeated):
    view = AttentionView(attn_model, repeated)
    view.head = 1
    view.prompt = 3
    assert view.tokens == attn_model.to_str_tokens(repeated[3])
    assert np.abs(view.pattern.numpy() - _pattern(attn_model, repeated[3:4], 0, 1)).max() < 1e-3


def test_long_prompts_are_windowed_with_a_note():
    model = zoo.attention_only_transformer(
        n_layers=1, d_model=48, n_heads=12, d_vocab=50, n_ctx=1024, seed=0
    )
    tokens = torch.randint(1, 50, (1, 1024), generator=torch.Generator().manual_seed(0))
    view = AttentionView(model, tokens, window=128)
    assert view.pattern["shape"] == [128, 128] and view.pattern_rows == [0, 128]
    assert "0..127 of 1024" in view.window_note
    view.query_start = 2000  # clamped to the last window
    assert view.pattern_rows == [896, 1024] and view.pattern["shape"] == [128, 1024]
    full = _pattern(model, tokens, 0, 0)
    assert np.abs(view.pattern.numpy() - full[896:, :]).max() < 1e-3
    sent = sum(payload_bytes(getattr(view, n)) for n in ("pattern", "thumbnails", "scores"))
    assert sent < 2**20  # a whole 12-head layer would be 25 MB


def test_out_of_range_selection_raises_with_the_valid_range(attn_model, repeated):
    view = AttentionView(attn_model, repeated)
    with pytest.raises(traitlets.TraitError, match=r"head 4 out of range: valid heads are 0..3"):
        view.head = 4
    with pytest.raises(traitlets.TraitError, match=r"valid layers are 0..1"):
        view.layer = 2
    with pytest.raises(ValueError, match="needs a transformer"):
        AttentionView(zoo.mnist_mlp(hidden=(4,)), torch.rand(2, 1, 28, 28))


def test_scores_without_targets_are_left_out_with_a_note(attn_model):
    no_repeats = torch.arange(1, 11)[None]
    view = AttentionView(attn_model, no_repeats)
    assert view.score_names == ["previous_token"]
    assert "induction" in view.score_note and view.error == ""


def test_an_analysis_error_becomes_a_message_and_the_view_recovers(
    attn_model, repeated, monkeypatch
):
    view = AttentionView(attn_model, repeated)
    import explorer.views.attention_view as module

    def broken(*args, **kwargs):
        raise RuntimeError("cache exploded")

    monkeypatch.setattr(module, "attention_patterns", broken)
    view.prompt = 2
    assert view.error == "RuntimeError: cache exploded"
    monkeypatch.undo()
    view.prompt = 4
    assert view.error == "" and view.tokens == attn_model.to_str_tokens(repeated[4])


def test_pattern_rows_sent_are_attention_distributions():
    # keys after the window's last query are cut (causal): each row still sums to 1
    model = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=30, n_ctx=32)
    view = AttentionView(model, repeated_tokens(2, 8, 30))
    rows = view.pattern.numpy().sum(-1)
    assert np.allclose(rows, 1.0, atol=1e-2)
