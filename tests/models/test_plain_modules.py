"""Any PyTorch module: hidden layers found from the traced graph (functional activations,
norms between a Linear and its activation), nothing dropped silently, and batched sweeps
that check their structural assumptions (a residual MLP falls back and stays exact)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explorer
from explorer.analysis import ablation_sweep, activation_patching, metrics


class Functional(nn.Module):
    """Activations called in forward: ``F.relu`` (in place) and ``torch.relu``."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(16, 24), nn.Linear(24, 12), nn.Linear(12, 5)

    def forward(self, x):
        h = F.relu(self.fc1(x.flatten(1)), inplace=True)
        return self.out(torch.relu(self.fc2(h)))


class Normed(nn.Module):
    """A 64-32 MLP: Linear-LayerNorm-ReLU, then Linear-BatchNorm-F.gelu."""

    def __init__(self):
        super().__init__()
        self.fc1, self.norm1 = nn.Linear(16, 64), nn.LayerNorm(64)
        self.act = nn.ReLU()
        self.fc2, self.norm2 = nn.Linear(64, 32), nn.BatchNorm1d(32)
        self.out = nn.Linear(32, 5)

    def forward(self, x):
        return self.out(F.gelu(self.norm2(self.fc2(self.act(self.norm1(self.fc1(x)))))))


class Residual(nn.Module):
    """Two hidden layers, the second inside a residual connection ``h + relu(fc(h))``."""

    def __init__(self):
        super().__init__()
        self.inp, self.fc, self.act, self.out = (
            nn.Linear(16, 24),
            nn.Linear(24, 24),
            nn.ReLU(),
            nn.Linear(24, 5),
        )

    def forward(self, x):
        h = F.relu(self.inp(x))
        h = h + self.act(self.fc(h))
        return self.out(h)


class ResidualBranch(nn.Module):
    """A Linear whose output feeds a residual sum, not an activation: not a hidden layer."""

    def __init__(self):
        super().__init__()
        self.inp, self.proj, self.out = nn.Linear(16, 24), nn.Linear(24, 24), nn.Linear(24, 5)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        return self.out(h + self.proj(h))


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5)

    def forward(self, x):
        h = self.act(self.fc(x))
        if h.sum() > 0:
            h = h * 2
        return self.out(h)


def _load(cls, **kw):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle = explorer.load(cls(), input_shape=(16,), **kw)
    return handle


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(3)
    return torch.randn(6, 16, generator=g), torch.randint(0, 5, (6,), generator=g)


def test_functional_activations_are_hidden_layers():
    handle = _load(Functional)
    assert handle.layer_widths == (24, 12)
    assert [b.post for b in handle.model.found_blocks] == ["relu", "relu_1"]
    x = torch.randn(4, 16)
    out, cache = handle.cache_pass(x)
    net = handle.model.module
    pre = net.fc1(x)
    assert torch.allclose(cache["blocks.0.mlp.hook_pre"], pre, atol=1e-6)
    assert (cache["blocks.0.mlp.hook_pre"] < 0).any()  # F.relu(inplace=True) made out-of-place
    assert torch.allclose(cache["blocks.0.mlp.hook_post"], pre.relu(), atol=1e-6)
    assert torch.allclose(cache["hook_logits"], out) and torch.allclose(out, net(x), atol=1e-6)


def test_a_norm_between_linear_and_activation_keeps_the_layer():
    handle = _load(Normed)
    assert handle.layer_widths == (64, 32)
    assert repr(handle) == "ModelHandle('Normed', images, layers=[64, 32])"
    assert handle.model.skipped == () and handle.model.output_layer == "out"
    x = torch.randn(4, 16)
    _, cache = handle.cache_pass(x)
    net = handle.model.module
    assert torch.allclose(cache["blocks.0.mlp.hook_pre"], net.fc1(x), atol=1e-6)  # the Linear's
    assert torch.allclose(
        cache["blocks.0.mlp.hook_post"], net.act(net.norm1(net.fc1(x))), atol=1e-6
    )


def test_a_layer_that_is_not_hidden_is_named_with_the_reason():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"proj \(Linear\): it feeds add\(\), not an activation"):
        handle = explorer.load(ResidualBranch(), input_shape=(16,))
    assert handle.layer_widths == (24,)
    assert handle.model.skipped == ("proj (Linear): it feeds add(), not an activation",)


def test_untraceable_forward_walks_submodules_and_says_so(data, neuron_loop, sweep_trace):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="could not be traced .*TraceError"):
        handle = explorer.load(Untraceable(), input_shape=(16,))
    assert handle.layer_widths == (12,) and handle.model.trace_error.startswith("TraceError")
    x, y = data
    metric = metrics.neg_cross_entropy(y)
    sweep, passes, rows = sweep_trace(
        handle,
        ["blocks.0.mlp.hook_pre"],
        lambda: ablation_sweep(handle, x, metric=metric, layer=0, granularity="neuron"),
    )
    # nothing proven: the exact path, 12 copies of the batch stacked from the input
    assert passes == 2 and rows["blocks.0.mlp.hook_pre"] == [6, 12 * 6]
    expected = neuron_loop(handle, x, metric, 0, range(12), torch.zeros(6, 12))
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


def test_no_hidden_layer_says_what_was_looked_for():
    with pytest.raises(
        ValueError, match=r"found no hidden layer in Sequential: forward was traced"
    ):
        explorer.load(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), input_shape=(4,))


# Rows the first layer sees during a sweep of each layer: "linear" runs it once (the copies
# start after the Linear that reads the unit), "site" twice at batch size (the copies start
# at the unit), "stack" once more per unit (the copies stacked from the input).
_FIRST_LAYER_ROWS = {"linear": lambda width: [6], "site": lambda width: [6, 6]}
_FIRST_LAYER_ROWS["stack"] = lambda width: [6, 6 * width]


@pytest.mark.parametrize(
    ("cls", "modes"),
    [
        (Functional, ["linear", "linear"]),
        (Normed, ["linear", "linear"]),
        (Residual, ["site", "stack"]),  # layer 1 sits inside the residual sum
    ],
)
@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_sweeps_check_the_structure_and_equal_the_naive_loop(
    data, cls, modes, kind, neuron_loop, sweep_trace
):
    handle = _load(cls)
    x, y = data
    metric = metrics.neg_cross_entropy(y)
    _, cache = handle.cache_pass(x)
    for layer, width in enumerate(handle.layer_widths):
        act = cache[f"blocks.{layer}.mlp.hook_post"]
        replacement = torch.zeros_like(act) if kind == "zero" else act.mean(0, keepdim=True)
        sweep, passes, rows = sweep_trace(
            handle,
            ["blocks.0.mlp.hook_pre"],
            lambda layer=layer: ablation_sweep(
                handle, x, metric=metric, layer=layer, granularity="neuron", ablation=kind
            ),
        )
        assert passes == 2  # the clean pass and one for all copies (a loop: 1 + width)
        assert rows["blocks.0.mlp.hook_pre"] == _FIRST_LAYER_ROWS[modes[layer]](width)
        expected = neuron_loop(handle, x, metric, layer, range(width), replacement.expand_as(act))
        assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


def test_neuron_patching_on_a_residual_mlp_equals_the_naive_loop(data, neuron_loop):
    handle = _load(Residual)
    x, _ = data
    corrupted = x.flip(0)
    target = torch.tensor([0, 1, 2, 3, 4, 0])

    def metric(logits):
        return logits.log_softmax(-1)[torch.arange(6), target]

    result = activation_patching(handle, x, corrupted=corrupted, metric=metric, grid="neuron")
    _, clean = handle.cache_pass(x)
    for layer in range(2):
        act = clean[f"blocks.{layer}.mlp.hook_post"]
        expected = neuron_loop(handle, corrupted, metric, layer, range(24), act).mean(1)
        assert torch.allclose(result.values[layer], expected, atol=1e-5)


def test_hooks_on_the_wrapped_module_still_run(data, neuron_loop, sweep_trace):
    handle = _load(Functional)
    x, y = data
    metric = metrics.neg_cross_entropy(y)
    handle.model.module.register_forward_hook(lambda m, i, out: out * 2)
    assert torch.allclose(
        handle(x),
        2
        * handle.model.module.out(
            torch.relu(handle.model.module.fc2(torch.relu(handle.model.module.fc1(x))))
        ),
        atol=1e-6,
    )
    sweep, passes, rows = sweep_trace(
        handle,
        ["blocks.0.mlp.hook_pre"],
        lambda: ablation_sweep(handle, x, metric=metric, layer=0, granularity="neuron"),
    )
    # full passes then (the module's hook must run on the copies): the first layer twice
    assert passes == 2 and rows["blocks.0.mlp.hook_pre"] == [6, 6]
    expected = neuron_loop(handle, x, metric, 0, range(24), torch.zeros(6, 24))
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


def test_a_copy_keeps_the_traced_layers_and_owns_its_weights(data):
    handle = _load(Normed)
    twin = handle.copy()
    assert twin.layer_widths == (64, 32)
    x, _ = data
    assert torch.allclose(twin(x), handle(x))
    with torch.no_grad():
        twin.model.module.fc1.weight.zero_()
    assert not torch.allclose(twin(x), handle(x))  # its own weights


def test_the_readme_plain_module_example_runs(neuron_loop):
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Any PyTorch module", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)
    printed = out.getvalue().splitlines()
    assert printed == ["ModelHandle('ResidualMLP', images, layers=[64, 64])", "torch.Size([64])"]
    model, sweep = ns["model"], ns["sweep"]
    # inside the residual sum: the exact path, all 64 copies of the 32 images in one pass
    assert (model.spent.forward, model.spent.examples) == (2, 32 * (1 + 64))
    x, y = ns["images"], ns["labels"]
    metric = metrics.neg_cross_entropy(y)
    expected = neuron_loop(model, x, metric, 1, range(64), torch.zeros(32, 64))
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


def test_blocks_can_be_named_by_module_path_or_traced_call():
    from explorer.models import Block, wrap

    torch.manual_seed(0)
    handle = wrap(Functional(), blocks=[Block("fc2", "relu_1", 12, False)], input_shape=(16,))
    assert handle.layer_widths == (12,) and handle.model.output_layer == "out"
    x = torch.randn(3, 16)
    _, cache = handle.cache_pass(x)
    net = handle.model.module
    assert torch.allclose(cache["blocks.0.mlp.hook_pre"], net.fc2(net.fc1(x).relu()), atol=1e-6)
    with pytest.raises(ValueError, match="'nope', neither a submodule called after 'fc2'"):
        wrap(Functional(), blocks=[Block("fc2", "nope", 12, False)])
    with pytest.raises(ValueError, match="'fc9', not a submodule the model calls"):
        wrap(Functional(), blocks=[Block("fc9", "relu", 12, False)])
