"""The local learning coefficient (``explorer.models.learning_coefficient``): devinterp's
estimate, reached through a handle."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.nn.functional as F

from explorer.models import zoo
from explorer.models.learning_coefficient import LLCSampler, learning_coefficient

SMALL = LLCSampler(chains=2, draws=20, batch_size=16, init_batches=2, lr=1e-3)


def _mse_to_own_outputs(model, inputs):
    """A loss whose minimum is the model's own weights (a realizable target)."""
    with torch.no_grad():
        goal = model(inputs)

    def loss(m, x, labels):
        idx = labels  # the example's index: labels carries it
        return (m(x) - goal[idx]).pow(2).sum(-1)

    return loss


def test_it_is_finite_and_deterministic_under_a_seed():
    model = zoo.mnist_mlp(hidden=(8,), input_shape=(4,))
    inputs = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(10, (64,), generator=torch.Generator().manual_seed(1))
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(123)
    outside = torch.rand(3)  # the global stream as it would continue
    torch.manual_seed(123)
    a = learning_coefficient(model, inputs, labels=labels, sampler=SMALL)
    assert torch.equal(torch.rand(3), outside), "the global random state was not restored"
    b = learning_coefficient(model, inputs, labels=labels, sampler=SMALL)
    c = learning_coefficient(
        model, inputs, labels=labels, sampler=LLCSampler(**{**SMALL.__dict__, "seed": 1})
    )
    assert all(map(torch.isfinite, torch.tensor([a.mean, a.std, *a.per_chain])))
    assert a.per_chain == b.per_chain and a.mean == b.mean
    assert c.per_chain != a.per_chain
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    assert a.n_examples == 64 and a.sampler is SMALL


def test_it_matches_devinterp_called_directly_on_the_same_module():
    from devinterp.slt.llc import llc

    model = zoo.mnist_mlp(hidden=(8,), input_shape=(4,))
    inputs = torch.randn(48, 4, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(10, (48,), generator=torch.Generator().manual_seed(3))
    ours = learning_coefficient(model, inputs, labels=labels, sampler=SMALL)

    module = model.as_torch_module()  # a test may read the module; explorer/ outside models may not

    def loss_fn(m, ids):
        idx = ids[:, 0]
        return F.cross_entropy(m(inputs[idx]), labels[idx], reduction="none")[:, None]

    with tempfile.TemporaryDirectory() as folder:
        direct = llc(
            module, [{"input_ids": torch.tensor([i, i])} for i in range(48)], {},
            lr=SMALL.lr, n_beta=16 / torch.log(torch.tensor(16.0)).item(), loss_fn=loss_fn,
            num_chains=2, num_draws=20, batch_size=16, num_init_loss_batches=2, init_seed=0,
            localization=100.0, device="cpu", output_path=os.path.join(folder, "s.zarr"),
        )  # fmt: skip
        expected = float(direct["llc_mean"])
    assert ours.mean == pytest.approx(expected, abs=1e-6)
    assert ours.n_beta == pytest.approx(16 / torch.log(torch.tensor(16.0)).item())


def test_a_more_degenerate_minimum_has_a_smaller_coefficient():
    """Both models sit at a minimum of their loss (the target is their own output). With
    three of four inputs always zero, three quarters of the first layer's weights change
    nothing: fewer effective directions, a smaller LLC (theory: d_eff / 2)."""
    model = zoo.mnist_mlp(hidden=(8,), input_shape=(4,), seed=1)
    full = torch.randn(64, 4, generator=torch.Generator().manual_seed(4))
    flat = full.clone()
    flat[:, 1:] = 0
    sampler = LLCSampler(chains=2, draws=40, batch_size=16, init_batches=2, lr=1e-3)
    index = torch.arange(64)
    wide = learning_coefficient(
        model, full, labels=index, loss=_mse_to_own_outputs(model, full), sampler=sampler
    )
    narrow = learning_coefficient(
        model, flat, labels=index, loss=_mse_to_own_outputs(model, flat), sampler=sampler
    )
    assert wide.init_loss == pytest.approx(0.0, abs=1e-10)
    assert 0 < narrow.mean < wide.mean


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match="draws must be a whole number >= 1"):
        LLCSampler(draws=0)
    with pytest.raises(ValueError, match="n_beta must be > 0"):
        LLCSampler(n_beta=-1.0)
    model = zoo.mnist_mlp(hidden=(8,), input_shape=(4,))
    with pytest.raises(ValueError, match="one label per input"):
        learning_coefficient(model, torch.zeros(4, 4), labels=torch.zeros(3, dtype=torch.long))


def test_an_estimate_on_cpu_skips_devinterps_garbage_collection(monkeypatch):
    """devinterp collects garbage before and after each chain (for GPU memory): on CPU,
    with transformers loaded, that was 90% of an estimate's time."""
    import gc

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(args) or 0)
    model = zoo.mnist_mlp(hidden=(8,), input_shape=(4,))
    learning_coefficient(model, torch.randn(32, 4), labels=torch.zeros(32, dtype=torch.long),
                         sampler=LLCSampler(draws=2, batch_size=8))  # fmt: skip
    assert calls == []


def test_without_labels_it_samples_the_next_token_loss_of_every_position():
    model = zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8)
    tokens = torch.randint(10, (24, 8), generator=torch.Generator().manual_seed(5))
    sampler = LLCSampler(draws=4, batch_size=8, init_batches=3, chains=1)
    got = learning_coefficient(model, tokens, sampler=sampler)
    with torch.no_grad():
        logits = model(tokens)[:, :-1]
        per_token = F.cross_entropy(logits.reshape(-1, 10), tokens[:, 1:].reshape(-1))
    # the loss at w* averages 3 shuffled batches of 8: the whole set, once each
    assert got.init_loss == pytest.approx(float(per_token), rel=1e-5)
    assert torch.isfinite(torch.tensor(got.mean))
