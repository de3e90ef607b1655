"""InterventionPanel without a browser: choices run the right ablation; sweeps and selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets
from page_requests import invoke

from explorer.analysis import ablate, ablation_sweep, metrics
from explorer.views import InterventionPanel


@pytest.fixture
def labelled():
    g = torch.Generator().manual_seed(0)
    return torch.rand(24, 1, 28, 28, generator=g), torch.randint(0, 10, (24,), generator=g)


def test_units_and_kind_run_the_matching_ablation(attn_model, repeated):
    panel = InterventionPanel(attn_model, repeated)
    metric = metrics.next_token_loss(repeated)
    panel.units = ["head 1.2", "L0H1"]
    assert panel.units == ["head 1.2", "head 0.1"]
    expected = ablate(
        attn_model, repeated, units=["head 1.2", "head 0.1"], metric=metric, ablation="zero"
    )
    assert np.allclose(panel.before.numpy(), expected.before.numpy())
    assert np.allclose(panel.after.numpy(), expected.after.numpy())
    assert panel.after_mean == pytest.approx(expected.after_mean)
    assert panel.hooks == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    panel.ablation = "mean"
    expected = ablate(
        attn_model, repeated, units=["head 1.2", "head 0.1"], metric=metric, ablation="mean"
    )
    assert panel.after_mean == pytest.approx(expected.after_mean)
    panel.units = []
    assert panel.before_mean is None and panel.before["shape"] == [0]


def test_labels_give_accuracy_and_log_prob_metrics(mnist_mlp, labelled):
    panel = InterventionPanel(mnist_mlp, labelled)
    assert panel.metric_names == ["accuracy", "log prob of label"]
    panel.metric_name = "log prob of label"
    panel.units = ["neuron 0.3"]
    expected = ablate(
        mnist_mlp, labelled[0], units=["neuron 0.3"], metric=metrics.neg_cross_entropy(labelled[1])
    )
    assert panel.after_mean == pytest.approx(expected.after_mean)


def test_sweep_draws_every_head_and_a_click_selects_one(attn_model, repeated):
    panel = InterventionPanel(attn_model, repeated)
    panel.sweep()
    expected = ablation_sweep(attn_model, repeated, metric=metrics.next_token_loss(repeated))
    assert np.allclose(panel.sweep_effects.numpy(), expected.grid().numpy(), atol=1e-6)
    assert panel.sweep_before == pytest.approx(expected.before)
    invoke(panel, "_page_select", layer=1, index=3)
    panel.wait()
    assert (panel.layer, panel.head, panel.units) == (1, 3, ["head 1.3"])
    assert panel.after_mean == pytest.approx(float(expected.after[7]), abs=1e-5)


def test_neuron_sweep_covers_layers_of_different_widths(mnist_mlp, labelled):
    panel = InterventionPanel(mnist_mlp, labelled)
    invoke(panel, "_page_sweep")
    panel.wait()
    grid = panel.sweep_effects.numpy()
    assert grid.shape == (2, 16)
    assert np.isnan(grid[1, 12:]).all() and np.isfinite(grid[1, :12]).all()
    layer1 = ablation_sweep(
        mnist_mlp, labelled[0], metric=metrics.accuracy(labelled[1]), granularity="neuron", layer=1
    )
    assert np.allclose(grid[1, :12], layer1.effect.numpy(), atol=1e-6)
    panel.select(1, 5)
    assert (panel.layer, panel.neuron, panel.units) == (1, 5, ["neuron 1.5"])


def test_bad_units_raise_in_python_and_show_in_the_page(attn_model, repeated):
    panel = InterventionPanel(attn_model, repeated)
    with pytest.raises(traitlets.TraitError, match="layer 5 out of range"):
        panel.units = ["head 5.0"]
    invoke(panel, "_page_add_unit", text="head 0.9")
    panel.wait()
    assert "head 9 out of range" in panel.error and panel.units == []
    invoke(panel, "_page_add_unit", text="head 0.2")
    panel.wait()
    assert panel.error == "" and panel.units == ["head 0.2"]


def test_a_failing_metric_is_reported_and_the_panel_stays_usable(attn_model, repeated):
    good = metrics.next_token_loss(repeated)
    panel = InterventionPanel(
        attn_model,
        repeated,
        metric={"good": good, "broken": lambda logits: logits.sum() * float("nan")},
    )
    panel.units = ["head 0.0"]
    panel.metric_name = "broken"
    assert "NaN" in panel.error
    panel.metric_name = "good"
    assert panel.error == "" and panel.after_mean is not None
    with pytest.raises(traitlets.TraitError, match="choose one of good, broken"):
        panel.metric_name = "missing"


def test_a_repeated_failure_is_announced_again(attn_model, repeated):
    """The page re-enables the Sweep button when it hears ``error``: a repeat must be heard."""

    def broken(logits):
        raise RuntimeError("metric exploded")

    panel = InterventionPanel(attn_model, repeated, metric=broken)
    heard = []
    panel.observe(lambda change: heard.append(change["new"]), names="error")
    invoke(panel, "_page_sweep")
    panel.wait()
    invoke(panel, "_page_sweep")
    panel.wait()
    assert [m for m in heard if m] == ["RuntimeError: metric exploded"] * 2
    assert panel.error == "RuntimeError: metric exploded"


def test_neuron_sweep_on_a_residual_mlp_equals_the_loop():
    """A residual connection around a hidden layer: the Sweep falls back to exact copies."""
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.fc, self.act = nn.Linear(16, 8), nn.Linear(8, 8), nn.ReLU()
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            return self.out(h + self.act(self.fc(h)))

    from explorer.models import wrap

    torch.manual_seed(0)
    model = wrap(Residual(), input_shape=(16,))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 16, generator=g), torch.randint(0, 3, (5,), generator=g)
    panel = InterventionPanel(model, (x, y))
    panel.metric_name = "log prob of label"
    panel.sweep()
    metric = metrics.neg_cross_entropy(y)
    before = float(metric(model(x).detach()).mean())
    for layer in range(2):
        for n in range(8):
            hook = f"blocks.{layer}.mlp.hook_post"

            def zero(act, hook, n=n):
                act = act.clone()
                act[:, n] = 0
                return act

            after = float(metric(model.run_with_hooks(x, [(hook, zero)])).mean())
            assert panel.sweep_effects.numpy()[layer, n] == pytest.approx(after - before, abs=1e-5)


def test_the_panel_says_which_way_is_worse_for_each_metric():
    from explorer.analysis import metrics
    from explorer.data import repeated_tokens
    from explorer.models import zoo
    from explorer.views import InterventionPanel

    model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=16)
    tokens = repeated_tokens(4, 5, 12, seed=0)
    loss = metrics.repeated_half_loss(tokens)
    panel = InterventionPanel(
        model, tokens, metric={"loss": loss, "score": lambda logits: -loss(logits)}
    )
    assert panel.worse_when == "up"
    panel.metric_name = "score"
    assert panel.worse_when == "down"
