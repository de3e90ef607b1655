"""Explanations of a model's units, formed on one split of the text and scored on another.

``explain_units`` splits ``inputs`` (seeded) into a formation and a held-out split, forms
each unit's explanation (``explanations.form_explanation``) from its activations on the
formation split only, and scores it by simulation on the held-out split only: the
explain-simulate-score protocol of Bills et al. (2023) with a non-LLM explainer.
``score_explanations`` scores explanations people wrote (regexes, token lists) on a
held-out split, refusing any example an explanation was formed on, and
``explanation_labels`` turns several people's explanations of one unit into ``Label``s
("fires" / "silent" at each token) for ``agreement``: how much the people agree.

A unit here is anything with an activation at each token: a ``Neuron``, or an SAE
feature (any unit with an ``activations(model, inputs, batch_size=...)`` method).

>>> from explorer.models import zoo
>>> m = zoo.modular_addition_transformer(p=7, d_model=8)
>>> tokens = torch.randint(0, 7, (40, 3), generator=torch.Generator().manual_seed(0))
>>> s = explain_units(m, tokens, units=["neuron 0.1", "neuron 0.2"], n=3)
>>> len(s.scores), len(s.formation) + len(s.held_out)
(2, 40)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_positive
from explorer._display import Shown, num, pandas
from explorer.analysis.neurons import layer_activations
from explorer.analysis.units import Neuron, parse_unit
from explorer.hypotheses.agreement import Label
from explorer.hypotheses.examples import Split, check_disjoint, split_examples
from explorer.hypotheses.explanations import Explanation, form_explanation, simulation_score
from explorer.models.handle import ModelHandle

__all__ = [
    "ExplanationScores",
    "explain_units",
    "explanation_labels",
    "score_explanations",
    "unit_activations",
]


@torch.no_grad()
def unit_activations(
    model: ModelHandle, inputs: torch.Tensor, *, unit: Any, batch_size: int = 256
) -> Float[torch.Tensor, "batch pos"]:
    """One unit's activation at every token of ``inputs`` ``[batch, pos]``: a neuron's
    (``"neuron 0.5"``), or a feature's (a unit with an ``activations`` method).

    >>> from explorer.models import zoo
    >>> m = zoo.modular_addition_transformer(p=7, d_model=8)
    >>> tuple(unit_activations(m, torch.zeros(2, 3, dtype=torch.long), unit="neuron 0.4").shape)
    (2, 3)
    """
    check_positive("batch_size", batch_size)
    tokens = _tokens(model, inputs)
    if hasattr(unit, "activations"):
        acts = unit.activations(model, tokens, batch_size=batch_size)
    else:
        parsed = parse_unit(unit)
        if not isinstance(parsed, Neuron):
            raise ValueError(
                f"{parsed} has no single activation per token: explanations are of neurons "
                "('neuron 0.5') or SAE features"
            )
        layer, neuron = model.check_neuron(parsed.layer, parsed.neuron)
        table = layer_activations(model, tokens, layer=layer, batch_size=batch_size)
        acts = table.reshape(*tokens.shape, -1)[..., neuron]
    return acts.detach().float()


def _tokens(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    if not model.is_transformer:
        raise ValueError(f"{model.name} takes images: explanations read token text")
    tokens = model.check_inputs(inputs)
    if tokens.ndim != 2:
        raise ValueError(f"inputs must be token ids [batch, pos], got {tuple(tokens.shape)}")
    return tokens


def _name(unit: Any) -> str:
    return str(unit if hasattr(unit, "activations") else parse_unit(unit))


@dataclass(frozen=True, repr=False)
class ExplanationScores(Shown):
    """Each explanation and its simulation score on the held-out split alone.

    ``scores[i]`` is the correlation between what ``explanations[i]`` predicts and the
    unit's real activation over every token of ``held_out`` (``n_tokens`` of them); the
    explanations were formed on ``formation`` (empty for explanations people wrote).
    """

    explanations: tuple[Explanation, ...]
    scores: tuple[float, ...]
    formation: Split | None
    held_out: Split
    n_tokens: int

    def score_of(self, unit: Any) -> float:
        """The held-out score of ``unit``'s (first) explanation."""
        name = _name(unit)
        for e, s in zip(self.explanations, self.scores):
            if e.unit == name:
                return s
        raise KeyError(f"no explanation of {name}: have {[e.unit for e in self.explanations]}")

    def _summary(self) -> str:
        mean = sum(self.scores) / len(self.scores)
        return (
            f"{len(self.scores)} explanations, mean held-out score {num(mean)} over "
            f"{self.n_tokens} tokens of {len(self.held_out)} held-out examples"
        )

    def _top(self) -> list[str]:
        order = sorted(range(len(self.scores)), key=lambda i: -self.scores[i])[:3]
        return [f"{self.explanations[i].unit} {num(self.scores[i])}" for i in order]

    def _table(self) -> tuple:
        rows = [(e.unit, e.author, s, e.text[:80]) for e, s in zip(self.explanations, self.scores)]
        note = f"scored on {self.held_out.describe()}"
        return (
            "Explanation scores (held out)",
            ("unit", "author", "score", "explanation"),
            rows,
            note,
        )

    def to_dataframe(self) -> Any:
        """One row per explanation: unit, author, kind, explanation, score, n_formation,
        n_held_out."""
        n_formation = len(self.formation) if self.formation is not None else 0
        return pandas().DataFrame(
            [
                {"unit": e.unit, "author": e.author, "kind": e.kind, "explanation": e.text,
                 "score": s, "n_formation": n_formation, "n_held_out": len(self.held_out)}
                for e, s in zip(self.explanations, self.scores)
            ]
        )  # fmt: skip


def _vocab(model: ModelHandle) -> tuple[str, ...]:
    return model.token_strings()


def explain_units(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    units: Sequence[Any] | Any,
    kind: str = "tokens",
    n: int = 10,
    length: int = 2,
    held_out: float = 0.5,
    seed: int = 0,
    batch_size: int = 256,
) -> ExplanationScores:
    """Form each unit's explanation on a formation split of ``inputs`` and score it on
    the held-out rest (``held_out`` of the examples, seeded by ``seed``).

    ``kind``, ``n`` and ``length`` are ``form_explanation``'s: the top ``n`` tokens,
    ``length``-grams, or a regex of the top tokens.
    """
    tokens = _tokens(model, inputs)
    formation, held = split_examples(len(tokens), held_out=held_out, seed=seed)
    if isinstance(units, (str, Neuron)) or hasattr(units, "activations"):
        units = [units]
    if not units:
        raise ValueError("units is empty: name at least one neuron or feature")
    vocab = _vocab(model)
    form_idx, held_idx = torch.tensor(formation.indices), torch.tensor(held.indices)
    explanations, scores = [], []
    for unit in units:
        name = _name(unit)
        acts = unit_activations(model, tokens[form_idx], unit=unit, batch_size=batch_size)
        explanation = form_explanation(
            tokens[form_idx], acts, kind=kind, n=n, length=length, unit=name, vocab=vocab,
            formed_on=formation.indices,
        )  # fmt: skip
        explanations.append(explanation)
        scores.append(_held_out_score(model, tokens, explanation, unit, held_idx, batch_size))
    return ExplanationScores(
        tuple(explanations), tuple(scores), formation, held, int(held_idx.numel()) * tokens.shape[1]
    )


def _held_out_score(
    model: ModelHandle,
    tokens: torch.Tensor,
    explanation: Explanation,
    unit: Any,
    held_idx: torch.Tensor,
    batch_size: int,
) -> float:
    held_tokens = tokens[held_idx]
    real = unit_activations(model, held_tokens, unit=unit, batch_size=batch_size)
    return simulation_score(explanation.simulate(held_tokens, vocab=_vocab(model)), real)


def _check_held_out(explanations: Sequence[Explanation], held_out: Split | None, n: int) -> Split:
    held = held_out if held_out is not None else Split(range(n), "held-out")
    held.check_within(n)
    for e in explanations:
        if e.formed_on:
            check_disjoint(Split(e.formed_on, f"formation of {e.author}'s {e.unit}"), held)
    return held


def score_explanations(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    unit: Any,
    explanations: Sequence[Explanation],
    held_out: Split | None = None,
    batch_size: int = 256,
) -> ExplanationScores:
    """Score explanations of one ``unit`` (several people's, say) by simulation on the
    ``held_out`` examples of ``inputs`` (all of them when None); an explanation formed on
    any of those examples is refused.
    """
    if not explanations:
        raise ValueError("explanations is empty: give at least one Explanation")
    tokens = _tokens(model, inputs)
    held = _check_held_out(explanations, held_out, len(tokens))
    held_idx = torch.tensor(held.indices)
    scores = tuple(
        _held_out_score(model, tokens, e, unit, held_idx, batch_size) for e in explanations
    )
    n_tokens = int(held_idx.numel()) * tokens.shape[1]
    return ExplanationScores(tuple(explanations), scores, None, held, n_tokens)


def explanation_labels(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    explanations: Sequence[Explanation],
    held_out: Split | None = None,
) -> list[Label]:
    """Each explanation's call at every token of the ``held_out`` examples, as ``Label``s
    for ``agreement``: the rater is the explanation's author, the item
    ``"example E position P"``, the label ``"fires"`` where the explanation matches
    (a key or its regex) and ``"silent"`` elsewhere.
    """
    if not explanations:
        raise ValueError("explanations is empty: give at least one Explanation")
    authors = [e.author for e in explanations]
    if len(set(authors)) != len(authors):
        raise ValueError(f"each explanation needs its own author (the rater), got {authors}")
    tokens = _tokens(model, inputs)
    held = _check_held_out(explanations, held_out, len(tokens))
    held_tokens = tokens[torch.tensor(held.indices)]
    labels = []
    for e in explanations:
        hits = e.matches(held_tokens, vocab=_vocab(model))
        for row, example in enumerate(held.indices):
            for position in range(hits.shape[1]):
                word = "fires" if bool(hits[row, position]) else "silent"
                labels.append(
                    Label(e.unit, e.author, word, f"example {example} position {position}")
                )
    return labels
