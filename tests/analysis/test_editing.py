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
        preds = model(x).argmax(-1)
    assert torch.equal(conf.predictions, preds)
    assert int(conf.matrix.sum()) == 30
    assert int(conf.matrix.diagonal().sum()) == int((preds == y).sum())


def _run(model, x, hook=None, edit=None):
    """The model's logits, and its hidden activations; ``edit`` changes ``hook`` on the way."""
    with torch.no_grad(), model.hooks([(hook, edit)] if edit else []):
        logits, cache = model.cache_pass(x)
    return logits, cache


def test_scale_units_multiplies_only_the_chosen_units_weights():
    """Scaling a neuron's outgoing weights is scaling what the next layer reads from it;
    its incoming weights (and bias) scale its pre-activation. Nothing else changes."""
    model = zoo.mnist_mlp(hidden=(6, 5), seed=0)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    logits, cache = _run(model, x)
    damped = scale_units(model, units=[Neuron(0, 1), Neuron(0, 4)], factor=0.25)

    def damp(act, hook):
        act = act.clone()
        act[:, [1, 4]] *= 0.25
        return act

    expected, _ = _run(model, x, "blocks.0.mlp.hook_post", damp)
    got, got_cache = _run(damped, x)
    assert torch.allclose(got, expected, atol=1e-6) and not torch.allclose(got, logits)
    # the layer itself is untouched: the edit is in the weights that read it
    assert torch.equal(got_cache["blocks.0.mlp.hook_post"], cache["blocks.0.mlp.hook_post"])
    # factor 0 on the outgoing weights is a zero ablation of the units
    removed = scale_units(model, units="neuron 1.2", factor=0.0)

    def zero(act, hook):
        act = act.clone()
        act[:, 2] = 0
        return act

    ablated, _ = _run(model, x, "blocks.1.mlp.hook_post", zero)
    assert torch.allclose(_run(removed, x)[0], ablated, atol=1e-6)
    incoming = scale_units(model, units=[Neuron(0, 3)], factor=2.0, weights="incoming")
    pre, doubled = cache["blocks.0.mlp.hook_pre"], _run(incoming, x)[1]["blocks.0.mlp.hook_pre"]
    assert torch.allclose(doubled[:, 3], 2 * pre[:, 3], atol=1e-6)
    others = [0, 1, 2, 4, 5]
    assert torch.equal(doubled[:, others], pre[:, others])
    with pytest.raises(ValueError, match="factor must be a finite number"):
        scale_units(model, units=[Neuron(0, 1)], factor=float("nan"))


def test_error_attribution_finds_a_planted_culprit():
    # one hidden unit fires on class-0 images and votes for class 1: it causes the errors
    from torch import nn

    from explorer.models import wrap

    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 4), nn.ReLU(), nn.Linear(4, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[1].weight[2, :392] = 0.01  # unit 2 reads the top half
        net[1].weight[0, 392:] = 0.01  # unit 0 reads the bottom half
        net[3].weight[1, 2] = 5.0  # unit 2 votes for class 1
        net[3].weight[0, 0] = 1.0  # unit 0 votes (weakly) for class 0
    model = wrap(net, input_shape=(1, 28, 28))
    x = torch.ones(20, 1, 28, 28)
    y = torch.zeros(20, dtype=torch.long)
    scores = error_attribution(model, x, labels=y, target=0, layer=0)
    assert int(scores.argmax()) == 2
    assert scores[2] > 0 > scores[0]


def test_units_span_layers_and_are_checked():
    model = zoo.mnist_mlp(hidden=(8, 6), seed=0)
    masks = unit_weight_masks(model, units=["L0N1", Neuron(1, 2)], weights="both")
    assert set(masks) <= set(model.parameters())  # keyed by the model's own weights
    assert sum(int(m.sum()) for m in masks.values()) == 784 + 1 + (6 + 8 - 1) + 1 + 10
    # the layer-1 incoming weight [6, 8] also reads neuron 0.1 (outgoing): both marks survive
    (w1,) = [mask for weight, mask in masks.items() if weight.shape == (6, 8)]
    assert w1[:, 1].sum() == 6 and w1[2].sum() == 8


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
