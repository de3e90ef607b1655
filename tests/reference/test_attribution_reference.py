"""``explorer.analysis.attribute`` beside captum's methods called directly, same MLP and inputs."""

from __future__ import annotations

import pytest
import torch
from captum import attr

from explorer.analysis.attribution import attribute
from explorer.models import zoo


@pytest.fixture(scope="module")
def mlp():
    return zoo.mnist_mlp(hidden=(16,), seed=0).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 1, 28, 28, generator=g), torch.tensor([3, 7, 1])


def direct(module, method, x, targets):
    """captum with its own defaults; explorer's defaults where captum has none."""
    x = x.clone().requires_grad_(True)
    if method == "saliency":
        return attr.Saliency(module).attribute(x, target=targets)
    if method == "input_x_gradient":
        return attr.InputXGradient(module).attribute(x, target=targets)
    if method == "smoothgrad":
        torch.manual_seed(11)  # captum draws the noise from torch's global generator
        return attr.NoiseTunnel(attr.Saliency(module)).attribute(
            x, nt_type="smoothgrad", nt_samples=16, stdevs=0.15, target=targets
        )
    if method == "occlusion":
        return attr.Occlusion(module).attribute(
            x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0.0, target=targets
        )
    raise AssertionError(method)


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "smoothgrad", "occlusion"])
def test_maps_equal_captum_called_directly(mlp, batch, method):
    images, targets = batch
    theirs = direct(mlp.model, method, images, targets)
    if method == "smoothgrad":
        torch.manual_seed(11)
    ours = attribute(mlp, images, target=targets, method=method)
    torch.testing.assert_close(ours.maps, theirs.detach(), atol=1e-5, rtol=0)
    assert ours.convergence_delta is None


def test_integrated_gradients_takes_captum_defaults_and_returns_its_delta(mlp, batch):
    images, targets = batch
    ig = attr.IntegratedGradients(mlp.model)
    # captum's defaults: n_steps=50, a zero baseline, gausslegendre
    theirs, delta = ig.attribute(
        images.clone().requires_grad_(True), target=targets, return_convergence_delta=True
    )
    ours = attribute(mlp, images, target=targets, method="integrated_gradients")
    torch.testing.assert_close(ours.maps, theirs.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.convergence_delta, delta.detach(), atol=1e-5, rtol=0)
    # the delta is completeness: sum(map) - (F(x) - F(baseline))
    logits = mlp.model(images).gather(1, targets[:, None])[:, 0]
    blank = mlp.model(torch.zeros_like(images)).gather(1, targets[:, None])[:, 0]
    completeness = ours.maps.flatten(1).sum(1) - (logits - blank).detach()
    torch.testing.assert_close(ours.convergence_delta, completeness, atol=1e-4, rtol=0)


def test_tensor_baselines_equal_captum_tensor_baselines(mlp, batch):
    images, targets = batch
    one = torch.full((1, 28, 28), 0.3)  # one image for all
    each = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))  # per image
    for baseline in (one, each):
        theirs, delta = attr.IntegratedGradients(mlp.model).attribute(
            images.clone().requires_grad_(True),
            baselines=baseline.expand_as(images).clone(),
            target=targets,
            return_convergence_delta=True,
        )
        ours = attribute(
            mlp, images, target=targets, method="integrated_gradients", baseline=baseline
        )
        torch.testing.assert_close(ours.maps, theirs.detach(), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.convergence_delta, delta.detach(), atol=1e-5, rtol=0)
    dl, dl_delta = attr.DeepLift(mlp.model).attribute(
        images.clone().requires_grad_(True),
        baselines=each,
        target=targets,
        return_convergence_delta=True,
    )
    ours = attribute(mlp, images, target=targets, method="deeplift", baseline=each)
    torch.testing.assert_close(ours.maps, dl.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.convergence_delta, dl_delta.detach(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="does not broadcast to the images"):
        attribute(
            mlp,
            images,
            target=targets,
            method="integrated_gradients",
            baseline=torch.zeros(2, 28, 28),
        )
