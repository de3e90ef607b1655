"""Attribution maps (through captum)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis.attribution import ALL_METHODS, CAPTUM_METHODS, attribute, sobel_edges
from explorer.models import zoo

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return zoo.mnist_mlp(hidden=(16,), seed=0)


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=gen)
    x[:, :, :6] = 0  # a blank band, like MNIST's background
    return x


def test_every_method_gives_one_finite_map_per_image(tiny, images):
    for method in ALL_METHODS:
        maps = attribute(tiny, images, target=torch.arange(6), method=method)
        assert maps.maps.shape == images.shape, method
        assert torch.isfinite(maps.maps).all(), method
        assert maps.maps.abs().sum() > 0, method
        assert maps.method == method and maps.seconds >= 0


def test_saliency_is_the_absolute_input_gradient(tiny, images):
    x = images.clone().requires_grad_(True)
    tiny(x)[torch.arange(6), torch.arange(6)].sum().backward()
    maps = attribute(tiny, images, target=torch.arange(6), method="saliency")
    torch.testing.assert_close(maps.maps, x.grad.abs())


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift"])
def test_completeness_maps_sum_to_the_logit_change_from_the_blank_image(tiny, images, method):
    targets = torch.tensor([1, 2, 3, 4, 5, 6])
    maps = attribute(tiny, images, target=targets, method=method, n_steps=256)
    with torch.no_grad():
        gap = tiny(images)[range(6), targets] - tiny(torch.zeros_like(images))[range(6), targets]
    torch.testing.assert_close(maps.maps.sum((1, 2, 3)), gap, atol=2e-2, rtol=2e-2)


def test_occlusion_of_a_blank_region_is_zero(tiny, images):
    maps = attribute(
        tiny, images, target=0, method="occlusion", occlusion_window=2, occlusion_stride=2
    )
    assert maps.maps[:, :, :6].abs().max() == 0  # occluding black with black changes nothing
    assert maps.maps[:, :, 8:].abs().max() > 0


def test_sobel_edges_are_zero_on_flat_images_and_positive_on_a_step():
    flat = torch.full((1, 1, 8, 8), 0.5)
    assert sobel_edges(flat).abs().max() == 0
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1
    edges = sobel_edges(step)
    assert edges[0, 0, :, 3:5].min() > 0 and edges[0, 0, :, :2].max() == 0


def test_bad_arguments_are_named(tiny, images):
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        attribute(tiny, images, target=0, method="lime")
    with pytest.raises(ValueError, match="got 2 targets for 6 images"):
        attribute(tiny, images, target=[0, 1], method="saliency")
    with pytest.raises(ValueError, match=r"targets must lie in 0\.\.9"):
        attribute(tiny, images, target=10, method="saliency")
    with pytest.raises(ValueError, match="unknown attribution options"):
        attribute(tiny, images, target=0, method="saliency", steps=3)
    with pytest.raises(ValueError, match="images must have shape"):
        attribute(tiny, torch.rand(2, 1, 8, 8), target=0, method="saliency")
    with pytest.raises(ValueError, match="takes tokens"):
        attribute(zoo.attention_only_transformer(n_layers=1, d_model=16), images, target=0)
    nan = images.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        attribute(tiny, nan, target=0, method="saliency")


def test_the_method_table_names_real_captum_classes():
    from captum import attr

    for name, spec in CAPTUM_METHODS.items():
        assert isinstance(getattr(attr, spec.captum_class), type), name
    assert ALL_METHODS == (*CAPTUM_METHODS, "edge")
