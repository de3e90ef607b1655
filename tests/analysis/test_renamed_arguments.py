"""One vocabulary (docs/api.md glossary, issue 24): each renamed argument still works for one
release under its old spelling, warns naming the new one, and gives the same result."""

from __future__ import annotations

import pytest
import torch

import explorer
from explorer.analysis import (
    Head,
    ablation_sweep,
    activation_patching,
    attribute,
    audit,
    circuit_svd,
    direct_logit_attribution,
    error_attribution,
    logit_lens,
    maximize_activation,
    metrics,
    run_with_cache,
    top_k_examples,
)
from explorer.analysis.fourier import fourier_spectrum, key_frequencies


def old(fn, *args, match, **kwargs):
    """Call with an old spelling: it must warn, naming the new one."""
    with pytest.warns(DeprecationWarning, match=match):
        return fn(*args, **kwargs)


def test_ablation_sweep_on_an_mlp_sweeps_its_neurons(mnist_mlp):
    """Before: 'has no attention heads' unless unit_type='neuron' was given."""
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    sweep = ablation_sweep(mnist_mlp, x, metric=metrics.neg_cross_entropy(y), layer=1)
    assert len(sweep.units) == mnist_mlp.layer_widths[1] == 12
    assert {type(u).__name__ for u in sweep.units} == {"Neuron"}


def test_ablation_sweep_granularity(attn_model, repeated, mnist_mlp):
    metric = metrics.repeated_half_loss(repeated)
    heads = ablation_sweep(attn_model, repeated, metric=metric)  # a transformer: its heads
    assert heads.units[0] == Head(0, 0) and len(heads.units) == 8
    was = old(ablation_sweep, attn_model, repeated, metric=metric, unit_type="head",
              match=r"ablation_sweep\(granularity=")  # fmt: skip
    assert torch.equal(was.after, heads.after)
    with pytest.raises(ValueError, match="granularity"):
        ablation_sweep(attn_model, repeated, metric=metric, granularity="heads")


def test_batch_size_replaces_max_tokens(attn_model, repeated):
    metric = metrics.repeated_half_loss(repeated)
    rows = ablation_sweep(attn_model, repeated, metric=metric, batch_size=6)
    tokens = old(ablation_sweep, attn_model, repeated, metric=metric, max_tokens=6 * 17,
                 match=r"ablation_sweep\(batch_size=")  # fmt: skip
    assert torch.allclose(rows.after, tokens.after)
    corrupted = repeated.roll(1, 0)
    a = activation_patching(attn_model, repeated, corrupted=corrupted, metric=metric, batch_size=6)
    b = old(activation_patching, attn_model, repeated, corrupted=corrupted, metric=metric,
            max_tokens=8192, match="batch_size")  # fmt: skip
    assert torch.allclose(a.values, b.values, atol=1e-6)


def test_dla_granularity(tiny_lm):
    tokens = torch.tensor([[0, 3, 5, 3], [1, 4, 6, 4]])
    new = direct_logit_attribution(tiny_lm, tokens, target=7, granularity="head")
    was = old(direct_logit_attribution, tiny_lm, tokens, target=7, units="heads",
              match=r"direct_logit_attribution\(granularity=")  # fmt: skip
    assert torch.equal(new.values, was.values) and was.granularity == "head"
    head, value = new.top(1)[0]
    assert isinstance(head, Head) and abs(value) == pytest.approx(float(new.mean().abs().max()))


def test_counts_are_n(tiny_lm, mnist_mlp):
    tokens = torch.tensor([[0, 3, 5, 3]])
    assert torch.equal(
        logit_lens(tiny_lm, tokens, n=2).top_ids,
        old(logit_lens, tiny_lm, tokens, k=2, match=r"logit_lens\(n=").top_ids,
    )
    assert torch.equal(
        circuit_svd(tiny_lm, units="head 0.1", n=2).out_ids,
        old(circuit_svd, tiny_lm, units="head 0.1", k=2, match=r"circuit_svd\(n=").out_ids,
    )
    x = torch.rand(20, 1, 28, 28)
    assert torch.equal(
        top_k_examples(mnist_mlp, x, layer=0, n=3, hooks="post").values,
        old(top_k_examples, mnist_mlp, x, layer=0, k=3, hook="post", match="top_k_examples").values,
    )
    basis = torch.linalg.qr(torch.randn(11, 11)).Q
    spectrum = fourier_spectrum(basis[:, :3])
    assert key_frequencies(spectrum, n=2) == old(key_frequencies, spectrum, top=2, match="n=")


def test_hooks(attn_model, repeated):
    hook = "blocks.0.attn.hook_pattern"
    new = run_with_cache(attn_model, repeated, hooks=[hook])
    was = old(run_with_cache, attn_model, repeated, names=[hook], match=r"run_with_cache\(hooks=")
    assert torch.equal(new[hook], was[hook])


def test_target_and_n_steps(mnist_mlp):
    new = maximize_activation(mnist_mlp, target=3, n_steps=4)
    was = old(maximize_activation, mnist_mlp, logit=3, steps=4, match="maximize_activation")
    assert torch.equal(new.images, was.images)
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    a = error_attribution(mnist_mlp, images, labels=labels, target=2, layer=0)
    b = old(error_attribution, mnist_mlp, images, labels=labels, target_class=2, layer=0,
            match=r"error_attribution\(target=")  # fmt: skip
    assert torch.equal(a, b)
    maps = attribute(mnist_mlp, images[:2], target=1, method="integrated_gradients", n_steps=8)
    was = old(attribute, mnist_mlp, images[:2], target=1, method="integrated_gradients",
              ig_steps=8, match=r"attribute\(n_steps=")  # fmt: skip
    assert torch.allclose(maps.maps, was.maps)


def test_audit_batch_size():
    from explorer.studies.auditing import make_mlp

    m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    x = torch.rand(32, 1, 28, 28)
    a = audit(m, x, method="weights", budget=200, batch_size=8)
    b = old(audit, m, x, method="weights", budget=200, batch=8, match=r"audit\(batch_size=")
    assert torch.equal(a.anomaly, b.anomaly)


def test_a_unit_position_is_position():
    assert Head(1, 2, position=3) == old(Head, 1, 2, pos=3, match=r"Head\(position=")
    assert old(getattr, Head(1, 2, position=3), "pos", match=r"Head\.position") == 3
    assert str(Head(1, 2, position=3)) == "head 1.2@3"


def test_old_and_new_spelling_together_is_an_error(attn_model, repeated):
    with pytest.raises(TypeError, match="write only granularity="):
        ablation_sweep(
            attn_model, repeated, metric=metrics.repeated_half_loss(repeated),
            unit_type="head", granularity="head",
        )  # fmt: skip
