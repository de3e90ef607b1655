"""Linear probes per layer, scored on held-out data."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis.probes import default_probe_hooks, fit_probe, linear_probes
from explorer.models import zoo

torch.set_num_threads(1)


def _bright_left(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose label says which half is brighter: linearly decodable from pixels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=gen) * 0.5
    y = torch.randint(0, 2, (n,), generator=gen)
    x[y == 1, :, :, :14] += 0.3
    x[y == 0, :, :, 14:] += 0.3
    return x, y


def test_fit_probe_separates_separable_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 20, generator=gen) * 4
    labels = torch.arange(300) % 3
    x = centres[labels] + torch.randn(300, 20, generator=gen)
    probe = fit_probe(x[:200], labels[:200])
    assert (probe.predict(x[200:]) == labels[200:]).float().mean() > 0.95
    assert probe.weight.shape == (3, 20)


def test_a_decodable_label_scores_high_and_a_random_label_scores_chance():
    model = zoo.mnist_mlp(hidden=(32,), seed=0)
    x, y = _bright_left(300, seed=1)
    probes = linear_probes(
        model, x[:200], labels=y[:200], test_inputs=x[200:], test_labels=y[200:], max_iter=50
    )
    assert probes.hooks == default_probe_hooks(model)
    assert probes.test_accuracy[0] > 0.95  # pixels
    assert probes.test_accuracy[1] > 0.85  # a random ReLU layer keeps most of it
    noise = torch.randint(0, 2, (300,), generator=torch.Generator().manual_seed(2))
    shuffled = linear_probes(
        model,
        x[:200],
        labels=noise[:200],
        test_inputs=x[200:],
        test_labels=noise[200:],
        max_iter=50,
    )
    assert shuffled.test_accuracy.max() < 0.7  # memorized on train, nothing held out
    assert shuffled.train_accuracy[0] > 0.9
    assert 0.5 <= shuffled.chance <= 0.6


def test_probes_on_conv_activations_and_chosen_hooks():
    cnn = zoo.mnist_cnn(channels=(4, 4), seed=0)
    x, y = _bright_left(120, seed=3)
    probes = linear_probes(
        cnn,
        x[:80],
        labels=y[:80],
        test_inputs=x[80:],
        test_labels=y[80:],
        hooks=["blocks.0.mlp.hook_post"],
        max_iter=30,
    )
    assert probes.hooks == ("blocks.0.mlp.hook_post",)
    assert probes.n_features == (4 * 28 * 28,)
    assert probes.test_accuracy[0] > 0.8
    assert probes.rows()[0]["hook"] == "blocks.0.mlp.hook_post"


def test_bad_arguments_are_named():
    model = zoo.mnist_mlp(hidden=(8,), seed=0)
    x, y = _bright_left(20, seed=0)
    with pytest.raises(ValueError, match="unknown hook 'blocks.3.mlp.hook_post'"):
        linear_probes(
            model, x, labels=y, test_inputs=x, test_labels=y, hooks=["blocks.3.mlp.hook_post"]
        )
    with pytest.raises(ValueError, match="train: 20 images but 19 labels"):
        linear_probes(model, x, labels=y[:19], test_inputs=x, test_labels=y)
    with pytest.raises(TypeError, match="integer"):
        linear_probes(model, x, labels=y.float(), test_inputs=x, test_labels=y)
    with pytest.raises(ValueError, match="10 feature rows but 20 labels"):
        fit_probe(torch.rand(10, 3), y)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.0"):
        fit_probe(torch.rand(20, 3), y, n_classes=1)


@pytest.mark.slow
def test_hidden_layers_of_a_trained_mlp_decode_digits_better_than_pixels(
    trained_mnist_mlp, mnist_digits
):
    model, data = trained_mnist_mlp, mnist_digits
    n = 2000
    probes = linear_probes(
        model,
        data.train_images[:n],
        labels=data.train_labels[:n],
        test_inputs=data.test_images,
        test_labels=data.test_labels,
    )
    accuracy = dict(zip(probes.hooks, probes.test_accuracy.tolist()))
    assert accuracy["blocks.0.mlp.hook_post"] > 0.9
    assert accuracy["blocks.0.mlp.hook_post"] > accuracy["hook_input"] + 0.02
    assert probes.chance < 0.15
