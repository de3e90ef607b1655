"""Views speak the glossary of docs/api.md (``inputs``, ``n``, ``position``, ``ablation``,
``granularity``, ``scores``; ``corrupted`` and ``metric`` keyword-only), and every old
spelling still works for one release: it warns, naming the new one, and gives the same
view."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

from explorer.analysis import metrics
from explorer.hypotheses import HypothesisStore
from explorer.models import zoo
from explorer.views import (
    AttentionView,
    HypothesisBoard,
    InterventionPanel,
    LogitAttributionView,
    LogitLensView,
    NeuronView,
    PatchingView,
    TokenAttributionView,
    show,
)

TOKENS = torch.tensor([[1, 4, 7, 4, 9, 2], [2, 3, 5, 3, 8, 6]])
CORRUPTED = TOKENS.flip(0)
METRIC = metrics.next_token_loss(TOKENS)


@pytest.fixture(scope="module")
def lm():
    return zoo.attention_only_transformer(n_layers=2, d_vocab=12, n_ctx=8, seed=0)


@pytest.fixture(scope="module")
def mlp():
    return zoo.mnist_mlp(hidden=(8,), seed=0)


def old_and_new(old, new):
    """Build with the old spelling (it must warn, naming the new one) and the new one."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = old()
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert messages and all("goes away in explorer 0.4" in m for m in messages), messages
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        after = new()
    return before, after, messages


def test_patching_view_takes_corrupted_and_metric_by_keyword(lm):
    params = inspect.signature(PatchingView.__init__).parameters
    assert params["inputs"].kind is params["inputs"].POSITIONAL_OR_KEYWORD
    assert params["corrupted"].kind is params["metric"].kind is params["metric"].KEYWORD_ONLY
    old, new, messages = old_and_new(
        lambda: PatchingView(lm, TOKENS, CORRUPTED, METRIC, grid="head"),
        lambda: PatchingView(lm, TOKENS, corrupted=CORRUPTED, metric=METRIC, grid="head"),
    )
    assert "write PatchingView(..., corrupted=..., metric=...)" in messages[0]
    assert np.array_equal(old.values.numpy(), new.values.numpy())
    named, _, _ = old_and_new(
        lambda: PatchingView(lm, clean=TOKENS, corrupted=CORRUPTED, metric=METRIC, grid="head"),
        lambda: new,
    )
    assert np.array_equal(named.values.numpy(), new.values.numpy())
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        PatchingView(lm, TOKENS, CORRUPTED, METRIC, "head")


def test_attention_view_scores_and_inputs(lm):
    old, new, messages = old_and_new(
        lambda: AttentionView(lm, tokens=TOKENS, kinds=("previous_token",)),
        lambda: AttentionView(lm, inputs=TOKENS, scores=("previous_token",)),
    )
    assert any("write AttentionView(scores=...)" in m for m in messages)
    assert old.score_names == new.score_names == ["previous_token"]
    with pytest.warns(DeprecationWarning, match="AttentionView.score_kinds is deprecated"):
        assert new.score_kinds == ["previous_token"]


def test_token_attribution_position_matches_logit_attribution(lm):
    for cls in (TokenAttributionView, LogitAttributionView):
        assert "position" in inspect.signature(cls.__init__).parameters
    old, new, messages = old_and_new(
        lambda: TokenAttributionView(lm, TOKENS, target=7, at=4, n_steps=4),
        lambda: TokenAttributionView(lm, TOKENS, target=7, position=4, n_steps=4),
    )
    assert "write TokenAttributionView(position=...)" in messages[0]
    assert new.target_position == 4 and np.array_equal(old.scores.numpy(), new.scores.numpy())


def test_logit_attribution_granularity_and_lens_n(lm):
    old, new, _ = old_and_new(
        lambda: LogitAttributionView(lm, TOKENS, target=7, units="layers"),
        lambda: LogitAttributionView(lm, TOKENS, target=7, granularity="layers"),
    )
    assert old.granularity == new.granularity == "layers" and old.labels == new.labels
    old, new, _ = old_and_new(
        lambda: LogitLensView(lm, TOKENS, k=2), lambda: LogitLensView(lm, TOKENS, n=2)
    )
    assert old.n == new.n == 2 and old.top_tokens == new.top_tokens


def test_intervention_panel_ablation_granularity_and_keyword_metric(lm):
    old, new, messages = old_and_new(
        lambda: InterventionPanel(lm, TOKENS, {"loss": METRIC}, kind="mean", units=["head 1.0"]),
        lambda: InterventionPanel(
            lm, TOKENS, metric={"loss": METRIC}, ablation="mean", units=["head 1.0"]
        ),
    )
    assert any("write InterventionPanel(..., metric=...)" in m for m in messages)
    assert any("write InterventionPanel(ablation=...)" in m for m in messages)
    assert old.after_mean == new.after_mean and new.ablation == "mean"
    with pytest.warns(DeprecationWarning, match="write InterventionPanel.ablation"):
        new.kind = "zero"
    assert new.ablation == "zero"
    with pytest.warns(DeprecationWarning, match="write InterventionPanel.granularity"):
        assert new.unit_type == "head"


def test_neuron_view_inputs_and_n(mlp):
    images = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    old, new, _ = old_and_new(
        lambda: NeuronView(mlp, data=images, k=3), lambda: NeuronView(mlp, inputs=images, n=3)
    )
    assert old.n == new.n == 3 and np.array_equal(old.top_values.numpy(), new.top_values.numpy())


def test_show_board_and_set_model_take_inputs(lm):
    old, new, _ = old_and_new(lambda: show(lm, data=TOKENS), lambda: show(lm, inputs=TOKENS))
    assert [old.get_title(i) for i in range(3)] == [new.get_title(i) for i in range(3)]
    store = HypothesisStore(":memory:")
    old, new, _ = old_and_new(
        lambda: HypothesisBoard(store, "p", model=lm, data=TOKENS),
        lambda: HypothesisBoard(store, "p", model=lm, inputs=TOKENS),
    )
    assert old.inputs is new.inputs is TOKENS
    with pytest.warns(DeprecationWarning, match=r"set_model\(inputs=...\)"):
        new.set_model(lm, data=CORRUPTED)
    assert new.inputs is CORRUPTED
