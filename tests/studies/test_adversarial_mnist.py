"""The adversarial MNIST case: attacks stay in their ball, the shipped pair is small, and the
adversarially trained MLP resists PGD where the standard one does not."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from explorer.studies.adversarial_mnist import (
    SHIPPED_PAIR,
    AdversarialSetting,
    attack,
    load_adversarial_pair,
    mnist_split,
    robust_accuracy,
)


@pytest.fixture(scope="module")
def pair():
    return load_adversarial_pair()


@pytest.fixture(scope="module")
def digits():
    data = mnist_split()
    return data["test_x"][:200], data["test_y"][:200]


@pytest.mark.parametrize("method", ["pgd", "fgsm"])
def test_attacks_stay_inside_the_ball_and_the_pixel_range(pair, digits, method):
    x, y = digits
    with torch.no_grad():  # an evaluation's context: the attack still takes gradients
        adv = attack(pair[0], x[:32], y[:32], eps=0.1, method=method)
    assert float((adv - x[:32]).abs().max()) <= 0.1 + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert not torch.equal(adv, x[:32])


def test_the_adversarial_mlp_resists_pgd_and_the_standard_one_does_not(pair, digits):
    standard, adversarial = pair
    x, y = digits
    clean = [robust_accuracy(m, x, y, eps=0) for m in pair]
    robust = [robust_accuracy(m, x, y, eps=0.1) for m in pair]
    assert min(clean) > 0.9  # both classify clean digits
    assert robust[0] < 0.2 and robust[1] > 0.6


def test_the_shipped_pair_is_small_and_in_float16():
    files = [p for p in SHIPPED_PAIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 600_000
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parent.parent.parent.name for p in weights} == {"standard", "adversarial"}
    floats = [t for p in weights for t in load_file(p).values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)


def test_bad_settings_name_what_is_allowed():
    with pytest.raises(ValueError, match="choose one of pgd, fgsm"):
        AdversarialSetting(attack="cw")
    with pytest.raises(ValueError, match=r"eps must be in \(0, 1\)"):
        AdversarialSetting(eps=8)
