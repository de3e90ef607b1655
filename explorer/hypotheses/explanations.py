"""Simple explanations of a unit, formed from its activations and turned into predictions.

An ``Explanation`` says where a unit (a neuron, an SAE feature) fires, in a form a machine
can simulate: its top tokens (``kind="tokens"``: the unit's mean activation on each of the
``n`` tokens it likes most), its top n-grams (``kind="ngrams"``: the ``length`` tokens
ending at the position), or a regular expression over the text just before the position
(``kind="regex"``, written by a person with ``regex_explanation`` or formed from the top
tokens). ``simulate`` predicts the unit's activation at every token from the explanation
alone, and ``simulation_score`` is the correlation of that prediction with the real
activations: the explain-simulate-score protocol of Bills et al. (2023), with a table or a
regex in place of the language model that writes and simulates the explanation. Scores
mean something only on text the explanation was not formed on:
``explanation_scores.explain_units`` keeps the two apart.

>>> tokens = torch.tensor([[1, 2, 3, 2], [2, 0, 2, 1]])
>>> acts = (tokens == 2).float() * 3.0
>>> e = form_explanation(tokens, acts, n=1, unit="neuron 0.5")
>>> e.text, e.simulate(tokens).tolist()[0]
('fires on 2 (+3)', [0.0, 3.0, 0.0, 3.0])
>>> round(simulation_score(e.simulate(tokens), acts), 6)
1.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int

from explorer._checks import check_choice, check_positive
from explorer._display import RecordShown

__all__ = [
    "KINDS",
    "Explanation",
    "form_explanation",
    "regex_explanation",
    "simulation_score",
]

KINDS = ("tokens", "ngrams", "regex")
MIN_COUNT = 2  # a token or n-gram seen fewer times on the formation split says nothing
WINDOW = 8  # tokens of context a regex reads, ending at the position scored


@dataclass(frozen=True, repr=False)
class Explanation(RecordShown):
    """Where one unit fires, as a lookup table of token n-grams or as a regex.

    ``keys[i]`` (token ids, the last one at the position) predicts ``values[i]``; positions
    no key matches predict ``default``. A regex explanation predicts 1 where ``pattern``
    matches the text ending at the token and 0 elsewhere. ``formed_on`` lists the example
    indices (of the data it was formed from) it saw: scoring refuses those.
    """

    unit: str
    kind: str
    text: str
    keys: tuple[tuple[int, ...], ...] = ()
    values: tuple[float, ...] = ()
    default: float = 0.0
    pattern: str = ""
    author: str = "explainer"
    formed_on: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        if len(self.keys) != len(self.values):
            raise ValueError(f"{len(self.keys)} keys but {len(self.values)} values")
        if self.kind == "regex":
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise ValueError(
                    f"pattern {self.pattern!r} is not a regular expression: {err}"
                ) from err

    def _fields(self) -> list[tuple[str, Any]]:
        return [("unit", self.unit), ("kind", self.kind), ("text", self.text),
                ("author", self.author), ("formed_on", len(self.formed_on))]  # fmt: skip

    def matches(
        self, tokens: Int[torch.Tensor, "batch pos"], *, vocab: Sequence[str] | None = None
    ) -> torch.Tensor:
        """``[batch, pos]`` bool: where a key (or the regex) matches: where the explanation
        says the unit fires."""
        return self._simulate(tokens, vocab)[1]

    def simulate(
        self, tokens: Int[torch.Tensor, "batch pos"], *, vocab: Sequence[str] | None = None
    ) -> Float[torch.Tensor, "batch pos"]:
        """The activation this explanation predicts at every token (``vocab``: each token
        id's text, needed by a regex)."""
        return self._simulate(tokens, vocab)[0]

    def _simulate(
        self, tokens: torch.Tensor, vocab: Sequence[str] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = _check_tokens(tokens)
        if self.kind == "regex":
            hit = _regex_hits(self.pattern, tokens, vocab)
            return hit.float(), hit
        predicted = torch.full(tokens.shape, float(self.default))
        hit = torch.zeros(tokens.shape, dtype=torch.bool)
        # shorter keys first so that the longest matching n-gram decides
        for key, value in sorted(zip(self.keys, self.values), key=lambda kv: len(kv[0])):
            where = _ngram_hits(tokens, key)
            predicted[where] = float(value)
            hit |= where
        return predicted, hit


def _check_tokens(tokens: object) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype.is_floating_point:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be integer token ids [batch, pos], got {got}")
    return tokens.long()


def _ngram_hits(tokens: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``[batch, pos]``: the ``len(key)`` tokens ending at each position equal ``key``."""
    length = len(key)
    hit = torch.zeros(tokens.shape, dtype=torch.bool)
    if length > tokens.shape[1]:
        return hit
    run = torch.ones(tokens.shape[0], tokens.shape[1] - length + 1, dtype=torch.bool)
    for offset, token in enumerate(key):
        run &= tokens[:, offset : tokens.shape[1] - length + 1 + offset] == token
    hit[:, length - 1 :] = run
    return hit


def _regex_hits(pattern: str, tokens: torch.Tensor, vocab: Sequence[str] | None) -> torch.Tensor:
    if vocab is None:
        raise ValueError("a regex explanation reads text: give vocab (model.token_strings())")
    ended = re.compile(f"(?:{pattern})\\Z", re.S)
    hit = torch.zeros(tokens.shape, dtype=torch.bool)
    for b, row in enumerate(tokens.tolist()):
        pieces = [vocab[t] if 0 <= t < len(vocab) else "" for t in row]
        for p in range(len(pieces)):
            hit[b, p] = ended.search("".join(pieces[max(0, p - WINDOW + 1) : p + 1])) is not None
    return hit


def _check_pair(tokens: torch.Tensor, acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = _check_tokens(tokens)
    if not isinstance(acts, torch.Tensor) or acts.shape != tokens.shape:
        got = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
        raise ValueError(f"activations must match tokens {tuple(tokens.shape)}, got {got}")
    acts = acts.detach().double()
    if not torch.isfinite(acts).all():
        raise ValueError("activations contain NaN or infinite values")
    return tokens, acts


def form_explanation(
    tokens: Int[torch.Tensor, "batch pos"],
    acts: Float[torch.Tensor, "batch pos"],
    *,
    kind: str = "tokens",
    n: int = 10,
    length: int = 2,
    unit: str = "",
    vocab: Sequence[str] | None = None,
    formed_on: Sequence[int] = (),
) -> Explanation:
    """The explanation of a unit formed from its activations ``acts`` on ``tokens`` (the
    formation split): the ``n`` tokens (``kind="tokens"``) or ``length``-grams
    (``"ngrams"``) with the highest mean activation among those seen at least twice, each
    predicting that mean; elsewhere the mean of the rest. ``kind="regex"`` writes the top
    tokens' text as one alternation (needs ``vocab``).

    >>> t = torch.tensor([[5, 6, 5, 6, 7]])
    >>> form_explanation(t, (t == 6).float() * (torch.arange(5) > 0), kind="ngrams", n=1).keys
    ((5, 6),)
    """
    check_choice("kind", kind, KINDS)
    check_positive("n", n)
    check_positive("length", length)
    tokens, acts = _check_pair(tokens, acts)
    size = 1 if kind in ("tokens", "regex") else length
    if size > tokens.shape[1]:
        raise ValueError(f"{size}-grams need sequences of >= {size} tokens, got {tokens.shape[1]}")
    grams = tokens.unfold(1, size, 1).reshape(-1, size)  # [batch * (pos - size + 1), size]
    values = acts[:, size - 1 :].reshape(-1)
    if size == 1:  # the same groups as unique(dim=0), 50x faster (simulation_scores: per unit)
        found, inverse, counts = grams[:, 0].unique(return_inverse=True, return_counts=True)
        found = found[:, None]
    else:
        found, inverse, counts = grams.unique(dim=0, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(found), dtype=torch.float64).index_add_(0, inverse, values)
    means = sums / counts
    eligible = (counts >= MIN_COUNT).nonzero().flatten()
    order = eligible[means[eligible].argsort(descending=True, stable=True)][:n]
    keys = tuple(tuple(int(t) for t in found[i]) for i in order)
    chosen = torch.zeros(len(found), dtype=torch.bool)
    chosen[order] = True
    rest = values[~chosen[inverse]]
    default = float(rest.mean()) if rest.numel() else 0.0
    mean_values = tuple(round(float(means[i]), 6) for i in order)

    def show(key: tuple[int, ...]) -> str:
        return "".join(vocab[t] for t in key) if vocab is not None else " ".join(map(str, key))

    shown = [repr(show(k)) if vocab is not None else show(k) for k in keys]
    text = "fires on " + ", ".join(f"{s} ({v:+.3g})" for s, v in zip(shown, mean_values))
    if kind == "regex":
        if vocab is None:
            raise ValueError("a regex explanation is text: give vocab (model.token_strings())")
        pattern = "|".join(re.escape(vocab[k[0]]) for k in keys if vocab[k[0]])
        return Explanation(unit, "regex", f"/{pattern}/", pattern=pattern or "(?!)",
                           formed_on=tuple(formed_on))  # fmt: skip
    return Explanation(
        unit, kind, text, keys, mean_values, round(default, 6), formed_on=tuple(formed_on)
    )


def regex_explanation(pattern: str, *, unit: str = "", author: str = "explainer") -> Explanation:
    """A person's explanation of ``unit`` as a regex over the text ending at each token:
    "fires on an opening quote" is ``regex_explanation(r"[\\"']$", unit="neuron 0.12")``.

    >>> e = regex_explanation(r"\\bif", unit="neuron 0.3", author="ana")
    >>> e.simulate(torch.tensor([[0, 1, 2]]), vocab=["x", " if", " y"]).tolist()
    [[0.0, 1.0, 0.0]]
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty regular expression, got {pattern!r}")
    return Explanation(unit, "regex", f"/{pattern}/", pattern=pattern, author=author)


def simulation_score(
    predicted: Float[torch.Tensor, "batch pos"], acts: Float[torch.Tensor, "batch pos"]
) -> float:
    """The Pearson correlation between predicted and real activations over every token
    (Bills et al.'s correlation scoring); 0 when either is constant (the explanation, or
    the unit, says nothing there).

    >>> round(simulation_score(torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.1, 2.0, 0.3])), 3)
    0.995
    """
    if predicted.shape != acts.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and real {tuple(acts.shape)} differ")
    x, y = predicted.detach().double().flatten(), acts.detach().double().flatten()
    if x.numel() < 2:
        raise ValueError("a simulation score needs at least two tokens")
    x, y = x - x.mean(), y - y.mean()
    scale = float(x.norm() * y.norm())
    if scale < 1e-12:
        return 0.0
    return float(x @ y) / scale
