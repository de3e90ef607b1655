"""Fourier analysis of modular arithmetic, checked against independent computations."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis.fourier import (
    excluded_loss,
    fourier_basis,
    fourier_spectrum,
    key_frequencies,
    restricted_logits,
    restricted_loss,
    sum_directions,
)


@pytest.mark.parametrize("p", [2, 7, 12, 53])
def test_basis_is_orthonormal_and_labelled(p):
    basis = fourier_basis(p)
    assert basis.matrix.shape == (p, p)
    assert torch.allclose(basis.matrix @ basis.matrix.T, torch.eye(p), atol=1e-5)
    assert basis.labels[0] == "const" and len(basis.labels) == p
    assert basis.n_frequencies == p // 2
    assert int(basis.frequencies.max()) == p // 2


def test_basis_rows_are_the_waves_they_name():
    p = 11
    basis = fourier_basis(p)
    x = torch.arange(p, dtype=torch.float64)
    row = basis.labels.index("sin 3")
    wave = torch.sin(2 * math.pi * 3 * x / p)
    assert torch.allclose(basis.matrix[row].double(), wave / wave.norm(), atol=1e-6)


def test_frequency_norms_match_the_fft():
    # Independent route: for a real signal, cos_k^2 + sin_k^2 components = 2 |X_k|^2 / p.
    p = 13
    torch.manual_seed(0)
    signal = torch.randn(p, dtype=torch.float64)
    spectrum = fourier_spectrum(signal.float()[:, None])
    fft = torch.fft.rfft(signal)
    expected = (2 * fft.abs().pow(2) / p).sqrt()
    assert torch.allclose(spectrum.frequency_norms[1:].double(), expected[1:], atol=1e-4)
    assert math.isclose(
        float(spectrum.frequency_norms[0]), abs(float(fft[0])) / math.sqrt(p), rel_tol=1e-4
    )
    assert math.isclose(spectrum.total, float(signal.pow(2).sum()), rel_tol=1e-4)  # Parseval


def test_planted_embedding_frequencies_are_recovered_exactly():
    p, d = 53, 32
    planted = (4, 17, 25)
    gen = torch.Generator().manual_seed(1)
    x = torch.arange(p, dtype=torch.float64)
    W = torch.zeros(p, d, dtype=torch.float64)
    for k, scale in zip(planted, (3.0, 2.0, 1.5)):
        W += scale * torch.outer(
            torch.cos(2 * math.pi * k * x / p), torch.randn(d, generator=gen, dtype=torch.float64)
        )
        W += scale * torch.outer(
            torch.sin(2 * math.pi * k * x / p), torch.randn(d, generator=gen, dtype=torch.float64)
        )
    W += 1e-3 * torch.randn(p, d, generator=gen, dtype=torch.float64)  # faint noise everywhere
    spectrum = fourier_spectrum(W.float())
    key = key_frequencies(spectrum, mass=0.99)
    assert sorted(key.frequencies) == sorted(planted)
    assert key.fraction > 0.99
    assert key.frequencies[0] == 4  # strongest first
    assert key_frequencies(spectrum, n=2).frequencies == (4, 17)
    others = [k for k in range(1, p // 2 + 1) if k not in planted]
    assert float(spectrum.frequency_norms[others].max()) < 0.01 * float(
        spectrum.frequency_norms[25]
    )


def test_key_frequencies_take_the_smallest_set_reaching_the_mass():
    p = 11
    basis = fourier_basis(p)
    # frequency norms^2: k=1 -> 0.5, k=2 -> 0.3, k=3 -> 0.2 of the total
    W = torch.stack(
        [
            math.sqrt(0.5) * basis.matrix[1],
            math.sqrt(0.3) * basis.matrix[3],
            math.sqrt(0.2) * basis.matrix[6],
        ],
        dim=1,
    )
    spectrum = fourier_spectrum(W)
    assert key_frequencies(spectrum, mass=0.5).frequencies == (1,)
    assert key_frequencies(spectrum, mass=0.6).frequencies == (1, 2)
    assert key_frequencies(spectrum, mass=0.95).frequencies == (1, 2, 3)
    assert math.isclose(key_frequencies(spectrum, mass=0.6).fraction, 0.8, rel_tol=1e-4)


def _planted_logits(p, freqs, noise_freq=None):
    a = torch.arange(p).repeat_interleave(p).double()
    b = torch.arange(p).repeat(p).double()
    c = torch.arange(p).double()
    logits = torch.zeros(p * p, p, dtype=torch.float64)
    for k in freqs:
        logits += 8 * torch.cos(2 * math.pi * k * (a[:, None] + b[:, None] - c[None]) / p)
    if noise_freq is not None:  # a wave in a - b: orthogonal to every a + b direction
        logits += 3 * torch.cos(2 * math.pi * noise_freq * (a[:, None] - b[:, None] + c[None]) / p)
    logits += 0.1 * torch.arange(p).double()[None]  # a per-output bias, kept by restriction
    labels = ((a + b) % p).long()
    return logits.float(), labels


def test_restricted_logits_keep_exactly_the_key_directions():
    p, key = 17, (2, 5)
    clean, labels = _planted_logits(p, key)
    noisy, _ = _planted_logits(p, key, noise_freq=3)
    assert torch.allclose(restricted_logits(clean, key), clean, atol=1e-4)
    assert torch.allclose(restricted_logits(noisy, key), clean, atol=1e-4)
    assert restricted_loss(noisy, labels, key) < 0.2 < restricted_loss(noisy, labels, (1,))


def test_excluded_loss_is_chance_once_the_key_directions_are_removed():
    p, key = 17, (2, 5)
    logits, labels = _planted_logits(p, key)
    train = torch.arange(0, p * p, 2)
    # without its key frequencies only the per-output bias is left: no better than a guess
    assert excluded_loss(logits, labels, key, train) > math.log(p) - 1.0
    assert excluded_loss(logits, labels, (7,), train) < 0.2
    assert excluded_loss(logits, labels, key) != excluded_loss(logits, labels, key, train)


def test_sum_directions_are_orthonormal_waves_in_a_plus_b():
    p = 7
    d = sum_directions(p, (1, 3))
    assert d.shape == (4, p * p)
    assert torch.allclose(d @ d.T, torch.eye(4), atol=1e-5)
    a, b = 2, 4
    assert math.isclose(float(d[0, a * p + b]), float(d[0, ((a + b) % p) * p]), abs_tol=1e-6)


def test_bad_inputs_raise_with_the_valid_range():
    with pytest.raises(ValueError, match=r"1\.\.3"):
        sum_directions(7, (4,))
    with pytest.raises(ValueError, match="square"):
        restricted_logits(torch.zeros(10, 3), (1,))
    with pytest.raises(ValueError, match=">= 2"):
        fourier_basis(1)
    with pytest.raises(ValueError, match=r"1\.\.5"):
        key_frequencies(fourier_spectrum(torch.randn(11, 4)), n=9)
    with pytest.raises(ValueError, match="NaN"):
        fourier_spectrum(torch.full((5, 2), float("nan")))


def test_a_replay_builds_the_basis_and_key_directions_once_and_hands_out_copies():
    # restricted / excluded loss at every checkpoint of a run ask for the same directions
    from explorer.analysis import fourier

    p, key = 13, (2, 5)
    logits = torch.randn(p * p, p, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(p * p) % p
    fourier._directions.cache_clear()
    first = [fourier.restricted_loss(logits, labels, key) for _ in range(5)]
    assert fourier._directions.cache_info().misses == 1
    assert len(set(first)) == 1
    got = fourier.sum_directions(p, key)
    got.zero_()  # a caller's copy: the cached directions are untouched
    assert fourier.sum_directions(p, key).abs().sum() > 0
    assert fourier.restricted_loss(logits, labels, key) == first[0]
    basis = fourier.fourier_basis(p)
    basis.matrix.zero_()
    assert fourier.fourier_basis(p).matrix.abs().sum() > 0
