from __future__ import annotations

import pytest
import torch

from explorer.analysis import (
    Head,
    Neuron,
    ResidPosition,
    ablate,
    ablate_sets,
    ablation_sweep,
    metrics,
)


def naive_head_ablation(model, tokens, layer, head, metric, replacement):
    """Independent computation: a transformer-lens hook written by hand, one unit at a time."""

    def hook(z, hook):
        z = z.clone()
        z[:, :, head] = replacement[:, :, head]
        return z

    logits = model.run_with_hooks(tokens, [(f"blocks.{layer}.attn.hook_z", hook)])
    return metric(logits).mean().item()


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_head_sweep_equals_per_unit_loop(attn_model, repeated, kind):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(attn_model, repeated, metric=metric, ablation=kind)
    assert [str(u) for u in sweep.units][:2] == ["head 0.0", "head 0.1"] and len(sweep.units) == 8
    for unit, after in zip(sweep.units, sweep.after):
        _, cache = attn_model.cache_pass(repeated)
        z = cache[f"blocks.{unit.layer}.attn.hook_z"]
        replacement = (
            torch.zeros_like(z) if kind == "zero" else z.mean(0, keepdim=True).expand_as(z)
        )
        expected = naive_head_ablation(
            attn_model, repeated, unit.layer, unit.head, metric, replacement
        )
        assert after.item() == pytest.approx(expected, abs=1e-5)
    base = metric(attn_model(repeated)).mean().item()
    assert sweep.before == pytest.approx(base, abs=1e-6)
    assert torch.allclose(sweep.effect, sweep.after - base)


def test_resample_sweep_equals_single_ablations(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(attn_model, repeated, metric=metric, ablation="resample", seed=3)
    singles = [
        ablate(
            attn_model, repeated, units=[u], metric=metric, ablation="resample", seed=3
        ).after_mean
        for u in sweep.units
    ]
    assert torch.allclose(sweep.after, torch.tensor(singles), atol=1e-5)


@pytest.mark.parametrize("kind", ["zero", "mean", "resample"])
def test_ablate_sets_equals_ablate_per_set(attn_model, repeated, kind):
    """The random baseline of a hypothesis: many unit sets, stacked, each as if alone."""
    metric = metrics.repeated_half_loss(repeated)
    sets = [["head 0.1"], ["head 1.0", "head 1.3"], ["head 0.0", "head 1.2", "head 0.3"]]
    results = ablate_sets(
        attn_model, repeated, unit_sets=sets, metric=metric, ablation=kind, seed=4, batch_size=4
    )
    assert len(results) == 3
    for units, got in zip(sets, results):
        alone = ablate(attn_model, repeated, units=units, metric=metric, ablation=kind, seed=4)
        assert [str(u) for u in got.units] == units and got.hooks == alone.hooks
        assert torch.allclose(got.before, alone.before, atol=1e-6)
        assert torch.allclose(got.after, alone.after, atol=1e-5)
    with pytest.raises(ValueError, match="at least one non-empty set"):
        ablate_sets(attn_model, repeated, unit_sets=[["head 0.1"], []], metric=metric)


def test_resample_uses_other_examples(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    result = ablate(attn_model, repeated, units=["head 1.0"], metric=metric, ablation="resample")
    assert not torch.allclose(result.after, result.before)


def test_neuron_sweep_on_mlp_and_cnn(mnist_mlp, mnist_cnn):
    x, y = torch.rand(10, 1, 28, 28), torch.randint(0, 10, (10,))
    metric = metrics.neg_cross_entropy(y)
    for model, layer in ((mnist_mlp, 1), (mnist_cnn, 1)):
        sweep = ablation_sweep(
            model,
            x,
            metric=metric,
            layer=layer,
            granularity="neuron",
            ablation="zero",
            batch_size=25,
        )
        assert len(sweep.units) == model.layer_widths[layer]
        for i in range(len(sweep.units)):

            def hook(act, hook, i=i):
                act = act.clone()
                act[:, i] = 0
                return act

            logits = model.run_with_hooks(x, [(f"blocks.{layer}.mlp.hook_post", hook)])
            assert sweep.after[i].item() == pytest.approx(metric(logits).mean().item(), abs=1e-5)
        assert sweep.grid().shape == (2, model.layer_widths[layer])


def test_ablating_everything_in_the_last_layer_hits_logits(mnist_mlp):
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    units = [Neuron(1, i) for i in range(12)]
    result = ablate(mnist_mlp, x, units=units, metric=metrics.neg_cross_entropy(y))

    def silence(post, hook):
        return torch.zeros_like(post)

    with torch.no_grad():
        logits = mnist_mlp.run_with_hooks(x, [("blocks.1.mlp.hook_post", silence)])
    assert torch.allclose(logits, logits[:1].expand_as(logits))  # only the output bias is left
    expected = -torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert torch.allclose(result.after, expected, atol=1e-5)
    assert result.hooks == ("blocks.1.mlp.hook_post",) and result.ablation == "zero"


def test_position_ablation_only_touches_that_position(attn_model, repeated):
    metric = metrics.next_token_loss(repeated)
    result = ablate(attn_model, repeated, units=[ResidPosition(0, 5)], metric=metric)
    assert result.hooks == ("blocks.0.hook_resid_pre",)
    per_pos = lambda logits: logits
    base = attn_model(repeated)
    out = attn_model.run_with_hooks(
        repeated,
        [("blocks.0.hook_resid_pre", lambda a, hook: a.index_fill(1, torch.tensor([5]), 0.0))],
    )
    assert torch.allclose(out[:, :5], base[:, :5], atol=1e-5)  # causal: earlier positions unchanged
    assert per_pos(out).shape == base.shape


def test_head_at_one_position(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    at = ablate(attn_model, repeated, units=[Head(1, 0, position=3)], metric=metric)
    everywhere = ablate(attn_model, repeated, units=[Head(1, 0)], metric=metric)
    assert at.after_mean != pytest.approx(everywhere.after_mean)


@pytest.mark.parametrize(
    "units,match",
    [
        (["head 5.0"], "layer 5 out of range: valid layers are 0..1"),
        (["head 0.9"], "head 9 out of range: valid heads are 0..3"),
        (["neuron 0.1"], "attention-only"),
        (["bogus"], "cannot read a unit"),
        ([], "no units"),
    ],
)
def test_bad_units(attn_model, repeated, units, match):
    with pytest.raises(ValueError, match=match):
        ablate(attn_model, repeated, units=units, metric=metrics.repeated_half_loss(repeated))


def test_bad_kind_metric_and_reference(attn_model, repeated, mnist_mlp):
    metric = metrics.repeated_half_loss(repeated)
    with pytest.raises(ValueError, match="unknown ablation 'half'"):
        ablate(attn_model, repeated, units=["head 0.0"], metric=metric, ablation="half")
    with pytest.raises(ValueError, match="one value per example"):
        ablate(attn_model, repeated, units=["head 0.0"], metric=lambda logits: logits.mean(-1))
    with pytest.raises(ValueError, match="NaN"):
        ablate(
            attn_model,
            repeated,
            units=["head 0.0"],
            metric=lambda logits: logits[:, 0, 0] * float("nan"),
        )
    with pytest.raises(ValueError, match="reference inputs must match"):
        ablate(
            attn_model,
            repeated,
            units=["head 0.0"],
            metric=metric,
            ablation="mean",
            reference=repeated[:, :5],
        )
    with pytest.raises(ValueError, match="neuron 99 out of range: valid neurons are 0..15"):
        ablate(mnist_mlp, torch.rand(2, 1, 28, 28), units=["neuron 0.99"], metric=lambda l: l[:, 0])
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 1, 28, 28\]"):
        ablate(mnist_mlp, torch.rand(2, 3, 28, 28), units=["neuron 0.1"], metric=lambda l: l[:, 0])
    with pytest.raises(ValueError, match="unknown granularity 'channel'"):
        ablation_sweep(
            mnist_mlp, torch.rand(2, 1, 28, 28), metric=lambda l: l[:, 0], granularity="channel"
        )


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_neuron_sweep_without_a_layer_covers_every_layer(mnist_mlp, kind):
    """One call sweeps the neurons of every layer: each value equals that layer's own
    sweep, and the grid pads the narrower layer with NaN (16 and 12 neurons)."""
    x, y = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(3)), torch.arange(8)
    metric = metrics.neg_cross_entropy(y)
    every = ablation_sweep(mnist_mlp, x, metric=metric, granularity="neuron", ablation=kind)
    assert [u.layer for u in every.units] == [0] * 16 + [1] * 12
    grid = every.grid()
    assert tuple(grid.shape) == (2, 16) and grid[1, 12:].isnan().all()
    for layer in (0, 1):
        alone = ablation_sweep(
            mnist_mlp, x, metric=metric, granularity="neuron", layer=layer, ablation=kind
        )
        width = len(alone.units)
        torch.testing.assert_close(grid[layer, :width], alone.effect, atol=1e-5, rtol=1e-5)
    assert every.before == pytest.approx(alone.before)


@pytest.mark.parametrize("kind", ["zero", "mean", "resample"])
def test_fast_sweep_paths_on_a_transformer_with_mlps(mlp_transformer, repeated, kind):
    """Heads fan out at resid_mid, neurons at resid_post: both equal single ablations."""
    metric = metrics.repeated_half_loss(repeated)
    units = [
        Head(0, 1),
        Head(1, 3),
        Head(1, 2, position=9),
        Neuron(0, 5),
        Neuron(1, 63),
        Neuron(1, 7, position=12),
    ]
    sweep = ablation_sweep(
        mlp_transformer, repeated, metric=metric, units=units, ablation=kind, seed=2, batch_size=3
    )
    singles = [
        ablate(
            mlp_transformer, repeated, units=[u], metric=metric, ablation=kind, seed=2
        ).after_mean
        for u in units
    ]
    assert torch.allclose(sweep.after, torch.tensor(singles), atol=1e-5)
    assert (sweep.effect.abs() > 0).all()  # every unit matters a little in a random model


def test_neuron_sweep_matches_a_hand_written_loop(mlp_transformer, repeated):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(mlp_transformer, repeated, metric=metric, layer=1, granularity="neuron")
    for n in (0, 17, 63):

        def hook(post, hook, n=n):
            post = post.clone()
            post[:, :, n] = 0
            return post

        logits = mlp_transformer.run_with_hooks(repeated, [("blocks.1.mlp.hook_post", hook)])
        assert sweep.after[n].item() == pytest.approx(metric(logits).mean().item(), abs=1e-5)


@pytest.mark.parametrize("kind", ["zero", "mean"])
@pytest.mark.parametrize("layer", [0, 1])
def test_plain_mlp_neurons_fan_out_after_the_reading_linear(
    mnist_mlp, layer, kind, neuron_loop, sweep_trace
):
    """Layer 0 is read by the next block's Linear, layer 1 by the output Linear: both sweeps
    take the linear fast path (the layers up to the unit run once, the copies start after
    the Linear that reads it) and equal the hand-written loop per example."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(7, 1, 28, 28, generator=g), torch.randint(0, 10, (7,), generator=g)
    hook = f"blocks.{layer}.mlp.hook_post"
    metric = metrics.neg_cross_entropy(y)
    hidden = [f"blocks.{i}.mlp.{k}" for i in range(2) for k in ("hook_pre", "hook_post")]
    sweep, passes, rows = sweep_trace(
        mnist_mlp,
        hidden,
        lambda: ablation_sweep(
            mnist_mlp, x, metric=metric, layer=layer, granularity="neuron", ablation=kind
        ),
    )
    assert passes == 2  # the clean pass and one for all copies (a loop: 1 + 16 or 1 + 12)
    once = hidden[:3] if layer == 0 else hidden  # up to the Linear that reads the unit
    assert all(rows[name] == [7] for name in once)
    if layer == 0:  # the copies enter at block 1's pre-activation: 16 units x 7 examples
        assert rows["blocks.1.mlp.hook_post"] == [7, 16 * 7]
    _, cache = mnist_mlp.cache_pass(x)
    act = cache[hook]
    replacement = (
        torch.zeros_like(act) if kind == "zero" else act.mean(0, keepdim=True).expand_as(act)
    )
    expected = neuron_loop(mnist_mlp, x, metric, layer, range(act.shape[1]), replacement)
    assert (expected != metric(mnist_mlp.model(x))).any()  # the ablations change something
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


class _Between(torch.nn.Module):
    """Multiplies by 2: linear, but still not 'nothing in between'."""

    def forward(self, x):
        return 2 * x


class _CustomForward(torch.nn.Module):
    """Linear, ReLU, Linear as attributes, but forward squares the hidden layer first."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.flat, self.fc, self.act, self.out = (
            torch.nn.Flatten(),
            torch.nn.Linear(784, 12),
            torch.nn.ReLU(),
            torch.nn.Linear(12, 10),
        )

    def forward(self, x):
        return self.out(self.act(self.fc(self.flat(x))) ** 2)


def _plain(layers):
    torch.manual_seed(0)
    from explorer.models import wrap

    return wrap(torch.nn.Sequential(*layers), input_shape=(1, 28, 28))


def _fallback_models():
    from torch import nn

    between = _plain(
        [nn.Flatten(), nn.Linear(784, 12), nn.ReLU(), nn.LayerNorm(12), nn.Linear(12, 10)]
    )
    scaled = _plain([nn.Flatten(), nn.Linear(784, 12), nn.ReLU(), _Between(), nn.Linear(12, 10)])
    hooked = _plain([nn.Flatten(), nn.Linear(784, 12), nn.ReLU(), nn.Linear(12, 10)])
    hooked.model.module[3].register_forward_pre_hook(lambda m, args: (args[0].clamp(max=0.1),))
    from explorer.models import wrap

    custom = wrap(_CustomForward(), input_shape=(1, 28, 28))
    return {
        "LayerNorm between": between,
        "module between": scaled,
        "pre-hook on Linear": hooked,
        "custom forward": custom,
    }


@pytest.mark.parametrize("name", list(_fallback_models()))
def test_plain_modules_not_provably_linear_fall_back(name, neuron_loop, sweep_trace):
    """Whatever sits between the neuron and the Linear (a module, a custom forward, a torch
    hook, the activation reused), the sweep edits the activation and equals the loop: the
    layer runs twice at batch size (clean, then the pass whose copies start at the edited
    activation), neither skipped by a linear shortcut nor stacked from the input."""
    model = _fallback_models()[name]
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(5, 1, 28, 28, generator=g), torch.randint(0, 10, (5,), generator=g)
    metric = metrics.neg_cross_entropy(y)
    sweep, passes, rows = sweep_trace(
        model,
        ["blocks.0.mlp.hook_pre"],
        lambda: ablation_sweep(model, x, metric=metric, layer=0, granularity="neuron"),
    )
    assert passes == 2 and rows["blocks.0.mlp.hook_pre"] == [5, 5]  # a loop: 1 + 12 passes
    _, cache = model.cache_pass(x)
    zeros = torch.zeros_like(cache["blocks.0.mlp.hook_post"])
    expected = neuron_loop(model, x, metric, 0, range(12), zeros)
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)


def test_linear_reader_follows_calls_and_needs_no_global_hooks(neuron_loop):
    from torch import nn

    from explorer.models.hooked_module import linear_reader

    relu = nn.ReLU()  # one activation module called twice: two calls in the traced graph
    shared = _plain(
        [nn.Flatten(), nn.Linear(784, 12), relu, nn.Linear(12, 12), relu, nn.Linear(12, 10)]
    )
    assert linear_reader(shared.model, "blocks.0.mlp.hook_post").hook == "blocks.1.mlp.hook_pre"
    x, y = torch.rand(3, 1, 28, 28), torch.randint(0, 10, (3,))
    for layer in (0, 1):
        metric = metrics.neg_cross_entropy(y)
        sweep = ablation_sweep(shared, x, metric=metric, layer=layer, granularity="neuron")
        expected = neuron_loop(shared, x, metric, layer, range(12), torch.zeros(3, 12))
        assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)
    plain = _plain([nn.Flatten(), nn.Linear(784, 12), nn.ReLU(), nn.Linear(12, 10)])
    assert linear_reader(plain.model, "blocks.0.mlp.hook_post").hook == "hook_logits"
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: None)
    try:
        assert linear_reader(plain.model, "blocks.0.mlp.hook_post") is None
    finally:
        handle.remove()
    plain.model.module.register_forward_hook(lambda m, i, o: o)  # on the container: no tail
    reader = linear_reader(plain.model, "blocks.0.mlp.hook_post")
    assert reader is not None and reader.tail is None  # the whole pass runs, delta added
    x, y = torch.rand(3, 1, 28, 28), torch.randint(0, 10, (3,))
    metric = metrics.neg_cross_entropy(y)
    sweep = ablation_sweep(plain, x, metric=metric, layer=0, granularity="neuron")
    zeros = torch.zeros(3, 12)
    expected = neuron_loop(plain, x, metric, 0, range(12), zeros)
    assert torch.allclose(sweep.after_per_example, expected, atol=1e-5)
    assert linear_reader(plain.model, "blocks.3.mlp.hook_post") is None


def test_builtin_metrics_score_copies_at_once_user_metrics_per_copy(mnist_mlp):
    """Built-in metrics see all copies stacked (same values as one call per copy); a user
    metric is still called on one batch at a time."""
    from explorer.analysis.metrics import evaluate_copies

    g = torch.Generator().manual_seed(3)
    y, wrong = torch.randint(0, 10, (4,), generator=g), torch.randint(0, 10, (4,), generator=g)
    logits = torch.randn(3 * 4, 10, generator=g)
    for metric in (
        metrics.neg_cross_entropy(y),
        metrics.accuracy(y),
        metrics.logit_diff(y, wrong),
    ):
        per_copy = torch.stack([metric(logits[4 * c : 4 * c + 4]) for c in range(3)])
        assert torch.allclose(evaluate_copies(metric, logits, 3, 4), per_copy, atol=1e-6)
    tokens = torch.randint(0, 10, (4, 6), generator=g)
    seq = torch.randn(3 * 4, 6, 10, generator=g)
    loss = metrics.repeated_half_loss(tokens)
    per_copy = torch.stack([loss(seq[4 * c : 4 * c + 4]) for c in range(3)])
    assert torch.allclose(evaluate_copies(loss, seq, 3, 4), per_copy, atol=1e-6)

    seen = []

    def user_metric(logits):
        seen.append(tuple(logits.shape))
        return logits[:, 0]

    x = torch.rand(4, 1, 28, 28, generator=g)
    ablation_sweep(mnist_mlp, x, metric=user_metric, layer=1, granularity="neuron")
    assert set(seen) == {(4, 10)} and len(seen) == 1 + 12  # the clean pass, then each unit


@pytest.mark.parametrize("classes", [10, 300])
def test_neg_cross_entropy_equals_torch_for_few_and_many_classes(classes):
    """Few classes take a hand-written log-softmax (faster on thousands of rows)."""
    g = torch.Generator().manual_seed(0)
    logits = 30 * torch.randn(4096, classes, generator=g)
    labels = torch.randint(0, classes, (4096,), generator=g)
    expected = -torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(metrics.neg_cross_entropy(labels)(logits), expected, atol=1e-4)


def test_head_sweeps_start_after_the_attention_of_their_block(
    mlp_transformer, attn_model, repeated, sweep_trace
):
    """With an MLP, a head's copies start at its block's resid_mid: the attention of its
    block runs once, only the MLP half and later blocks see the copies. Attention-only,
    they start at the next block. Both equal the per-head loop."""
    metric = metrics.repeated_half_loss(repeated)
    rows_of, cases = len(repeated), [(mlp_transformer, 1), (attn_model, 0)]
    for model, layer in cases:
        names = [f"blocks.{i}.attn.hook_pattern" for i in range(2)]
        names += ["blocks.1.mlp.hook_post"] if model is mlp_transformer else []
        sweep, passes, rows = sweep_trace(
            model,
            names,
            lambda model=model, layer=layer: ablation_sweep(
                model, repeated, metric=metric, layer=layer, granularity="head"
            ),
        )
        copies = [rows_of, 4 * rows_of]  # the clean pass, then 4 heads x the batch
        assert passes == 2  # a loop: 1 + 4
        assert rows["blocks.0.attn.hook_pattern"] == [rows_of]  # before the copies: once
        if model is mlp_transformer:
            assert rows["blocks.1.attn.hook_pattern"] == [rows_of]  # its own block's: once
            assert rows["blocks.1.mlp.hook_post"] == copies
        else:
            assert rows["blocks.1.attn.hook_pattern"] == copies  # the next block's
        _, cache = model.cache_pass(repeated)
        zeros = torch.zeros_like(cache[f"blocks.{layer}.attn.hook_z"])
        for unit, after in zip(sweep.units, sweep.after):
            expected = naive_head_ablation(model, repeated, layer, unit.head, metric, zeros)
            assert after.item() == pytest.approx(expected, abs=1e-5)


def test_temporary_hooks_remove_only_their_own(mlp_transformer):
    point = mlp_transformer.model.hook_dict["blocks.0.hook_resid_pre"]
    point.add_hook(lambda act, hook: None)  # someone else's hook
    seen = []
    try:
        with mlp_transformer.hooks(
            [(lambda n: n.endswith("hook_resid_pre"), lambda a, hook: seen.append(hook.name))]
        ):
            mlp_transformer(torch.zeros(1, 3, dtype=torch.long))
            assert len(point.fwd_hooks) == 2
        assert seen == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
        assert len(point.fwd_hooks) == 1  # ours gone, theirs kept
        assert not mlp_transformer.model.hook_dict["blocks.1.hook_resid_pre"].fwd_hooks
    finally:
        point.remove_hooks(including_permanent=True)
