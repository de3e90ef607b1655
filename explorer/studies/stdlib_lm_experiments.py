"""Experiments of the standard-library LM tutorial: token concepts, neurons, repeated text.

What the tutorial asks of the trained model, as functions it and its tests share:

- ``CONCEPTS``: token-level concepts of Python source read from a token's own text
  (indentation, keywords, condition keywords, string quotes), and ``concept_mask``;
- ``neuron_concept_auroc``: how well each neuron of a layer, read at every token, separates a
  concept's tokens from the rest (AUROC over tokens; 0.5 is chance), to find detector neurons;
- ``last_token_examples``: windows cut to end at a random token, with the concept of that
  last token, so ``NeuronSelectivity`` tests a neuron read at the last position;
- ``repeated_text``: ``[BOS][span][same span]`` with spans of real held-out text, where an
  induction head can copy from the first copy;
- ``induction_examples`` and ``induction_head_dla``: predictions in the second copy (the
  answer is the next token of the first copy) and the heads' direct logit attribution to
  the answer, a measure a ``Hypothesis`` stores by name;
- ``pick_induction_prediction``: one such prediction to explain end to end, one the model
  gets right only because of the repeat;
- ``top_example_text``: a neuron's top-k examples as text, the top token in brackets.

>>> sorted(CONCEPTS)
['condition_keyword', 'indentation', 'keyword', 'string_quote']
>>> [CONCEPTS["keyword"](t) for t in (" return", "returned", "\\n    ")]
[True, False, False]
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int

from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas
from explorer.analysis.logit_attribution import direct_logit_attribution
from explorer.analysis.neurons import TopKExamples
from explorer.analysis.units import Head, Neuron, Unit
from explorer.hypotheses.examples import Examples
from explorer.models.handle import ModelHandle

__all__ = [
    "CONCEPTS",
    "ConceptNeurons",
    "concept_mask",
    "induction_examples",
    "induction_head_dla",
    "last_token_examples",
    "neuron_concept_auroc",
    "pick_induction_prediction",
    "repeated_text",
    "top_example_text",
]

_INDENT = re.compile(r"\n* {2,}")
_KEYWORDS = frozenset(keyword.kwlist)

#: A token's text -> whether it shows the concept.
CONCEPTS: dict[str, Callable[[str], bool]] = {
    # a run of two or more spaces, possibly after line breaks: the indentation of a line
    "indentation": lambda s: bool(_INDENT.fullmatch(s)),
    # a whole Python keyword, with or without the space before it
    "keyword": lambda s: s.lstrip(" ") in _KEYWORDS and s.strip() == s.lstrip(" "),
    # the keywords that open a condition (a narrower concept than any keyword)
    "condition_keyword": lambda s: s.lstrip(" ") in ("if", "elif", "while"),
    # a token holding a quote character: string and docstring delimiters
    "string_quote": lambda s: "'" in s or '"' in s,
}


def _concept(name: str) -> Callable[[str], bool]:
    if name not in CONCEPTS:
        raise ValueError(f"unknown concept {name!r}: choose one of {', '.join(sorted(CONCEPTS))}")
    return CONCEPTS[name]


@renamed_arguments(tokens="inputs")
def concept_mask(
    model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"], concept: str
) -> Bool[torch.Tensor, "batch pos"]:
    """Which tokens of ``inputs`` show ``concept`` (read from the model's vocab: each token's text)."""
    test = _concept(concept)
    if model.vocab is None:
        raise ValueError(f"{model.name} has no vocab of token texts to read concepts from")
    table = torch.tensor([test(s) for s in model.vocab], dtype=torch.bool)
    return table[model.check_inputs(inputs)]


def _auroc(
    values: Float[torch.Tensor, "n unit"], positive: Bool[torch.Tensor, " n"]
) -> torch.Tensor:
    """AUROC of each column of ``values`` as a detector of ``positive`` (ties averaged)."""
    n_pos, n = int(positive.sum()), len(positive)
    if n_pos == 0 or n_pos == n:
        raise ValueError(f"an AUROC needs positives and negatives; got {n_pos} of {n} positive")
    # one sort per column (each column laid out contiguously: twice as fast as sorting
    # along dim 0); a run of tied values takes its positions' mean rank, (first + last) / 2
    # + 1, found for all columns at once (a loop of torch.unique over the columns took most
    # of the time: ties are rare with gelu, but one tie anywhere set it off). Ranks are
    # whole or half numbers, so their sums are exact in float64 in any order.
    columns = values.T.contiguous()
    order = columns.argsort(1)
    ordered = columns.gather(1, order)
    position = torch.arange(n).expand_as(ordered)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, position, 0).cummax(1).values
    last = torch.where(ends, position, n - 1).flip(1).cummin(1).values.flip(1)
    ranks = torch.empty_like(columns, dtype=torch.float64)
    ranks.scatter_(1, order, (first + last).double() / 2 + 1)
    pos_ranks = ranks[:, positive].sum(1)
    return (pos_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))


@dataclass(frozen=True, repr=False)
class ConceptNeurons(Shown):
    """For one concept and layer: every neuron's AUROC as a detector, read at every token."""

    concept: str
    layer: int
    auroc: Float[torch.Tensor, " d_mlp"]
    n_tokens: int
    n_positive: int

    def top(self, n: int = 3) -> list[tuple[Neuron, float]]:
        """The ``n`` neurons that detect the concept best, as ``(Neuron, auroc)``."""
        values, index = self.auroc.topk(min(n, len(self.auroc)))
        return [(Neuron(self.layer, int(i)), float(v)) for v, i in zip(values, index)]

    def to_dataframe(self) -> Any:
        """One row per neuron of the layer: ``layer``, ``neuron`` and its ``auroc``."""
        return pandas().DataFrame(
            {
                "layer": self.layer,
                "neuron": range(len(self.auroc)),
                "auroc": self.auroc.detach().double().numpy(),
            }
        )

    def _summary(self) -> str:
        return (
            f"{self.concept!r}, layer {self.layer}, {self.n_positive}/{self.n_tokens} tokens "
            "positive"
        )

    def _top(self) -> list[str]:
        return [f"{u.layer}.{u.neuron}: {v:.3f}" for u, v in self.top(3)]

    def _table(self) -> tuple:
        rows = [(str(u), v) for u, v in self.top(MAX_ROWS)]
        note = f"{self.n_positive} of {self.n_tokens} tokens show {self.concept!r}; best first"
        return f"Neurons detecting {self.concept!r}", ("neuron", "AUROC"), rows, note


@renamed_arguments(tokens="inputs")
@torch.no_grad()
def neuron_concept_auroc(
    model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"], *, layer: int, concept: str
) -> ConceptNeurons:
    """Every neuron of ``layer`` as a detector of ``concept``, over all tokens of ``inputs`` but BOS."""
    model.check_layer(layer)
    inputs = model.check_inputs(inputs)
    mask = concept_mask(model, inputs, concept)[:, 1:].reshape(-1)
    name = model.hook_name("post", layer)
    _, cache = model.cache_pass(inputs, names=[name])
    acts = cache[name][:, 1:].reshape(-1, cache[name].shape[-1]).double()
    return ConceptNeurons(concept, layer, _auroc(acts, mask).float(), len(mask), int(mask.sum()))


@renamed_arguments(tokens="inputs")
def last_token_examples(
    model: ModelHandle,
    inputs: Int[torch.Tensor, "batch pos"],
    *,
    length: int,
    concept: str,
    seed: int = 0,
) -> Examples:
    """Cut each window to ``[BOS] + length - 1`` tokens ending at a random token.

    ``Examples.concept`` says whether that last token shows ``concept``; test a neuron on
    them at position ``length - 1`` (``Neuron(layer, n, position=length - 1)``).
    """
    inputs = model.check_inputs(inputs)
    n, width = inputs.shape
    if not 2 <= length <= width:
        raise ValueError(f"length must be between 2 and the windows' {width} tokens, got {length}")
    gen = torch.Generator().manual_seed(seed)
    ends = torch.randint(length - 1, width, (n,), generator=gen)  # index of the last token
    index = ends[:, None] - torch.arange(length - 2, -1, -1)[None, :]
    body = inputs.gather(1, index)
    cut = torch.cat([inputs[:, :1], body], dim=1)
    return Examples(cut, concept=concept_mask(model, cut, concept)[:, -1])


def repeated_text(
    tokens: Int[torch.Tensor, "batch pos"], half_len: int
) -> Int[torch.Tensor, "batch pos2"]:
    """``[BOS][span][same span]`` from windows ``[BOS] + text``: the span is the window's
    first ``half_len`` text tokens, so an induction head can copy the second copy's tokens."""
    if not 1 <= half_len < tokens.shape[1]:
        raise ValueError(f"half_len must be between 1 and {tokens.shape[1] - 1}, got {half_len}")
    span = tokens[:, 1 : 1 + half_len]
    return torch.cat([tokens[:, :1], span, span], dim=1)


def induction_examples(
    tokens: Int[torch.Tensor, "batch pos"], half_len: int, copied: int
) -> Examples:
    """Predictions inside the second copy of ``[BOS][span][span]``, one per window.

    Each example is ``[BOS][span][the span's first copied tokens]``; ``labels`` is the
    span's next token, which the first copy shows. The last position is the one to explain.
    """
    if not 1 <= copied < half_len:
        raise ValueError(
            f"copied must be between 1 and half_len - 1 = {half_len - 1}, got {copied}"
        )
    rep = repeated_text(tokens, half_len)
    end = 1 + half_len + copied
    return Examples(rep[:, :end].clone(), labels=rep[:, end].clone())


def induction_head_dla(
    model: ModelHandle, examples: Examples, units: tuple[Unit, ...]
) -> torch.Tensor:
    """The heads' summed direct logit attribution to ``examples.labels`` at the last position."""
    labels = examples.require("labels", "induction_head_dla")
    heads = [u for u in units if isinstance(u, Head)]
    if len(heads) != len(units):
        raise ValueError(f"induction_head_dla takes heads, got {[str(u) for u in units]}")
    dla = direct_logit_attribution(model, examples.inputs, target=labels, granularity="head")
    columns = [dla.labels.index(f"L{h.layer}H{h.head}") for h in heads]
    return dla.values[:, columns].sum(1)


@renamed_arguments(tokens="inputs")
@torch.no_grad()
def pick_induction_prediction(
    model: ModelHandle, inputs: Int[torch.Tensor, "batch pos"], half_len: int, *, min_chars: int = 3
) -> tuple[int, int, int]:
    """One prediction that the repeat makes: ``(example, position, answer id)``.

    In ``repeated_text(inputs, half_len)``, the first position of the second copy where the
    model's top prediction is right, the answer is a word-like token of ``min_chars`` or
    more letters, and the same prediction in the first copy was wrong (so the model needed
    the repeat to make it).
    """
    rep = repeated_text(inputs, half_len)
    logits = model(rep)
    guess = logits.argmax(-1)
    vocab = model.vocab or ()
    for i in range(len(rep)):
        for pos in range(half_len + 1, 2 * half_len):
            answer = int(rep[i, pos + 1])
            first = pos - half_len  # the same prediction in the first copy
            word = vocab[answer].strip() if vocab else ""
            if (
                int(guess[i, pos]) == answer
                and int(guess[i, first]) != answer
                and len(word) >= min_chars
                and word.isidentifier()
            ):
                return i, pos, answer
    raise ValueError("no prediction in these windows is made right by the repeat alone")


@renamed_arguments(top="examples")
@renamed_arguments(tokens="inputs")
def top_example_text(
    model: ModelHandle,
    examples: TopKExamples,
    inputs: Int[torch.Tensor, "batch pos"],
    neuron: int,
    *,
    n: int = 5,
    before: int = 8,
    after: int = 2,
) -> list[str]:
    """The neuron's ``n`` top ``examples`` (a ``TopKExamples``) as text, ``⟦top token⟧``
    marked, with its activation."""
    out = []
    for example, pos, value in examples.of(neuron)[:n]:
        row = inputs[example]
        left = model.to_str_tokens(row[max(1, pos - before) : pos])
        right = model.to_str_tokens(row[pos + 1 : pos + 1 + after])
        mid = model.to_str_tokens(row[pos : pos + 1])[0]
        text = "".join(left) + "⟦" + mid + "⟧" + "".join(right)
        out.append(f"{value:6.2f}  {text!r}")
    return out
