"""``compare``: per-unit change maps of two models (tests/reference has the hand-written
equality with transformer-lens; here the properties: zero for a copy, batch-size free,
padding left out, plain MLPs, streamed inputs, clear errors, a tidy table)."""

from __future__ import annotations

import hf_tiny
import pytest
import torch

import explorer
from explorer._display import tidy_problems
from explorer.analysis import Comparison, Head, Neuron, compare
from explorer.data import repeated_tokens


def _tuned(model, scale=0.05, seed=0):
    other = model.copy()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return other


def test_a_copy_changed_nothing(mlp_transformer):
    tokens = repeated_tokens(3, 5, 30, seed=0)
    r = compare(mlp_transformer, tokens, other=mlp_transformer.copy(), target=3, against=4)
    for measure, granularity, values in r._maps():
        finite = values[~values.isnan()]
        assert finite.abs().max() < 1e-6, (measure, granularity)
    assert r.logit_a == pytest.approx(r.logit_b)
    assert r.n_inputs == 3 and r.n_tokens == tokens.numel()


def test_the_changed_head_and_neuron_stand_out(mlp_transformer):
    other = mlp_transformer.copy()
    other.set_weight("value", mlp_transformer.weight("value", 1)[3] * 3, 1, head=3)
    w_in = mlp_transformer.weight("mlp_in", 0).clone()
    w_in[:, 17] *= -2
    other.set_weight("mlp_in", w_in, 0)
    r = compare(mlp_transformer, repeated_tokens(4, 6, 30, seed=1), other=other)
    assert r.top(1, measure="weights")[0][0] == Head(1, 3)
    assert r.top(1, measure="weights", granularity="neuron")[0][0] == Neuron(0, 17)
    assert r.top(1, measure="activation_mean", granularity="head")[0][0] == Head(1, 3)
    # layer 0's patterns come before every edit; layer 1's move only through neuron 0.17
    assert float(r.attention[0].abs().max()) == 0 and float(r.attention[1].max()) < 1e-3
    assert r.weights["layer"][0] > 0 and r.weights["layer"][1] > 0


def test_batch_size_and_streaming_do_not_change_the_numbers(mlp_transformer):
    other = _tuned(mlp_transformer)
    tokens = repeated_tokens(5, 6, 30, seed=2)
    whole = compare(mlp_transformer, tokens, other=other, target=2, batch_size=32)
    ones = compare(mlp_transformer, tokens, other=other, target=2, batch_size=1)
    streamed = compare(mlp_transformer, iter(tokens.split(2)), other=other, target=2)
    for r in (ones, streamed):
        for (m, g, a), (_, _, b) in zip(whole._maps(), r._maps()):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, equal_nan=True, msg=m + g)
        assert r.logit_b == pytest.approx(whole.logit_b, abs=1e-5)


def test_per_example_targets_follow_their_rows(mlp_transformer):
    other = _tuned(mlp_transformer)
    tokens = repeated_tokens(4, 6, 30, seed=2)
    target = torch.tensor([1, 2, 3, 4])
    whole = compare(mlp_transformer, tokens, other=other, target=target, batch_size=4)
    split = compare(mlp_transformer, tokens, other=other, target=target, batch_size=3)
    torch.testing.assert_close(whole.dla["head"], split.dla["head"], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="per-example target"):
        compare(mlp_transformer, iter([tokens]), other=other, target=target)


def test_padding_is_left_out():
    tok = hf_tiny.tokenizer()
    a = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok)
    b = explorer.load(hf_tiny.model("gpt2", tok, seed=1), tokenizer=tok)
    prompts = [hf_tiny.IOI, "import json"]
    padded = a.to_tokens(prompts, padding_side="left")
    alone = [compare(a, a.to_tokens(p), other=b) for p in prompts]
    together = compare(a, padded, other=b)
    n = [r.n_tokens for r in alone]
    assert together.n_tokens == sum(n) < padded.numel()
    for get in (lambda r: r.attention, lambda r: r.activation_mean["neuron"]):
        pooled = (get(alone[0]) * n[0] + get(alone[1]) * n[1]) / sum(n)
        torch.testing.assert_close(get(together), pooled, atol=1e-4, rtol=1e-3)


def test_plain_mlp_weights_and_activations(mnist_mlp):
    other = _tuned(mnist_mlp, scale=0.02)
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    r = compare(mnist_mlp, images, other=other, batch_size=4)
    assert r.attention is None and set(r.weights) == {"layer", "neuron"}
    assert tuple(r.weights["neuron"].shape) == (2, 16)
    assert r.weights["neuron"][1, 12:].isnan().all()  # the second layer has 12 units
    w_a, w_b = mnist_mlp.unit_weights(0, 5, "incoming"), other.unit_weights(0, 5, "incoming")
    o_a, o_b = mnist_mlp.unit_weights(0, 5, "outgoing"), other.unit_weights(0, 5, "outgoing")
    d = (w_b - w_a).square().sum() + (o_b - o_a).square().sum()
    expect = (d / (w_a.square().sum() + o_a.square().sum())).sqrt()
    assert float(r.weights["neuron"][0, 5]) == pytest.approx(float(expect), rel=1e-5)
    _, ca = mnist_mlp.cache_pass(images, names=["blocks.1.mlp.hook_post"])
    _, cb = other.cache_pass(images, names=["blocks.1.mlp.hook_post"])
    change = cb["blocks.1.mlp.hook_post"] - ca["blocks.1.mlp.hook_post"]
    torch.testing.assert_close(
        r.activation_mean["neuron"][1, :12], change.mean(0), atol=1e-6, rtol=1e-5
    )


def test_different_architectures_get_a_sentence(mlp_transformer, attn_model):
    with pytest.raises(ValueError, match="one architecture: .* has layer widths"):
        compare(mlp_transformer, torch.tensor([[1, 2]]), other=attn_model)
    with pytest.raises(ValueError, match="against= needs a target="):
        compare(attn_model, torch.tensor([[1, 2]]), other=attn_model.copy(), against=3)


def test_the_result_shows_itself_and_has_a_long_table(mlp_transformer):
    r = compare(
        mlp_transformer, repeated_tokens(2, 4, 30, seed=0), other=_tuned(mlp_transformer), target=5
    )
    assert isinstance(r, Comparison) and len(repr(r)) <= 300 and "->" in repr(r)
    assert "What changed" in r._repr_html_()
    frame = r.to_dataframe()
    assert tidy_problems(frame) == []
    assert set(frame["measure"]) == {
        "weights",
        "attention",
        "activation_mean",
        "activation_spread",
        "dla",
    }
    att = frame.query("measure == 'attention'").pivot(
        index="layer", columns="index", values="value"
    )
    torch.testing.assert_close(torch.tensor(att.to_numpy()).float(), r.attention)
    assert r.map("dla", "neuron").shape == (2, 64)
    with pytest.raises(ValueError, match="unknown measure"):
        r.map("loss")


def test_nnsight_handles_compare_and_patch_as_transformer_lens_ones():
    from explorer.analysis import activation_patching, metrics

    tok = hf_tiny.tokenizer()
    nets = [hf_tiny.model("gpt2", tok, seed=s) for s in (0, 1)]
    tl = [explorer.load(n, tokenizer=tok) for n in nets]
    nn = [explorer.load(n, tokenizer=tok, backend="nnsight") for n in nets]
    prompts = [hf_tiny.IOI, "import json"]
    kw = dict(target=" Mary", against=" John")
    ours = compare(nn[0], nn[0].to_tokens(prompts), other=nn[1], **kw)
    ref = compare(tl[0], tl[0].to_tokens(prompts), other=tl[1], **kw)
    for (m, g, a), (_, _, b) in zip(ours._maps(), ref._maps()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, equal_nan=True, msg=m + g)
    tokens = tl[0].to_tokens(hf_tiny.IOI)
    metric = metrics.logit_diff(tl[0].to_single_token(" Mary"), tl[0].to_single_token(" John"))
    patched = [
        activation_patching(p[0], tokens, other=p[1], metric=metric, grid="head") for p in (nn, tl)
    ]
    torch.testing.assert_close(patched[0].values, patched[1].values, atol=1e-5, rtol=0)


def test_inputs_are_streamed_one_batch_at_a_time(mlp_transformer, monkeypatch):
    """Memory O(units): no pass sees more than batch_size rows, and the result holds only
    per-unit maps, however many inputs went through."""
    other = _tuned(mlp_transformer)
    rows: list[int] = []
    real = type(mlp_transformer).cache_pass

    def counting(self, inputs, *args, **kwargs):
        rows.append(inputs.shape[0])
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(type(mlp_transformer), "cache_pass", counting)
    few = compare(mlp_transformer, repeated_tokens(3, 6, 30, seed=0), other=other, batch_size=2)
    many = compare(mlp_transformer, repeated_tokens(11, 6, 30, seed=0), other=other, batch_size=2)
    assert max(rows) == 2 and len(rows) == 2 * (2 + 6)
    shapes = lambda r: [tuple(v.shape) for _, _, v in r._maps()]
    assert shapes(few) == shapes(many) and many.n_inputs == 11
