"""One token renderer for every view: labels made in one place (``token_labels.py``), the
same marks in every view, the raw token in the tooltip.

Whitespace tokens were an empty box in AttentionView and NeuronView, sub-words were spaced
apart ("w ind ow s"), ``<|bos|>`` was clipped. Each view now sends its token strings with
``token_labels`` (raw -> label) and the page writes labels only through ``exToken`` /
``exTokenLabel`` (``_common.js``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import traitlets

import explorer.views
from explorer.analysis import metrics
from explorer.views import (
    AttentionView,
    LogitLensView,
    NeuronView,
    PatchingView,
    TokenAttributionView,
    token_label,
    token_labels,
)
from explorer.views.token_labels import _ShowsTokens

VIEWS = Path(explorer.views.__file__).parent
VOCAB = ("<|bos|>", " ", "\n", "\t", " the", "w", "ind", "ow", "s", "\r\n", "a\u00a0b", "\u2009")
VOCAB += tuple(f"t{i}" for i in range(30 - len(VOCAB)))


def test_marks_are_the_same_for_every_token():
    assert token_label(" ") == "·"
    assert token_label("\n") == "⏎"
    assert token_label("\t") == "→"
    assert token_label("\r\n") == "␍⏎"
    assert token_label(" the") == "·the"
    assert token_label("\n    x") == "⏎····x"
    assert token_label("a\u00a0b") == "a⍽b"
    assert token_label("\u2009") == "\\u2009"  # other whitespace: its escape
    assert token_label("\x00") == "\\x00"
    assert token_label("") == "∅"  # an empty token is still a visible box
    assert token_label("<|bos|>") == "<|bos|>"  # kept whole
    assert [token_label(t) for t in ("w", "ind", "ow", "s")] == ["w", "ind", "ow", "s"]
    assert token_labels([" a"], [["\t", " a"]]) == {" a": "·a", "\t": "→"}
    with pytest.raises(TypeError, match="token_label takes a token string, got int"):
        token_label(3)


@pytest.fixture(scope="module")
def lm():
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=30, n_ctx=16, seed=1, vocab=VOCAB
    )
    return zoo.transformer(cfg)


def _views(lm):
    tokens = torch.tensor(
        [[0, 1, 4, 2, 5, 6, 7, 8, 3, 9, 10, 11], [0, 5, 6, 7, 8, 1, 2, 3, 4, 9, 10, 11]]
    )
    corrupted = tokens.clone()
    corrupted[:, 2] = 12
    return {
        "AttentionView": AttentionView(lm, tokens),
        "NeuronView": NeuronView(lm, tokens, n=2, context=4, ablation_examples=2),
        "LogitLensView": LogitLensView(lm, tokens, target=" the"),
        "PatchingView": PatchingView(
            lm,
            tokens,
            corrupted=corrupted,
            metric=metrics.logit_diff(torch.tensor([4, 4]), torch.tensor([5, 5])),
        ),
        "TokenAttributionView": TokenAttributionView(lm, tokens, target=" the", n_steps=2),
    }


def _strings(value):
    if isinstance(value, str):
        yield value
    else:
        for item in value:
            yield from _strings(item)


def test_every_view_labels_its_tokens_through_token_label(lm):
    for name, view in _views(lm).items():
        shown = [t for trait in type(view)._token_traits for t in _strings(getattr(view, trait))]
        assert set(shown) & set(VOCAB[:4]), f"{name} shows none of the whitespace tokens"
        assert view.token_labels == {t: token_label(t) for t in shown}, name
        assert "·" in view.token_labels.values() or "⏎" in view.token_labels.values(), name
    neurons = _views(lm)["NeuronView"]
    assert set(neurons.effect_labels) <= set(neurons.token_labels)  # output tokens too
    lens = _views(lm)["LogitLensView"]
    lens.prompt = 1  # the labels follow the tokens shown
    assert set(lens.token_labels) == {
        t for trait in LogitLensView._token_traits for t in _strings(getattr(lens, trait))
    }


def test_patching_rows_and_columns_use_the_labels(lm):
    view = _views(lm)["PatchingView"]
    view.grid = "resid"
    assert view.col_labels[:4] == ["0 <|bos|>", "1 ·", "2 ·the", "3 ⏎"]


def _token_traits(cls):
    return [
        n
        for n, t in cls.class_traits(sync=True).items()
        if "token" in n and n != "token_labels" and isinstance(t, traitlets.List)
    ]


def test_every_view_that_sends_tokens_sends_their_labels():
    classes = [getattr(explorer.views, n) for n in explorer.views.__all__]
    widgets = [c for c in classes if isinstance(c, type) and issubclass(c, traitlets.HasTraits)]
    shows = [c for c in widgets if _token_traits(c)]
    assert {c.__name__ for c in shows} >= {
        "AttentionView", "NeuronView", "LogitLensView", "PatchingView", "TokenAttributionView"
    }  # fmt: skip
    for cls in shows:
        if cls.__name__ == "LogitAttributionView":
            continue  # sends its prompt's tokens for the kernel side only: the page shows none
        assert issubclass(cls, _ShowsTokens), cls.__name__
        assert set(_token_traits(cls)) <= set(cls._token_traits), cls.__name__


def test_the_page_writes_tokens_only_through_the_shared_renderer():
    """No view script builds its own token span or writes a token trait's text directly."""
    for path in sorted(VIEWS.glob("*.js")):
        if path.name == "_common.js":
            continue
        source = path.read_text()
        assert '"ex-token"' not in source and "'ex-token'" not in source, path.name
        reads = re.findall(r'model\.get\("(\w*tokens)"\)', source)
        if reads:
            assert "exToken" in source, f"{path.name} reads {reads} without exToken/exTokenLabel"
            # it redraws when token_labels changes: exMount redraws on any synced change
            assert "exMount(model" in source, f"{path.name} does not redraw on token_labels"
    common = (VIEWS / "_common.js").read_text()
    assert 'model.get("token_labels")' in common and "JSON.stringify" in common
