"""Flat-input MLPs (a first Linear on 784 pixels) work with every image tool, and a wrong
``input_shape`` fails at load with a sentence naming the shape the model expects.

Each tool's answer on the flat model must equal its answer on the same weights behind an
``nn.Flatten`` (the twin takes ``[batch, 1, 28, 28]``): the reshape is the only difference.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import explorer
from explorer.analysis import audit, top_k_examples
from explorer.analysis.attribution import attribute
from explorer.analysis.feature_vis import maximize_activation
from explorer.analysis.units import Neuron


@pytest.fixture(scope="module")
def twins(trained_mnist_mlp):
    """``(flat, flattening)``: the trained MLP without and with its ``nn.Flatten`` (shared
    weights)."""
    layers = list(trained_mnist_mlp.model.module)
    assert isinstance(layers[0], nn.Flatten)
    flat = explorer.load(nn.Sequential(*layers[1:]), name="flat")
    return flat, trained_mnist_mlp


@pytest.fixture(scope="module")
def digits(mnist_digits):
    return mnist_digits.test_images[:64], mnist_digits.test_labels[:64]


def test_shapes_are_inferred_for_a_flat_mlp_and_checked_by_a_dry_forward(twins):
    flat, _ = twins
    assert flat.input_shape == (784,) and flat.image_shape == (1, 28, 28)
    net = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(
        ValueError,
        match=r"input_shape=\(1, 28, 28\) does not fit .*"
        r"Linear\(in_features=784\) on the input: pass input_shape=\(784,\)",
    ):
        explorer.load(net, input_shape=(1, 28, 28))
    flattening = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(
        ValueError,
        match=r"\(1, 20, 20\) does not fit .*reshape to 784 such as "
        r"\(1, 28, 28\)",
    ):
        explorer.load(flattening, input_shape=(1, 20, 20))
    with pytest.raises(
        ValueError,
        match=r"image_shape \(1, 20, 20\) holds 400 values but "
        r"input_shape \(784,\) holds 784",
    ):
        explorer.load(net, image_shape=(1, 20, 20))
    with pytest.raises(
        ValueError,
        match=r"images must have shape \[batch, 784\] or "
        r"\[batch, 1, 28, 28\], got \[2, 1, 20, 20\]",
    ):
        flat(torch.rand(2, 1, 20, 20))
    # a flattening model opened without a shape gets it from its first Linear's width
    opened = explorer.load(flattening)
    assert opened.input_shape == (1, 28, 28) and opened.image_shape == (1, 28, 28)


def test_a_width_that_is_no_square_needs_image_shape():
    net = nn.Sequential(nn.Linear(50, 8), nn.ReLU(), nn.Linear(8, 3))
    model = explorer.load(net)
    assert model.input_shape == (50,) and model.image_shape is None
    with pytest.raises(ValueError, match=r"pass image_shape=\(channels, height, width\)"):
        maximize_activation(model, unit=Neuron(0, 1), n_steps=2)
    shaped = explorer.load(net, image_shape=(2, 5, 5))
    vis = maximize_activation(shaped, unit=Neuron(0, 1), n_steps=2)
    assert tuple(vis.images.shape) == (1, 2, 5, 5)


def test_model_calls_take_flat_or_image_shaped_batches(twins, digits):
    flat, twin = twins
    images, _ = digits
    with torch.no_grad():
        expected = twin(images)
        assert torch.equal(flat(images), expected)
        assert torch.equal(flat(images.flatten(1)), expected)
    assert flat.check_images(images.flatten(1)).shape == (64, 1, 28, 28)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "deeplift", "occlusion"])
def test_attribute_on_a_flat_mlp_equals_its_twin(twins, digits, method):
    flat, twin = twins
    images, labels = digits[0][:4], digits[1][:4]
    maps = attribute(flat, images.flatten(1), target=labels, method=method).maps
    assert maps.shape == (4, 1, 28, 28)
    torch.testing.assert_close(maps, attribute(twin, images, target=labels, method=method).maps)


def test_maximize_activation_on_a_flat_mlp_equals_its_twin(twins):
    flat, twin = twins
    vis = maximize_activation(flat, unit=Neuron(0, 5), n=2, n_steps=12)  # blur runs every 4 steps
    assert vis.images.shape == (2, 1, 28, 28)
    torch.testing.assert_close(
        vis.images, maximize_activation(twin, unit=Neuron(0, 5), n=2, n_steps=12).images
    )


def test_neuron_view_shows_images_and_weight_images_of_a_flat_mlp(twins, digits):
    from explorer.views import NeuronView

    flat, twin = twins
    images, _ = digits
    view, twin_view = NeuronView(flat, images.flatten(1), n=4), NeuronView(twin, images, n=4)
    for v in (view, twin_view):
        v.neuron = 7
    assert view.top_images["shape"] == [4, 28, 28]
    assert view.top_images == twin_view.top_images
    assert view.weight_image["shape"] == [28, 28]
    assert view.weight_image == twin_view.weight_image
    top = top_k_examples(flat, images.flatten(1), layer=0, n=4)
    assert torch.equal(top.example, top_k_examples(twin, images, layer=0, n=4).example)


def test_audit_of_a_flat_mlp_equals_its_twin(twins, digits):
    flat, twin = twins
    images, _ = digits
    a = audit(flat, images.flatten(1), method="stamp", budget=200)
    b = audit(twin, images, method="stamp", budget=200)
    assert a.masks.shape == (10, 28, 28)
    assert torch.equal(a.masks, b.masks) and torch.equal(a.success, b.success)
    assert a.forward_passes == b.forward_passes > 0


def test_audit_view_of_a_flat_mlp_shows_its_stamped_images(twins, digits):
    from explorer.views import AuditView

    flat, twin = twins
    images, _ = digits
    result = audit(flat, images.flatten(1), method="stamp", budget=200)
    view = AuditView(result, flat, images.flatten(1), n_examples=4)
    twin_view = AuditView(result, twin, images, n_examples=4)
    assert view.images["shape"] == [4, 28, 28] and view.stamped["shape"] == [4, 28, 28]
    assert view.stamped == twin_view.stamped and view.after == twin_view.after


class _ViewCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.view(-1, 1, 28, 28))).flatten(1))


def test_image_shape_is_inferred_through_a_leading_unflatten_or_view():
    net = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 26 * 26, 10),
    )
    for module in (net, _ViewCNN()):
        m = explorer.load(module)
        assert m.input_shape == (784,) and m.image_shape == (1, 28, 28), module
        assert m.check_images(torch.zeros(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_weight_methods_say_not_applicable_to_a_cnn_before_any_pass():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 26 * 26, 10),
    )
    m = explorer.load(net)
    other = explorer.load(copy.deepcopy(net))
    before = m.spent.snapshot()
    x = torch.rand(32, 1, 28, 28)
    with pytest.raises(ValueError, match="not applicable.*convolution"):
        audit(m, x, method="weights")
    with pytest.raises(ValueError, match="not applicable.*convolution"):
        audit(m, x, method="compare", references=[other])
    assert m.spent.snapshot() == before
    result = audit(m, x, budget=400, n_steps=5)  # "all" runs the methods that apply
    assert [p.method for p in result.parts] == ["cleanse", "global", "source"]
