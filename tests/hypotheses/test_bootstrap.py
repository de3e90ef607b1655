"""Statistics over weighted examples, checked against scikit-learn, and the bootstrap interval."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from explorer.hypotheses.bootstrap import (
    Evidence,
    TooFewExamples,
    bootstrap_interval,
    resample_weights,
    statistic,
)


def _ones(n):
    return torch.ones(1, n, dtype=torch.float64)


@pytest.fixture
def detector():
    g = torch.Generator().manual_seed(0)
    positives = torch.rand(120, generator=g) < 0.4
    values = positives.double() + torch.randn(120, generator=g, dtype=torch.float64)
    values[:10] = values[10:20]  # ties
    return values, positives


def test_auroc_precision_recall_match_sklearn(detector):
    values, positives = detector
    y = positives.numpy()
    auroc = Evidence(values, statistic="auroc", positives=positives)
    assert float(statistic(auroc, _ones(120))[0]) == pytest.approx(roc_auc_score(y, values.numpy()))
    fires = (values > 0.5).numpy()
    precision = Evidence(values, statistic="precision", positives=positives, fire_threshold=0.5)
    recall = Evidence(values, statistic="recall", positives=positives, fire_threshold=0.5)
    assert float(statistic(precision, _ones(120))[0]) == pytest.approx(precision_score(y, fires))
    assert float(statistic(recall, _ones(120))[0]) == pytest.approx(recall_score(y, fires))


def test_weights_are_repeated_examples(detector):
    values, positives = detector
    counts = torch.randint(0, 3, (120,), generator=torch.Generator().manual_seed(1))
    counts[positives.nonzero()[0]] = 1  # keep both classes
    counts[(~positives).nonzero()[0]] = 1
    repeated = torch.repeat_interleave(torch.arange(120), counts)
    ev = Evidence(values, statistic="auroc", positives=positives)
    expected = roc_auc_score(positives[repeated].numpy(), values[repeated].numpy())
    assert float(statistic(ev, counts[None].double())[0]) == pytest.approx(expected)
    mean = Evidence(values)
    assert float(statistic(mean, counts[None].double())[0]) == pytest.approx(
        float(values[repeated].mean())
    )


def test_ratio_is_a_ratio_of_sums():
    ev = Evidence(
        torch.tensor([1.0, 3.0]), statistic="ratio", denominators=torch.tensor([2.0, 2.0])
    )
    assert float(statistic(ev, _ones(2))[0]) == pytest.approx(1.0)


def test_interval_is_seeded_contains_the_value_and_narrows_with_data():
    g = torch.Generator().manual_seed(0)
    small = Evidence(torch.randn(30, generator=g))
    large = Evidence(torch.randn(3000, generator=g))
    point, low, high = bootstrap_interval(small, n_boot=1000, seed=5)
    assert low < point < high
    assert bootstrap_interval(small, n_boot=1000, seed=5) == (point, low, high)
    assert bootstrap_interval(small, n_boot=1000, seed=6) != (point, low, high)
    _, low_l, high_l = bootstrap_interval(large, n_boot=1000, seed=5)
    assert high_l - low_l < (high - low) / 5
    # the standard error of a mean of 3000 N(0,1) is ~0.018: a 95% interval spans ~0.07
    assert 0.05 < high_l - low_l < 0.09


def test_stratified_resamples_keep_the_class_counts(detector):
    values, positives = detector
    ev = Evidence(values, statistic="auroc", positives=positives)
    weights = resample_weights(ev, 200, seed=0)
    assert torch.all(weights[:, positives].sum(1) == positives.sum())
    assert torch.all(weights[:, ~positives].sum(1) == (~positives).sum())


def test_bad_evidence_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        Evidence(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TooFewExamples, match="4 concept and 0 other examples"):
        Evidence(torch.ones(4), statistic="auroc", positives=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown statistic"):
        Evidence(torch.ones(4), statistic="median")
    zero = Evidence(torch.ones(3), statistic="ratio", denominators=torch.zeros(3))
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_interval(zero)
