"""The attribution benchmark (explorer.studies.attribution_benchmark): deletion and insertion
curves, the weight-randomization check, rank correlation."""

from __future__ import annotations

import pytest
import scipy.stats
import torch

from explorer.analysis.attribution import ALL_METHODS, METHODS, attribute
from explorer.models import wrap, zoo
from explorer.studies.attribution_benchmark import (
    benchmark_attributions,
    perturbation_curves,
    randomize_weights,
    spearman,
)

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


def test_spearman_matches_scipy_with_ties():
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(0, 5, (4, 30), generator=gen).float()
    b = a + torch.randn(4, 30, generator=gen)
    ours = spearman(a, b)
    theirs = [scipy.stats.spearmanr(a[i], b[i]).statistic for i in range(4)]
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float32))
    mask = torch.zeros(4, 30, dtype=torch.bool)
    mask[:, :10] = True
    masked = spearman(a, b, mask=mask)
    expected = [scipy.stats.spearmanr(a[i, :10], b[i, :10]).statistic for i in range(4)]
    torch.testing.assert_close(masked, torch.tensor(expected, dtype=torch.float32))


def test_perturbation_curves_run_from_the_image_to_the_blank():
    model = zoo.mnist_mlp(hidden=(8,), seed=1)
    x = torch.rand(3, 1, 28, 28)
    targets = torch.tensor([0, 1, 2])
    order = torch.rand(3, 28, 28)
    fractions, deletion, insertion = perturbation_curves(
        model, x, target=targets, order=order, n_steps=4
    )
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
    ig = attribute(handle, x, target=1, method="integrated_gradients")
    _, good, _ = perturbation_curves(
        handle, x, target=torch.ones(8, dtype=torch.long), order=ig.maps.sum(1)
    )
    _, bad, _ = perturbation_curves(
        handle, x, target=torch.ones(8, dtype=torch.long), order=-ig.maps.sum(1)
    )
    assert good.mean() < bad.mean()


def test_randomize_weights_copies_and_changes_every_layer(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    shuffled = randomize_weights(tiny, seed=3)
    again = randomize_weights(tiny, seed=3)
    for key, value in tiny.model.state_dict().items():
        assert torch.equal(value, before[key])  # the original is untouched
        assert not torch.equal(shuffled.model.state_dict()[key], value)
        assert torch.equal(shuffled.model.state_dict()[key], again.model.state_dict()[key])


def test_benchmark_edge_baseline_is_model_independent(tiny, images):
    bench = benchmark_attributions(
        tiny, images, labels=torch.arange(6), methods=["saliency", "edge"], n_steps=4, n_random=1
    )
    assert bench.methods == ("saliency", "edge")
    assert bench.randomization_spearman[bench.index("edge")] == pytest.approx(1.0)
    assert bench.randomization_spearman_foreground[bench.index("edge")] == pytest.approx(1.0)
    assert bench.deletion_curves.shape == (2, 5)
    rows = bench.rows()
    assert [r["method"] for r in rows] == ["saliency", "edge"]


def test_repeated_methods_are_refused(tiny, images):
    with pytest.raises(ValueError, match="methods repeat"):
        benchmark_attributions(tiny, images, labels=0, methods=["edge", "edge"])


# ------------------------------------------------------------- on a trained MLP
@pytest.mark.slow
def test_benchmark_on_a_trained_mlp(trained_mnist_mlp, mnist_digits):
    model, data = trained_mnist_mlp, mnist_digits
    x, y = data.test_images[:32], data.test_labels[:32]
    bench = benchmark_attributions(model, x, labels=y, methods=ALL_METHODS, n_steps=10)
    assert bench.methods == ALL_METHODS
    for tensor in (
        bench.deletion_auc,
        bench.insertion_auc,
        bench.randomization_spearman,
        bench.seconds_per_image,
    ):
        assert torch.isfinite(tensor).all()
    ig = bench.index("integrated_gradients")
    # removing the pixels IG ranks first destroys the prediction much faster than random
    assert bench.deletion_auc[ig] < bench.random_deletion_auc - 0.2
    assert bench.insertion_auc[ig] > bench.random_insertion_auc + 0.1
    # gradients change when the weights are re-initialized; the edge map cannot
    edge = bench.randomization_spearman[bench.index("edge")]
    assert edge == pytest.approx(1.0)
    for method in ("saliency", "smoothgrad"):
        assert bench.randomization_spearman[bench.index(method)] < 0.5 < edge
    assert set(METHODS) < set(bench.methods)
