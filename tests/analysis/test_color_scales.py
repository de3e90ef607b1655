"""Color scales that compare (``analysis.color_scales``) and the views that use them.

Attribution patching (±0.01) was drawn as strong as exact patching (±0.10) because each
view scaled to its own extremes, with nothing marking the estimate; the head-score scale
started at its minimum while the random baseline sat above it; path patching had no
legend. Now one fixed scale per quantity, approximations say so, baselines are marked, and
every legend says what each end means (as drawn: tests/browser/test_view_screenshots.py and
test_tokens_and_scales_drawn.py).
"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import metrics
from explorer.analysis.color_scales import (
    head_score_color_scale,
    patching_color_scale,
    path_patching_color_scale,
)
from explorer.analysis.head_scores import head_scores, uniform_baseline
from explorer.data import repeated_tokens
from explorer.views import AttentionView, PatchingView


def test_uniform_baseline_is_the_score_of_uniform_attention():
    tokens = repeated_tokens(3, 6, 20, seed=0)  # [BOS][6][6]: induction queries 7..12
    by_hand = sum(1 / (q + 1) for q in range(7, 13)) / 6
    assert uniform_baseline(tokens, "induction") == pytest.approx(by_hand, rel=1e-6)
    n = tokens.shape[1]
    assert uniform_baseline(tokens, "previous_token") == pytest.approx(
        sum(1 / (q + 1) for q in range(1, n)) / (n - 1), rel=1e-6
    )


def test_head_scores_carry_their_baselines(attn_model):
    tokens = repeated_tokens(4, 8, 30, seed=1)
    scores = head_scores(attn_model, tokens)
    assert len(scores.baselines) == len(scores.names)
    for name, baseline in zip(scores.names, scores.baselines):
        assert baseline == pytest.approx(uniform_baseline(tokens, name), rel=1e-6)
    induction = scores.baselines[scores.names.index("induction")]
    assert "random baseline (uniform attention): previous_token" in scores._repr_html_()
    assert f"induction {induction:.3g}" in scores._repr_html_()


def test_exact_and_attribution_patching_share_one_scale_and_the_estimate_says_so(attn_model):
    clean = repeated_tokens(4, 5, 30, seed=0)
    corrupted = clean.clone()
    corrupted[:, 1:6] = repeated_tokens(4, 5, 30, seed=1)[:, 1:6]
    view = PatchingView(
        attn_model,
        clean,
        corrupted=corrupted,
        metric=metrics.repeated_half_loss(clean),
        grid="head",
    )
    exact = dict(view.color_scale)
    view.method = "attribution"
    estimate = dict(view.color_scale)
    assert (exact["vmin"], exact["vmax"]) == (estimate["vmin"], estimate["vmax"]) == (-1.0, 1.0)
    assert not exact["approximate"] and estimate["approximate"]
    assert "approximation" in estimate["note"] and "estimated" in estimate["label"]
    for scale in (exact, estimate):
        assert "better" in scale["low"] + scale["high"]  # which way is better, in words
    view.cell = [1, 0]
    view.grid = "path"
    path = view.color_scale
    assert path["low"].startswith("the path carries the effect") and path["high"]
    assert (path["vmin"], path["vmax"]) == (-1.0, 1.0)


def test_values_beyond_the_scale_are_named():
    scale = patching_color_scale(torch.tensor([0.1, -2.5, 1.2]), method="activation")
    assert scale.note == "2 cell(s) beyond ±1 (up to 2.5) are drawn at the ends of the scale"
    assert path_patching_color_scale(torch.tensor([0.5])).note == ""
    with pytest.raises(ValueError, match="method"):
        patching_color_scale(torch.tensor([0.0]), method="exact")


def test_head_score_scale_starts_at_zero_and_marks_the_baseline(attn_model):
    tokens = repeated_tokens(4, 8, 30, seed=1)
    view = AttentionView(attn_model, tokens)
    assert [s["label"] for s in view.score_scales] == [f"{k} score" for k in view.score_names]
    for kind, scale in zip(view.score_names, view.score_scales):
        assert (scale["vmin"], scale["vmax"]) == (0.0, 1.0)
        assert scale["baseline"] == pytest.approx(uniform_baseline(tokens, kind), rel=1e-6)
        assert "uniform attention" in scale["baseline_label"]
    assert head_score_color_scale("induction", baseline=0.125).baseline_label == (
        "uniform attention: 0.12"
    )
