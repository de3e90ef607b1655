"""Confusions, error attribution and weight edits of chosen units (the primitives)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis.editing import (
    Confusion,
    confusion,
    error_attribution,
    scale_units,
    unit_weight_masks,
)
from explorer.analysis.units import Neuron
from explorer.models import zoo

torch.set_num_threads(1)


def test_confusion_counts_and_names_the_worst_class():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 2, 1])
    matrix = torch.bincount(labels * 3 + preds, minlength=9).reshape(3, 3)
    conf = Confusion(matrix, preds, labels)
    assert conf.per_class_accuracy.tolist() == pytest.approx([1.0, 1 / 3, 0.75])
    assert conf.most_confused_class == 1
    assert conf.top_confusions(2) == [(1, 2, 2), (2, 1, 1)]
    assert conf.misclassified().tolist() == [4, 5, 9]
    assert conf.misclassified(true=1).tolist() == [4, 5]
    assert conf.accuracy == pytest.approx(0.7)


def test_confusion_of_a_model_matches_its_argmax():
    model = zoo.mnist_mlp(hidden=(8,), seed=0)
    x = torch.rand(30, 1, 28, 28)
    y = torch.arange(30) % 10
    conf = confusion(model, x, labels=y)
    with torch.no_grad():
        preds = model.model(x).argmax(-1)
    assert torch.equal(conf.predictions, preds)
    assert int(conf.matrix.sum()) == 30
    assert int(conf.matrix.diagonal().sum()) == int((preds == y).sum())


def test_scale_units_multiplies_only_the_chosen_units_weights():
    model = zoo.mnist_mlp(hidden=(6, 5), seed=0)
    module = model.model.module
    damped = scale_units(model, units=[Neuron(0, 1), Neuron(0, 4)], factor=0.25)
    new = damped.model.module
    assert torch.equal(new[3].weight[:, [1, 4]], 0.25 * module[3].weight[:, [1, 4]])
    assert torch.equal(new[3].weight[:, [0, 2, 3, 5]], module[3].weight[:, [0, 2, 3, 5]])
    assert torch.equal(new[1].weight, module[1].weight) and torch.equal(
        new[5].weight, module[5].weight
    )
    # factor 0 on the outgoing weights is a zero ablation of the units
    x = torch.rand(8, 1, 28, 28)
    removed = scale_units(model, units="neuron 1.2", factor=0.0)

    def zero(act, hook):
        act[:, 2] = 0
        return act

    with model.hooks([("blocks.1.mlp.hook_post", zero)]):
        ablated = model.model(x)
    assert torch.allclose(removed.model(x), ablated, atol=1e-6)
    incoming = scale_units(model, units=[Neuron(0, 3)], factor=2.0, weights="incoming")
    assert torch.equal(incoming.model.module[1].bias[3], 2 * module[1].bias[3])
    with pytest.raises(ValueError, match="factor must be a finite number"):
        scale_units(model, units=[Neuron(0, 1)], factor=float("nan"))


def test_error_attribution_finds_a_planted_culprit():
    # one hidden unit fires on class-0 images and votes for class 1: it causes the errors
    model = zoo.mnist_mlp(hidden=(4,), seed=0)
    module = model.model.module
    with torch.no_grad():
        module[1].weight.zero_()
        module[1].bias.zero_()
        module[3].weight.zero_()
        module[3].bias.zero_()
        module[1].weight[2, :392] = 0.01  # unit 2 reads the top half
        module[1].weight[0, 392:] = 0.01  # unit 0 reads the bottom half
        module[3].weight[1, 2] = 5.0  # unit 2 votes for class 1
        module[3].weight[0, 0] = 1.0  # unit 0 votes (weakly) for class 0
    x = torch.zeros(20, 1, 28, 28)
    x[:, :, :14] = 1.0
    x[:, :, 14:] = 1.0
    y = torch.zeros(20, dtype=torch.long)
    scores = error_attribution(model, x, labels=y, target=0, layer=0)
    assert int(scores.argmax()) == 2
    assert scores[2] > 0 > scores[0]


def test_units_span_layers_and_are_checked():
    model = zoo.mnist_mlp(hidden=(8, 6), seed=0)
    masks = unit_weight_masks(model, units=["L0N1", Neuron(1, 2)], weights="both")
    assert sum(int(m.sum()) for m in masks.values()) == 784 + 1 + (6 + 8 - 1) + 1 + 10
    # the layer-1 incoming weight also reads neuron 0.1 (outgoing): both marks survive
    w1 = model.model.module[3].weight
    assert masks[w1][:, 1].sum() == 6 and masks[w1][2].sum() == 8


def test_bad_arguments_are_named():
    model = zoo.mnist_mlp(hidden=(8,), seed=0)
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    with pytest.raises(ValueError, match=r"neuron 8 out of range"):
        scale_units(model, units=[Neuron(0, 8)])
    with pytest.raises(ValueError, match="non-empty list"):
        scale_units(model, units=[])
    with pytest.raises(ValueError, match="without attention heads"):
        scale_units(model, units=["head 0.1"])
    with pytest.raises(ValueError, match="unknown weights 'all'"):
        scale_units(model, units=[Neuron(0, 1)], weights="all")
    with pytest.raises(ValueError, match="layer 1 out of range"):
        error_attribution(model, x, labels=y, target=0, layer=1)
    with pytest.raises(ValueError, match="no examples of class 9"):
        error_attribution(model, x, labels=y, target=9, layer=0)
    with pytest.raises(ValueError, match="8 inputs but 7 labels"):
        confusion(model, x, labels=y[:7])
