"""Universality across runs (``explorer.sweep.universality``): linear CKA with its permutation
baseline, units matched across models, key frequencies across grokking runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.fourier import fourier_spectrum, key_frequencies
from explorer.models import zoo
from explorer.sweep import (
    cka_baseline,
    key_frequency_recurrence,
    linear_cka,
    match_units,
    representation_similarity,
    sweep,
)

G = torch.Generator().manual_seed(0)


def _randn(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def test_cka_is_one_under_rotation_and_isotropic_scaling():
    x = _randn(300, 12)
    q, _ = torch.linalg.qr(_randn(12, 12))
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, -0.1 * x @ q + 3.0) == pytest.approx(1.0, abs=1e-12)  # a shift too


def test_cka_matches_the_hand_formula():
    """Kornblith et al.'s HSIC form: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))."""
    x, y = _randn(50, 6).numpy(), _randn(50, 9).numpy()
    x[:, 0] += y[:, 0]  # some shared structure
    h = np.eye(50) - np.ones((50, 50)) / 50
    k, l_ = x @ x.T, y @ y.T
    hand = np.trace(k @ h @ l_ @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l_ @ h @ l_ @ h))
    assert linear_cka(torch.tensor(x), torch.tensor(y)) == pytest.approx(hand, rel=1e-10)


def test_independent_random_matrices_sit_in_their_permutation_baseline():
    above = 0
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(100, 5, generator=g), torch.randn(100, 5, generator=g)
        baseline = cka_baseline(x, y, n_permutations=100, seed=seed)
        above += linear_cka(x, y) > float(torch.quantile(baseline, 0.95))
    assert above <= 3  # about 1 in 20 by chance
    related = _randn(100, 5)
    baseline = cka_baseline(related, related @ _randn(5, 5), n_permutations=100, seed=0)
    assert linear_cka(related, related @ _randn(5, 5)) > float(baseline.max())


def test_a_model_and_its_copy_are_identical_layer_by_layer_and_beat_the_baseline():
    model = zoo.attention_only_transformer(n_layers=2, d_vocab=10, n_ctx=8)
    other = zoo.attention_only_transformer(n_layers=2, d_vocab=10, n_ctx=8, seed=1)
    inputs = torch.randint(10, (16, 8), generator=G)
    same = representation_similarity(model, inputs, other=model.copy(), n_permutations=50)
    assert same.hooks == ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
    assert same.cka == pytest.approx((1.0, 1.0), abs=1e-9)
    assert same.percentile == (1.0, 1.0) and same.n_rows == 16 * 8
    seeds = representation_similarity(model, inputs, other=other, n_permutations=50)
    assert all(0 < c < 1 for c in seeds.cka)
    frame = seeds.to_dataframe()
    assert list(frame.columns) == ["hook", "cka", "baseline_mean", "baseline_p95", "percentile"]


def _neuron_permuted(model, perm):
    """A copy of a one-hidden-layer-then-more MLP with layer 0's neurons reordered."""
    copy = model.copy()
    params = [p for _, p in copy.named_parameters()]
    w_in, b_in, w_next = params[0], params[1], params[2]
    with torch.no_grad():
        w_in.copy_(w_in[perm].clone())
        b_in.copy_(b_in[perm].clone())
        w_next.copy_(w_next[:, perm].clone())
    return copy


def test_a_neuron_permuted_copy_is_matched_one_hundred_percent():
    model = zoo.mnist_mlp(hidden=(16, 8), input_shape=(6,), seed=3)
    perm = torch.randperm(16, generator=G)
    other = _neuron_permuted(model, perm)
    inputs = torch.randn(200, 6, generator=G)
    assert torch.allclose(model(inputs), other(inputs), atol=1e-5)  # the same function
    m = match_units(model, inputs, other=other, threshold=0.99)
    assert m.hooks == ("blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post")
    # neuron u of the copy is neuron perm[u] of the model: model's v pairs with perm^-1[v]
    assert m.partners[0] == tuple(torch.argsort(perm).tolist())
    assert m.partners[1] == tuple(range(8))
    assert m.share == (1.0, 1.0)
    fresh = zoo.mnist_mlp(hidden=(16, 8), input_shape=(6,), seed=4)
    assert match_units(model, inputs, other=fresh, threshold=0.99).share[0] < 1.0
    assert len(m.to_dataframe()) == 24


def test_a_head_permuted_copy_is_matched_by_attention_pattern():
    model = zoo.attention_only_transformer(n_layers=2, d_vocab=10, n_ctx=8, n_heads=4)
    perm = torch.tensor([2, 0, 3, 1])
    other = model.copy()
    for name in ("query", "key", "value", "attn_out", "query_bias", "key_bias", "value_bias"):
        other.set_weight(name, model.weight(name, 0)[perm].clone(), 0)
    inputs = torch.randint(10, (12, 8), generator=G)
    m = match_units(model, inputs, other=other, granularity="head", threshold=0.99)
    assert m.partners[0] == tuple(torch.argsort(perm).tolist()) and m.share[0] == 1.0
    with pytest.raises(ValueError, match="no MLP neurons"):
        match_units(model, inputs, other=other)
    with pytest.raises(ValueError, match="granularity must be one of"):
        match_units(model, inputs, other=other, granularity="layer")


def test_key_frequencies_recur_across_a_sweeps_runs(tmp_path):
    s = sweep(
        "grokking", {"weight_decay": [0.5, 1.0]}, seeds=[0, 1], folder=tmp_path / "keys",
        base={"p": 11, "steps": 10, "d_model": 16}, executor="serial", progress=False,
    )  # fmt: skip
    r = key_frequency_recurrence(s, mass=0.5)
    assert set(r.keys) == set(s.names) and r.n_frequencies == 5
    for name in s.names:  # the analysis's own key frequencies of each run's last checkpoint
        model = s.run(name).load_model()
        expected = key_frequencies(fourier_spectrum(model.weight("embed")[:11]), mass=0.5)
        assert r.keys[name] == expected.frequencies
    counts = r.counts
    assert sum(counts.values()) == sum(len(k) for k in r.keys.values())
    assert r.chance == pytest.approx(np.mean([len(k) for k in r.keys.values()]) / 5)
    frame = r.to_dataframe()
    assert {"run", "weight_decay", "seed", "frequency", "rank", "runs_sharing"} <= set(frame)
    runs = [s.run(n) for n in s.names]
    assert key_frequency_recurrence(runs, mass=0.5).counts == counts  # runs given directly
    inputs = torch.tensor([[1, 2, 11], [3, 4, 11]])
    between = representation_similarity(runs[0], inputs, other=runs[1], n_permutations=5)
    assert between.names == (f"{s.names[0]}@10", f"{s.names[1]}@10")
