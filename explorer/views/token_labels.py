"""How a token is written on the page: the one place that turns token strings into labels.

Every view that shows tokens (AttentionView's axes, NeuronView's examples, LogitLensView's
cells, PatchingView's prompts and rows, TokenAttributionView, LogitAttributionView) sends its
token strings unchanged and, beside them, ``token_labels``: a map from each string to its
label, built here. The page (``exToken``/``exTokenLabel`` in ``_common.js``) writes the
label, shows the tokens of a text contiguously with a faint mark at each boundary, and
gives the raw token (its JSON repr) as the tooltip. So whitespace looks the same in every
view, a word split into pieces reads as one word, and nothing is cut short.

Marks: ``·`` a space, ``⏎`` a newline, ``→`` a tab, ``␍`` a carriage return, ``⍽`` a
no-break space, ``∅`` the empty string; any other whitespace or control character is
written as its escape (``\\x0b``, ``\\u2009``). Other text, ``<|bos|>`` included, is kept.

>>> token_label(" the")
'·the'
>>> token_label("\\n    ")
'⏎····'
>>> token_labels([" a", "b"], [["\\t"]])
{' a': '·a', 'b': 'b', '\\t': '→'}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import traitlets

from explorer.views._base import ExplorerWidget

MARKS = {
    " ": "·",
    "\n": "⏎",
    "\t": "→",
    "\r": "␍",
    "\u00a0": "⍽",
}
EMPTY = "∅"


def _mark(char: str) -> str:
    if char in MARKS:
        return MARKS[char]
    if char.isspace() or not char.isprintable():
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def token_label(token: str) -> str:
    """The label a view writes for ``token`` (see the module docstring for the marks).

    >>> token_label("<|bos|>"), token_label(""), token_label("a\\u2009b")
    ('<|bos|>', '∅', 'a\\\\u2009b')
    """
    if not isinstance(token, str):
        raise TypeError(f"token_label takes a token string, got {type(token).__name__}")
    if token == "":
        return EMPTY
    return "".join(_mark(c) for c in token)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    else:
        for item in value:
            yield from _strings(item)


def token_labels(*token_lists: Any) -> dict[str, str]:
    """``{token: token_label(token)}`` for every string in ``token_lists`` (lists, nested
    lists of strings): the map a view sends as its ``token_labels`` trait."""
    return {t: token_label(t) for lists in token_lists for t in _strings(lists)}


class _ShowsTokens(ExplorerWidget):
    """A view that shows tokens: ``token_labels`` follows the traits named in
    ``_token_traits`` (lists, or lists of lists, of token strings)."""

    _token_traits: tuple[str, ...] = ()

    token_labels = traitlets.Dict(
        help="label of each token string shown (explorer.views.token_labels.token_label)"
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observe(self._label_tokens, names=list(self._token_traits))
        self._label_tokens()

    def _label_tokens(self, change: dict[str, Any] | None = None) -> None:
        self.token_labels = token_labels(*(getattr(self, name) for name in self._token_traits))
