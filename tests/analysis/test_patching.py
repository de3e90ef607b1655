from __future__ import annotations

import pytest
import torch

from explorer.analysis import activation_patching, attribution_patching, metrics
from explorer.data import repeated_tokens


@pytest.fixture
def pair():
    clean = repeated_tokens(4, 6, 30, seed=1)
    corrupted = clean.clone()
    corrupted[:, 1:7] = repeated_tokens(4, 6, 30, seed=2)[:, 1:7]  # change the first half only
    return clean, corrupted


def test_resid_grid_equals_naive_loop(mlp_transformer, pair):
    clean, corrupted = pair
    metric = metrics.logit_diff(clean[:, 2], corrupted[:, 2])
    result = activation_patching(
        mlp_transformer, clean, corrupted=corrupted, metric=metric, grid="resid"
    )
    assert result.values.shape == (2, clean.shape[1]) and result.axes == ("layer", "position")
    _, clean_cache = mlp_transformer.cache_pass(clean)
    for layer in range(2):
        name = f"blocks.{layer}.hook_resid_pre"
        for pos in range(clean.shape[1]):

            def hook(act, hook, pos=pos, name=name):
                act = act.clone()
                act[:, pos] = clean_cache[name][:, pos]
                return act

            logits = mlp_transformer.run_with_hooks(corrupted, [(name, hook)])
            assert result.values[layer, pos].item() == pytest.approx(
                metric(logits).mean().item(), abs=1e-5
            )
    clean_value = metric(mlp_transformer(clean)).mean().item()
    assert result.clean_value == pytest.approx(clean_value, abs=1e-6)
    # patching every position of layer 0's input restores the clean run exactly
    assert torch.isfinite(result.recovery).all()


def test_head_grid_and_recovery_bounds(attn_model, pair):
    clean, corrupted = pair
    metric = metrics.logit_diff(clean[:, 2], corrupted[:, 2])
    result = activation_patching(attn_model, clean, corrupted=corrupted, metric=metric, grid="head")
    assert result.values.shape == (2, 4)
    _, clean_cache = attn_model.cache_pass(clean)

    def hook(z, hook):
        z = z.clone()
        z[:, :, 2] = clean_cache["blocks.1.attn.hook_z"][:, :, 2]
        return z

    logits = attn_model.run_with_hooks(corrupted, [("blocks.1.attn.hook_z", hook)])
    assert result.values[1, 2].item() == pytest.approx(metric(logits).mean().item(), abs=1e-5)


def test_attribution_patching_matches_the_linear_estimate(mlp_transformer, pair):
    clean, corrupted = pair
    metric = metrics.logit_diff(clean[:, 2], corrupted[:, 2])
    exact = activation_patching(
        mlp_transformer, clean, corrupted=corrupted, metric=metric, grid="head"
    )
    approx = attribution_patching(
        mlp_transformer, clean, corrupted=corrupted, metric=metric, grid="head"
    )
    assert approx.method == "attribution" and approx.values.shape == exact.values.shape
    assert approx.corrupted_value == pytest.approx(exact.corrupted_value, abs=1e-5)
    corr = torch.corrcoef(torch.stack([exact.values.flatten(), approx.values.flatten()]))[0, 1]
    assert corr > 0.5
    assert not any(p.grad is not None for p in mlp_transformer.parameters())


def test_neuron_grid_on_an_mlp(mnist_mlp):
    x1, x2, y = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28), torch.randint(0, 10, (5,))
    metric = metrics.neg_cross_entropy(y)
    result = activation_patching(mnist_mlp, x1, corrupted=x2, metric=metric, grid="neuron")
    assert result.values.shape == (2, 16) and torch.isnan(result.values[1, 12:]).all()
    approx = attribution_patching(mnist_mlp, x1, corrupted=x2, metric=metric, grid="neuron")
    assert approx.values.shape == (2, 16)


def test_bad_patching_inputs(attn_model, mnist_mlp, pair):
    clean, corrupted = pair
    metric = metrics.logit_diff(clean[:, 2], corrupted[:, 2])
    with pytest.raises(ValueError, match="same shape"):
        activation_patching(attn_model, clean, corrupted=corrupted[:, :-1], metric=metric)
    with pytest.raises(ValueError, match="unknown patching grid"):
        activation_patching(attn_model, clean, corrupted=corrupted, metric=metric, grid="diagonal")
    with pytest.raises(ValueError, match="attention-only"):
        activation_patching(attn_model, clean, corrupted=corrupted, metric=metric, grid="neuron")
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="needs a transformer"):
        activation_patching(mnist_mlp, x, corrupted=x, metric=lambda l: l[:, 0], grid="resid")
    same = activation_patching(attn_model, clean, corrupted=clean, metric=metric, grid="head")
    assert same.recovery.shape == same.values.shape and same.recovery.isnan().all()


# ------------------------------------------------------------- cross-model (issue 28)
def test_cross_model_patching_finds_the_one_changed_head(attn_model, pair):
    """Model B is A with head 1.2's values tripled: patching that head's z from B into A
    gives B's behaviour exactly (recovery 1); every other head carries none of it."""
    clean, _ = pair
    other = attn_model.copy()
    other.set_weight("value", attn_model.weight("value", 1)[2] * 3, 1, head=2)
    metric = metrics.logit_diff(clean[:, 2], clean[:, 3])
    into_a = activation_patching(attn_model, clean, other=other, metric=metric, grid="head")
    assert into_a.models == (other.name, attn_model.name)
    assert into_a.clean_value == pytest.approx(
        float(metric(other(clean)).mean().detach()), abs=1e-5
    )
    assert into_a.corrupted_value == pytest.approx(
        float(metric(attn_model(clean)).mean().detach()), abs=1e-5
    )
    expect = torch.zeros(2, 4)
    expect[1, 2] = 1
    torch.testing.assert_close(into_a.recovery, expect, atol=1e-4, rtol=0)
    back = activation_patching(other, clean, other=attn_model, metric=metric, grid="head")
    torch.testing.assert_close(back.recovery, expect, atol=1e-4, rtol=0)  # and back
    assert "cross-model patching of head" in repr(into_a)


def test_cross_model_patching_into_other_inputs_and_errors(mlp_transformer, attn_model, pair):
    clean, corrupted = pair
    other = mlp_transformer.copy()
    metric = metrics.logit_diff(clean[:, 2], corrupted[:, 2])
    # a copy patched from clean into corrupted is plain activation patching
    cross = activation_patching(
        mlp_transformer, clean, corrupted=corrupted, other=other, metric=metric, grid="neuron"
    )
    same = activation_patching(
        mlp_transformer, clean, corrupted=corrupted, metric=metric, grid="neuron"
    )
    torch.testing.assert_close(cross.values, same.values, equal_nan=True)
    with pytest.raises(ValueError, match="needs corrupted=.*or other="):
        activation_patching(mlp_transformer, clean, metric=metric)
    with pytest.raises(ValueError, match="one architecture"):
        activation_patching(mlp_transformer, clean, other=attn_model, metric=metric, grid="head")
