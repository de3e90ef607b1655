"""Explanations formed on one split and scored by simulation on held-out text (issue 26)."""

from __future__ import annotations

import pytest
import torch

from explorer.hypotheses.agreement import agreement
from explorer.hypotheses.examples import Split
from explorer.hypotheses.explanation_scores import (
    explain_units,
    explanation_labels,
    score_explanations,
    unit_activations,
)
from explorer.hypotheses.explanations import (
    form_explanation,
    regex_explanation,
    simulation_score,
)
from explorer.models import zoo
from explorer.models.config import TransformerConfig

VOCAB = tuple(f" w{i}" for i in range(16))
TOKEN = 7  # the planted neuron fires on this token only
PLANTED = "neuron 0.5"


def planted_model():
    """1 layer, no attention output, one-hot embeddings: neuron 0.5 fires (3.0) on token 7
    and nowhere else; the other neurons keep random weights."""
    cfg = TransformerConfig(n_layers=1, d_model=32, n_heads=2, d_vocab=16, n_ctx=16, d_mlp=16,
                            vocab=VOCAB, seed=0)  # fmt: skip
    model = zoo.transformer(cfg, name="planted-token-neuron")
    embed = torch.zeros(16, 32)
    embed[:, :16] = torch.eye(16)
    model.set_weight("embed", embed)
    model.set_weight("pos_embed", torch.zeros(16, 32))
    model.set_weight("attn_out", torch.zeros_like(model.weight("attn_out", 0)), 0)
    model.set_weight("attn_out_bias", torch.zeros(32), 0)
    mlp_in = model.weight("mlp_in", 0).clone()  # the MLP's input bias starts at 0
    mlp_in[:, 5] = 0.0
    mlp_in[TOKEN, 5] = 3.0
    model.set_weight("mlp_in", mlp_in, 0)
    return model


def text(n=200, seq=12, seed=0):
    return torch.randint(0, 16, (n, seq), generator=torch.Generator().manual_seed(seed))


def test_a_planted_unit_scores_near_one_held_out():
    model, tokens = planted_model(), text()
    acts = unit_activations(model, tokens, unit=PLANTED)
    assert torch.equal(acts > 1.0, tokens == TOKEN)  # the plant works
    result = explain_units(model, tokens, units=[PLANTED], n=1)
    assert result.explanations[0].keys == ((TOKEN,),)
    assert "' w7'" in result.explanations[0].text
    assert result.score_of(PLANTED) > 0.99


def test_a_random_unit_scores_near_zero_held_out():
    tokens = text()
    noise = torch.randn(tokens.shape, generator=torch.Generator().manual_seed(1))
    form, held = slice(0, 100), slice(100, 200)
    e = form_explanation(tokens[form], noise[form], n=3)
    assert abs(simulation_score(e.simulate(tokens[held]), noise[held])) < 0.1


def test_token_explanations_group_tokens_without_a_row_unique(monkeypatch):
    """A token explanation groups the formation tokens with a flat unique: the row-wise
    ``unique(dim=0)`` it used gives the same groups 50x slower, and ``simulation_scores``
    forms one explanation per unit (20 of the features tutorial's 23 s). The keys, means
    and default are those of the row-wise grouping, computed here by hand."""
    tokens = text(seed=3)
    acts = torch.randn(tokens.shape, generator=torch.Generator().manual_seed(4))
    expected_means = {
        t: float(acts[tokens == t].double().mean()) for t in range(16) if (tokens == t).sum() >= 2
    }
    best = sorted(expected_means, key=lambda t: -expected_means[t])[:3]
    rest = acts[~torch.isin(tokens, torch.tensor(best))].double().mean()
    row_unique = torch.Tensor.unique

    def flat_only(self, *args, dim=None, **kwargs):
        assert dim is None, "a token explanation grouped its tokens with unique(dim=0)"
        return row_unique(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "unique", flat_only)
    e = form_explanation(tokens, acts, n=3)
    assert e.keys == tuple((t,) for t in best)
    assert e.values == tuple(round(expected_means[t], 6) for t in best)
    assert e.default == round(float(rest), 6)
    every = form_explanation(tokens[:, :4], acts[:, :4], kind="tokens", n=16)
    assert len(every.keys) == len({int(t) for t in tokens[:, :4].flatten()})


def test_scores_come_from_the_held_out_split_only():
    """A token table overfits a unit without structure: on its own formation split it
    scores well, on held-out examples near 0. The reported score is the held-out one,
    the split halves are disjoint, and the explanation saw only formation examples."""
    model, tokens = planted_model(), text(n=60, seq=6)
    result = explain_units(model, tokens, units=["neuron 0.3"], kind="ngrams", n=30, seed=2)
    formation, held = result.formation, result.held_out
    assert not set(formation.indices) & set(held.indices)
    assert sorted(formation.indices + held.indices) == list(range(60))
    e = result.explanations[0]
    assert e.formed_on == formation.indices
    real = unit_activations(model, tokens, unit="neuron 0.3")
    f_idx, h_idx = torch.tensor(formation.indices), torch.tensor(held.indices)
    on_formation = simulation_score(e.simulate(tokens[f_idx]), real[f_idx])
    on_held = simulation_score(e.simulate(tokens[h_idx]), real[h_idx])
    assert result.scores[0] == pytest.approx(on_held, abs=1e-12)
    assert on_formation > on_held + 0.1  # a leak would have reported the formation score
    with pytest.raises(ValueError, match="overlaps the formation split"):
        score_explanations(model, tokens, unit="neuron 0.3", explanations=[e],
                           held_out=Split([formation.indices[0], held.indices[0]]))  # fmt: skip


def test_people_s_regex_explanations_are_scored_and_compared_for_agreement():
    model, tokens = planted_model(), text(n=40)
    right = regex_explanation(r" w7", unit=PLANTED, author="ana")
    also = regex_explanation(r"w7$", unit=PLANTED, author="bo")
    wrong = regex_explanation(r" w3", unit=PLANTED, author="cy")
    scores = score_explanations(model, tokens, unit=PLANTED, explanations=[right, also, wrong])
    assert scores.scores[0] > 0.99 and scores.scores[1] > 0.99 and scores.scores[2] < 0.1
    frame = scores.to_dataframe()
    assert list(frame["author"]) == ["ana", "bo", "cy"] and len(repr(scores)) < 300
    labels = explanation_labels(model, tokens, explanations=[right, also])
    pair = agreement(labels, PLANTED)
    assert pair.method == "cohen" and pair.kappa == pytest.approx(1.0)
    three = agreement(explanation_labels(model, tokens, explanations=[right, also, wrong]))
    assert three.method == "fleiss" and three.kappa < 0.5


def test_bad_inputs_get_sentences():
    model, tokens = planted_model(), text(n=10)
    with pytest.raises(ValueError, match="no single activation per token"):
        unit_activations(model, tokens, unit="head 0.1")
    with pytest.raises(ValueError, match="not a regular expression"):
        regex_explanation("(", unit=PLANTED)
    with pytest.raises(ValueError, match="unknown kind"):
        explain_units(model, tokens, units=PLANTED, kind="llm")
    with pytest.raises(ValueError, match="its own author"):
        explanation_labels(
            model, tokens, explanations=[regex_explanation("a"), regex_explanation("b")]
        )
