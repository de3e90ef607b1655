"""The planted models do what their docstrings say, so tests built on them mean something."""

from __future__ import annotations

import torch

from explorer.analysis import head_scores
from explorer.hypotheses import planted


def test_previous_token_model_has_one_previous_token_head_and_predicts_the_previous_token(
    prev_model, prev_data
):
    scores = head_scores(prev_model, prev_data.inputs, scores=["previous_token"]).get(
        "previous_token"
    )
    assert scores[0, 0] > 0.99
    assert (scores[0, 1:] < 0.4).all()
    logits = prev_model(prev_data.inputs)
    assert (logits[:, -1].argmax(-1) == prev_data.labels).all()
    assert (prev_data.corrupted[:, -2] != prev_data.inputs[:, -2]).all()
    assert (prev_data.corrupted[:, :-2] == prev_data.inputs[:, :-2]).all()


def test_concept_neuron_fires_exactly_on_the_concept(concept_model, concept_data):
    _, cache = concept_model.cache_pass(concept_data.inputs, names=["blocks.0.mlp.hook_post"])
    fires = cache["blocks.0.mlp.hook_post"][:, planted.CONCEPT_NEURON[1]] > 0
    assert torch.equal(fires, concept_data.concept)
    assert 0.2 < concept_data.concept.float().mean() < 0.4


def test_builders_are_seeded():
    a, b = planted.concept_examples(50, seed=1), planted.concept_examples(50, seed=1)
    assert torch.equal(a.inputs, b.inputs)
    assert (
        planted.previous_token_model().fingerprint() == planted.previous_token_model().fingerprint()
    )
