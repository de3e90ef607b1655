from __future__ import annotations

import pytest
import torch

from explorer.analysis import Head, Neuron, ResidPosition, ablate, ablation_sweep, metrics


def naive_head_ablation(model, tokens, layer, head, metric, replacement):
    """Independent computation: a transformer-lens hook written by hand, one unit at a time."""

    def hook(z, hook):
        z = z.clone()
        z[:, :, head] = replacement[:, :, head]
        return z

    logits = model.model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])
    return metric(logits).mean().item()


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_head_sweep_equals_per_unit_loop(attn_model, repeated, kind):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(attn_model, repeated, metric, kind=kind)
    assert [str(u) for u in sweep.units][:2] == ["head 0.0", "head 0.1"] and len(sweep.units) == 8
    for unit, after in zip(sweep.units, sweep.after):
        _, cache = attn_model.model.run_with_cache(repeated)
        z = cache[f"blocks.{unit.layer}.attn.hook_z"]
        replacement = (
            torch.zeros_like(z) if kind == "zero" else z.mean(0, keepdim=True).expand_as(z)
        )
        expected = naive_head_ablation(
            attn_model, repeated, unit.layer, unit.head, metric, replacement
        )
        assert after.item() == pytest.approx(expected, abs=1e-5)
    base = metric(attn_model.model(repeated)).mean().item()
    assert sweep.before == pytest.approx(base, abs=1e-6)
    assert torch.allclose(sweep.effect, sweep.after - base)


def test_resample_sweep_equals_single_ablations(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(attn_model, repeated, metric, kind="resample", seed=3)
    singles = [
        ablate(attn_model, repeated, [u], metric, kind="resample", seed=3).after_mean
        for u in sweep.units
    ]
    assert torch.allclose(sweep.after, torch.tensor(singles), atol=1e-5)


def test_resample_uses_other_examples(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    result = ablate(attn_model, repeated, ["head 1.0"], metric, kind="resample")
    assert not torch.allclose(result.after, result.before)


def test_neuron_sweep_on_mlp_and_cnn(mnist_mlp, mnist_cnn):
    x, y = torch.rand(10, 1, 28, 28), torch.randint(0, 10, (10,))
    metric = metrics.neg_cross_entropy(y)
    for model, layer in ((mnist_mlp, 1), (mnist_cnn, 1)):
        sweep = ablation_sweep(
            model, x, metric, layer=layer, unit_type="neuron", kind="zero", max_tokens=25
        )
        assert len(sweep.units) == model.layer_widths[layer]
        for i in range(len(sweep.units)):

            def hook(act, hook, i=i):
                act = act.clone()
                act[:, i] = 0
                return act

            logits = model.model.run_with_hooks(
                x, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", hook)]
            )
            assert sweep.after[i].item() == pytest.approx(metric(logits).mean().item(), abs=1e-5)
        assert sweep.grid().shape == (2, model.layer_widths[layer])


def test_ablating_everything_in_the_last_layer_hits_logits(mnist_mlp):
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    units = [Neuron(1, i) for i in range(12)]
    result = ablate(mnist_mlp, x, units, metrics.neg_cross_entropy(y))
    bias = mnist_mlp.model.module[-1].bias
    expected = -torch.nn.functional.cross_entropy(bias.expand(6, 10), y, reduction="none")
    assert torch.allclose(result.after, expected, atol=1e-5)
    assert result.hooks == ("blocks.1.mlp.hook_post",) and result.kind == "zero"


def test_position_ablation_only_touches_that_position(attn_model, repeated):
    metric = metrics.next_token_loss(repeated)
    result = ablate(attn_model, repeated, [ResidPosition(0, 5)], metric)
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
    at = ablate(attn_model, repeated, [Head(1, 0, pos=3)], metric)
    everywhere = ablate(attn_model, repeated, [Head(1, 0)], metric)
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
        ablate(attn_model, repeated, units, metrics.repeated_half_loss(repeated))


def test_bad_kind_metric_and_reference(attn_model, repeated, mnist_mlp):
    metric = metrics.repeated_half_loss(repeated)
    with pytest.raises(ValueError, match="unknown ablation kind 'half'"):
        ablate(attn_model, repeated, ["head 0.0"], metric, kind="half")
    with pytest.raises(ValueError, match="one value per example"):
        ablate(attn_model, repeated, ["head 0.0"], lambda logits: logits.mean(-1))
    with pytest.raises(ValueError, match="NaN"):
        ablate(attn_model, repeated, ["head 0.0"], lambda logits: logits[:, 0, 0] * float("nan"))
    with pytest.raises(ValueError, match="reference inputs must match"):
        ablate(attn_model, repeated, ["head 0.0"], metric, kind="mean", reference=repeated[:, :5])
    with pytest.raises(ValueError, match="neuron 99 out of range: valid neurons are 0..15"):
        ablate(mnist_mlp, torch.rand(2, 1, 28, 28), ["neuron 0.99"], lambda l: l[:, 0])
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 1, 28, 28\]"):
        ablate(mnist_mlp, torch.rand(2, 3, 28, 28), ["neuron 0.1"], lambda l: l[:, 0])
    with pytest.raises(ValueError, match="needs a layer"):
        ablation_sweep(mnist_mlp, torch.rand(2, 1, 28, 28), lambda l: l[:, 0], unit_type="neuron")


@pytest.mark.parametrize("kind", ["zero", "mean", "resample"])
def test_fast_sweep_paths_on_a_transformer_with_mlps(mlp_transformer, repeated, kind):
    """Heads fan out at resid_mid, neurons at resid_post: both equal single ablations."""
    metric = metrics.repeated_half_loss(repeated)
    units = [
        Head(0, 1),
        Head(1, 3),
        Head(1, 2, pos=9),
        Neuron(0, 5),
        Neuron(1, 63),
        Neuron(1, 7, pos=12),
    ]
    sweep = ablation_sweep(
        mlp_transformer, repeated, metric, units=units, kind=kind, seed=2, max_tokens=64
    )
    singles = [
        ablate(mlp_transformer, repeated, [u], metric, kind=kind, seed=2).after_mean for u in units
    ]
    assert torch.allclose(sweep.after, torch.tensor(singles), atol=1e-5)
    assert (sweep.effect.abs() > 0).all()  # every unit matters a little in a random model


def test_neuron_sweep_matches_a_hand_written_loop(mlp_transformer, repeated):
    metric = metrics.repeated_half_loss(repeated)
    sweep = ablation_sweep(mlp_transformer, repeated, metric, layer=1, unit_type="neuron")
    for n in (0, 17, 63):

        def hook(post, hook, n=n):
            post = post.clone()
            post[:, :, n] = 0
            return post

        logits = mlp_transformer.model.run_with_hooks(
            repeated, fwd_hooks=[("blocks.1.mlp.hook_post", hook)]
        )
        assert sweep.after[n].item() == pytest.approx(metric(logits).mean().item(), abs=1e-5)
