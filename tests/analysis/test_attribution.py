"""Attribution maps (through captum) and the benchmark that scores them."""

from __future__ import annotations

import pytest
import scipy.stats
import torch

from explorer.analysis.attribution import (
    ALL_METHODS,
    METHODS,
    attribute,
    benchmark_attributions,
    perturbation_curves,
    randomise_weights,
    sobel_edges,
    spearman,
)
from explorer.models import wrap, zoo

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
        maps = attribute(tiny, images, torch.arange(6), method)
        assert maps.maps.shape == images.shape, method
        assert torch.isfinite(maps.maps).all(), method
        assert maps.maps.abs().sum() > 0, method
        assert maps.method == method and maps.seconds >= 0


def test_saliency_is_the_absolute_input_gradient(tiny, images):
    x = images.clone().requires_grad_(True)
    tiny.model(x)[torch.arange(6), torch.arange(6)].sum().backward()
    maps = attribute(tiny, images, torch.arange(6), "saliency")
    torch.testing.assert_close(maps.maps, x.grad.abs())


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift"])
def test_completeness_maps_sum_to_the_logit_change_from_the_blank_image(tiny, images, method):
    targets = torch.tensor([1, 2, 3, 4, 5, 6])
    maps = attribute(tiny, images, targets, method, ig_steps=256)
    with torch.no_grad():
        gap = (
            tiny.model(images)[range(6), targets]
            - tiny.model(torch.zeros_like(images))[range(6), targets]
        )
    torch.testing.assert_close(maps.maps.sum((1, 2, 3)), gap, atol=2e-2, rtol=2e-2)


def test_occlusion_of_a_blank_region_is_zero(tiny, images):
    maps = attribute(tiny, images, 0, "occlusion", occlusion_window=2, occlusion_stride=2)
    assert maps.maps[:, :, :6].abs().max() == 0  # occluding black with black changes nothing
    assert maps.maps[:, :, 8:].abs().max() > 0


def test_sobel_edges_are_zero_on_flat_images_and_positive_on_a_step():
    flat = torch.full((1, 1, 8, 8), 0.5)
    assert sobel_edges(flat).abs().max() == 0
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1
    edges = sobel_edges(step)
    assert edges[0, 0, :, 3:5].min() > 0 and edges[0, 0, :, :2].max() == 0


def test_spearman_matches_scipy_with_ties():
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(0, 5, (4, 30), generator=gen).float()
    b = a + torch.randn(4, 30, generator=gen)
    ours = spearman(a, b)
    theirs = [scipy.stats.spearmanr(a[i], b[i]).statistic for i in range(4)]
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float32))
    mask = torch.zeros(4, 30, dtype=torch.bool)
    mask[:, :10] = True
    masked = spearman(a, b, mask)
    expected = [scipy.stats.spearmanr(a[i, :10], b[i, :10]).statistic for i in range(4)]
    torch.testing.assert_close(masked, torch.tensor(expected, dtype=torch.float32))


def test_perturbation_curves_run_from_the_image_to_the_blank():
    model = zoo.mnist_mlp(hidden=(8,), seed=1)
    x = torch.rand(3, 1, 28, 28)
    targets = torch.tensor([0, 1, 2])
    order = torch.rand(3, 28, 28)
    fractions, deletion, insertion = perturbation_curves(model, x, targets, order, n_steps=4)
    with torch.no_grad():
        full = model.model(x).softmax(-1)[range(3), targets]
        blank = model.model(torch.zeros_like(x)).softmax(-1)[range(3), targets]
    assert fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    torch.testing.assert_close(deletion[:, 0], full)
    torch.testing.assert_close(deletion[:, -1], blank)
    torch.testing.assert_close(insertion[:, 0], blank)
    torch.testing.assert_close(insertion[:, -1], full)


def test_deletion_in_attribution_order_beats_the_reverse_order():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 8), torch.nn.ReLU())
    module.append(torch.nn.Linear(8, 2))

    handle = wrap(module, input_shape=(1, 28, 28))
    x = torch.rand(8, 1, 28, 28)
    ig = attribute(handle, x, 1, "integrated_gradients")
    _, good, _ = perturbation_curves(handle, x, torch.ones(8, dtype=torch.long), ig.maps.sum(1))
    _, bad, _ = perturbation_curves(handle, x, torch.ones(8, dtype=torch.long), -ig.maps.sum(1))
    assert good.mean() < bad.mean()


def test_randomise_weights_copies_and_changes_every_layer(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    shuffled = randomise_weights(tiny, seed=3)
    again = randomise_weights(tiny, seed=3)
    for key, value in tiny.model.state_dict().items():
        assert torch.equal(value, before[key])  # the original is untouched
        assert not torch.equal(shuffled.model.state_dict()[key], value)
        assert torch.equal(shuffled.model.state_dict()[key], again.model.state_dict()[key])


def test_benchmark_edge_baseline_is_model_independent(tiny, images):
    bench = benchmark_attributions(
        tiny, images, torch.arange(6), methods=["saliency", "edge"], n_steps=4, n_random=1
    )
    assert bench.methods == ("saliency", "edge")
    assert bench.randomisation_spearman[bench.index("edge")] == pytest.approx(1.0)
    assert bench.randomisation_spearman_foreground[bench.index("edge")] == pytest.approx(1.0)
    assert bench.deletion_curves.shape == (2, 5)
    rows = bench.rows()
    assert [r["method"] for r in rows] == ["saliency", "edge"]


def test_bad_arguments_are_named(tiny, images):
    with pytest.raises(ValueError, match="unknown method 'lime'"):
        attribute(tiny, images, 0, "lime")
    with pytest.raises(ValueError, match="got 2 targets for 6 images"):
        attribute(tiny, images, [0, 1], "saliency")
    with pytest.raises(ValueError, match=r"targets must lie in 0\.\.9"):
        attribute(tiny, images, 10, "saliency")
    with pytest.raises(ValueError, match="unknown attribution options"):
        attribute(tiny, images, 0, "saliency", steps=3)
    with pytest.raises(ValueError, match="images must have shape"):
        attribute(tiny, torch.rand(2, 1, 8, 8), 0, "saliency")
    with pytest.raises(ValueError, match="takes tokens"):
        attribute(zoo.attention_only_transformer(n_layers=1, d_model=16), images, 0)
    with pytest.raises(ValueError, match="methods repeat"):
        benchmark_attributions(tiny, images, 0, methods=["edge", "edge"])
    nan = images.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        attribute(tiny, nan, 0, "saliency")


# ------------------------------------------------------------- on a trained MLP
@pytest.mark.slow
def test_benchmark_on_a_trained_mlp(trained_mnist_mlp, mnist_digits):
    model, data = trained_mnist_mlp, mnist_digits
    x, y = data.test_images[:32], data.test_labels[:32]
    bench = benchmark_attributions(model, x, y, methods=ALL_METHODS, n_steps=10)
    assert bench.methods == ALL_METHODS
    for tensor in (
        bench.deletion_auc,
        bench.insertion_auc,
        bench.randomisation_spearman,
        bench.seconds_per_image,
    ):
        assert torch.isfinite(tensor).all()
    ig = bench.index("integrated_gradients")
    # removing the pixels IG ranks first destroys the prediction much faster than random
    assert bench.deletion_auc[ig] < bench.random_deletion_auc - 0.2
    assert bench.insertion_auc[ig] > bench.random_insertion_auc + 0.1
    # gradients change when the weights are re-initialised; the edge map cannot
    edge = bench.randomisation_spearman[bench.index("edge")]
    assert edge == pytest.approx(1.0)
    for method in ("saliency", "smoothgrad"):
        assert bench.randomisation_spearman[bench.index(method)] < 0.5 < edge
    assert set(METHODS) < set(bench.methods)
