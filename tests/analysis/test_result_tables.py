"""Results read as tables and short reprs; metrics say which way is worse; dead units are known."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import ablation_sweep, head_scores, metrics, top_k_examples
from explorer.data import repeated_tokens
from explorer.models import zoo


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=2, d_vocab=16, n_ctx=16)


def test_head_scores_and_sweeps_are_long_tables_that_pivot_to_layer_by_head(model):
    tokens = repeated_tokens(4, 6, 16, seed=0)
    scores = head_scores(model, tokens)
    table = scores.to_dataframe()
    assert list(table.columns) == ["layer", "head", *scores.names] and len(table) == 4
    grid = table.pivot(index="layer", columns="head", values="induction")
    assert list(grid.index) == [0, 1] and list(grid.columns) == [0, 1]
    assert grid.loc[1, 0] == pytest.approx(float(scores.get("induction")[1, 0]))
    sweep = ablation_sweep(
        model, tokens, metric=metrics.repeated_half_loss(tokens), ablation="mean"
    )
    effects = sweep.to_dataframe().pivot(index="layer", columns="head", values="effect")
    assert effects.shape == (2, 2)
    assert effects.loc[0, 1] == pytest.approx(float(sweep.effect[1]))
    assert len(repr(sweep)) < 200 and "mean ablation of 4 units" in repr(sweep)
    assert len(repr(scores)) < 250 and repr(scores).startswith("HeadScores(4 scores x 2 layers")


def test_metrics_know_whether_lower_is_better():
    tokens = repeated_tokens(2, 4, 16, seed=0)
    assert metrics.lower_is_better(metrics.repeated_half_loss(tokens))
    assert not metrics.lower_is_better(metrics.accuracy(torch.tensor([1, 0])))
    assert not metrics.lower_is_better(lambda logits: logits[:, 0], "log-likelihood")
    assert metrics.lower_is_better(lambda logits: logits[:, 0], "cross-entropy")


def test_top_k_knows_which_units_never_fire():
    mlp = zoo.mnist_mlp(hidden=(8,), seed=0, input_shape=(1, 4, 4))
    with torch.no_grad():
        mlp.model.module[1].bias[:3] = -100.0  # three units that can never fire
    top = top_k_examples(mlp, torch.rand(20, 1, 4, 4), layer=0, n=4)
    assert top.fires()[:3].tolist() == [False, False, False]
    assert top.fires()[3:].all()
