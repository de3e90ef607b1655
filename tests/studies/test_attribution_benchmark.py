"""The attribution benchmark (explorer.studies.attribution_benchmark), built on
explorer.analysis.attribution_checks (tested in tests/analysis/test_attribution_checks.py)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis.attribution import ALL_METHODS, METHODS
from explorer.models import zoo
from explorer.studies.attribution_benchmark import benchmark_attributions

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
