"""Checks of attribution maps (explorer.analysis.attribution_checks): deletion and insertion
curves, the weight-randomization check, rank correlation."""

from __future__ import annotations

import pytest
import scipy.stats
import torch

from explorer.analysis import attribution_checks
from explorer.analysis.attribution import attribute
from explorer.analysis.attribution_checks import perturbation_curves, randomize_weights, spearman
from explorer.models import wrap, zoo
from explorer.studies import attribution_benchmark as old_home

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return zoo.mnist_mlp(hidden=(16,), seed=0)


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
        full = model(x).softmax(-1)[range(3), targets]
        blank = model(torch.zeros_like(x)).softmax(-1)[range(3), targets]
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
    before = {k: v.detach().clone() for k, v in tiny.named_parameters()}
    shuffled = dict(randomize_weights(tiny, seed=3).named_parameters())
    again = dict(randomize_weights(tiny, seed=3).named_parameters())
    assert set(shuffled) == set(before) and len(before) >= 4  # two layers' weights and biases
    for key, value in tiny.named_parameters():
        assert torch.equal(value, before[key])  # the original is untouched
        assert not torch.equal(shuffled[key], value)
        assert torch.equal(shuffled[key], again[key])


@pytest.mark.parametrize("name", ["perturbation_curves", "randomize_weights", "spearman"])
def test_the_benchmark_study_still_serves_the_moved_names_with_a_warning(name):
    with pytest.warns(
        DeprecationWarning, match=rf"write explorer\.analysis\.attribution_checks\.{name}"
    ):
        old = getattr(old_home, name)
    assert old is getattr(attribution_checks, name)
