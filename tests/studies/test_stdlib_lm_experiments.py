"""The tutorial's experiments on a tiny model with a hand-written vocab (no corpus needed)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import direct_logit_attribution
from explorer.analysis.units import Head, Neuron
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.studies.stdlib_lm_experiments import (
    CONCEPTS,
    _auroc,
    concept_mask,
    induction_examples,
    induction_head_dla,
    last_token_examples,
    neuron_concept_auroc,
    repeated_text,
)

VOCAB = (
    "<|bos|>",
    "\n    ",
    "        ",
    " def",
    "if",
    " return",
    "returned",
    "'",
    '"""',
    "x",
    " =",
    "(",
)


@pytest.fixture(scope="module")
def model():
    cfg = TransformerConfig(
        n_layers=2,
        d_model=32,
        n_heads=2,
        d_mlp=48,
        d_vocab=len(VOCAB),
        n_ctx=32,
        normalization="LN",
        vocab=VOCAB,
        bos_token=0,
        positional_embedding="rotary",
    )
    return zoo.transformer(cfg, name="tiny-text")


def test_concepts_read_token_texts(model):
    tokens = torch.arange(len(VOCAB))[None]
    marked = {
        c: [VOCAB[i] for i in concept_mask(model, tokens, c)[0].nonzero()[:, 0]] for c in CONCEPTS
    }
    assert marked["indentation"] == ["\n    ", "        "]
    assert marked["keyword"] == [" def", "if", " return"]
    assert marked["condition_keyword"] == ["if"]
    assert marked["string_quote"] == ["'", '"""']
    with pytest.raises(ValueError, match="unknown concept 'digits'"):
        concept_mask(model, tokens, "digits")


def test_auroc_matches_the_pairwise_definition():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(60, 3, generator=gen, dtype=torch.float64)
    values[:10, 2] = 0.0  # ties
    positive = torch.rand(60, generator=gen) < 0.3
    got = _auroc(values, positive)
    for col in range(3):
        pos, neg = values[positive, col], values[~positive, col]
        wins = (pos[:, None] > neg[None, :]).double() + 0.5 * (
            pos[:, None] == neg[None, :]
        ).double()
        assert float(got[col]) == pytest.approx(float(wins.mean()), abs=1e-12)
    with pytest.raises(ValueError, match="needs positives and negatives"):
        _auroc(values, torch.zeros(60, dtype=torch.bool))


def test_auroc_ranks_ties_without_a_loop_over_the_columns(monkeypatch):
    """Ties in many columns (relu-like zeros, rounded values) get their mean rank in one
    pass over all columns: a per-column torch.unique loop took most of the stdlib_lm
    tutorial's concept-neuron cell (it ran on every call with a single tie anywhere)."""

    def per_column(*args, **kwargs):
        raise AssertionError("torch.unique was called (a loop over the columns)")

    gen = torch.Generator().manual_seed(1)
    values = torch.randn(400, 64, generator=gen, dtype=torch.float64).clamp(min=0).round(decimals=1)
    positive = torch.rand(400, generator=gen) < 0.3
    monkeypatch.setattr(torch, "unique", per_column)
    got = _auroc(values, positive)
    pos, neg = values[positive], values[~positive]
    wins = (pos[:, None, :] > neg[None, :, :]).double() + 0.5 * (
        pos[:, None, :] == neg[None, :, :]
    ).double()
    assert torch.allclose(got, wins.mean((0, 1)), rtol=0, atol=1e-12)


def test_neuron_auroc_and_last_token_examples_agree_on_the_concept(model):
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, len(VOCAB), (16, 32), generator=gen)
    tokens[:, 0] = 0
    found = neuron_concept_auroc(model, tokens, layer=1, concept="indentation")
    assert found.auroc.shape == (48,) and found.n_tokens == 16 * 31
    assert found.n_positive == int(concept_mask(model, tokens, "indentation")[:, 1:].sum())
    (best, value), *_ = found.top(3)
    assert value == pytest.approx(float(found.auroc.max()))
    assert best == Neuron(1, int(found.auroc.argmax()))  # a unit, not its index
    ex = last_token_examples(model, tokens, length=10, concept="indentation", seed=0)
    assert ex.inputs.shape == (16, 10) and (ex.inputs[:, 0] == 0).all()
    assert torch.equal(ex.concept, concept_mask(model, ex.inputs, "indentation")[:, -1])
    # every example is a run of consecutive tokens of its window
    for row, cut in zip(tokens, ex.inputs):
        text = row.tolist()
        body = cut[1:].tolist()
        assert any(text[i : i + 9] == body for i in range(1, 24))
    with pytest.raises(ValueError, match="length must be between 2"):
        last_token_examples(model, tokens, length=40, concept="keyword")


def test_induction_examples_ask_for_the_next_token_of_the_first_copy(model):
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(1, len(VOCAB), (5, 20), generator=gen)
    rep = repeated_text(tokens, 8)
    assert rep.shape == (5, 17) and torch.equal(rep[:, 1:9], rep[:, 9:])
    ex = induction_examples(tokens, 8, 3)
    assert ex.inputs.shape == (5, 12)
    assert torch.equal(ex.labels, tokens[:, 4])  # after 3 copied tokens comes the 4th
    heads = (Head(1, 0), Head(1, 1))
    summed = induction_head_dla(model, ex, heads)
    dla = direct_logit_attribution(model, ex.inputs, target=ex.labels, granularity="head")
    assert torch.allclose(summed, dla.values[:, 2] + dla.values[:, 3])
    with pytest.raises(ValueError, match="takes heads"):
        induction_head_dla(model, ex, (Neuron(0, 1),))
    with pytest.raises(ValueError, match="copied must be between"):
        induction_examples(tokens, 8, 8)
