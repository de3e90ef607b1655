"""One bounded result cache for every view that keeps results (the patching, logit lens,
logit attribution and token attribution views): least recently used dropped first, at most
``RESULTS_KEPT`` results, dropped whole when the model changes."""

from __future__ import annotations

import pytest
import torch

from explorer.views import (
    LogitAttributionView,
    LogitLensView,
    PatchingView,
    TokenAttributionView,
    logit_lens_view,
)
from explorer.views._results import RESULTS_KEPT, ResultCache  # the cache itself

TOKENS = torch.tensor([[1, 4, 7, 4, 9, 2], [2, 3, 5, 3, 8, 6]])


def test_the_cache_keeps_the_most_recently_used_results():
    cache, computed = ResultCache(size=3), []

    def compute(key):
        computed.append(key)
        return key * 10

    for key in (1, 2, 3, 1, 4):  # 4 pushes out 2, the least recently used
        assert cache.get(key, lambda key=key: compute(key)) == key * 10
    assert computed == [1, 2, 3, 4] and list(cache) == [3, 1, 4]
    cache.get(2, lambda: compute(2))
    assert computed[-1] == 2 and len(cache) == 3
    with pytest.raises(ValueError, match="keeps at least 1 result, got size=0"):
        ResultCache(size=0)


def test_a_view_recomputes_only_what_fell_out_of_its_bounded_cache(attn_model, monkeypatch):
    calls = []
    real = logit_lens_view.logit_lens

    def counted(model, inputs, *, target=None, n=5):
        calls.append(target)
        return real(model, inputs, target=target, n=n)

    monkeypatch.setattr(logit_lens_view, "logit_lens", counted)
    view = LogitLensView(attn_model, TOKENS, n=3)
    targets = [str(t) for t in range(RESULTS_KEPT + 1)]
    for target in targets:
        view.target = target
    n = len(calls)
    view.target = targets[-2]  # recent: redrawn from the cache, no new pass
    assert len(calls) == n and view.error == ""
    view.target = targets[0]  # the oldest fell out: computed again
    assert len(calls) == n + 1


@pytest.mark.parametrize(
    ("build", "knob", "other"),
    [
        (lambda m: LogitLensView(m, TOKENS, n=3), "target", "5"),
        (lambda m: LogitAttributionView(m, TOKENS, target=7), "target", "8"),
        (lambda m: TokenAttributionView(m, TOKENS, target=7, n_steps=4), "target", "8"),
        (
            lambda m: PatchingView(
                m, TOKENS, corrupted=TOKENS.flip(0), metric=lambda x: x[:, -1, 0]
            ),
            "grid",
            "head",
        ),
    ],
    ids=["lens", "dla", "token_attribution", "patching"],
)
def test_every_caching_view_keeps_results_until_the_model_changes(attn_model, build, knob, other):
    """Shown again: no pass (kept). After ``set_model``: every result computed again."""
    view = build(attn_model)
    first = getattr(view, knob)

    def cost(value):
        passes = attn_model.spent.forward
        setattr(view, knob, value)
        assert view.error == ""
        return attn_model.spent.forward - passes

    assert cost(other) > 0 and cost(first) == 0 and cost(other) == 0  # both kept
    passes = attn_model.spent.forward
    view.set_model(attn_model)  # a new model: what was computed for the old one is dropped
    assert attn_model.spent.forward > passes  # the redraw computed the shown result again
    assert cost(first) > 0  # and the other one too
