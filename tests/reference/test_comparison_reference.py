"""``compare`` beside the same numbers computed by hand from transformer-lens, to 1e-5.

Model B is model A with every weight perturbed. The hand-written side reads the
HookedTransformer's parameters and full ``run_with_cache`` caches, loops over heads and
queries, and uses scipy's Jensen-Shannon distance and transformer-lens's ``logit_attrs``
(on norm-folded copies, as the DLA reference does); ``compare`` streams batches of 2.
"""

from __future__ import annotations

import copy

import pytest
import torch
from scipy.spatial.distance import jensenshannon

from explorer.analysis import compare
from explorer.models.handle import ModelHandle

from .test_lm_analyses_reference import _family

ATOL = 1e-5


def _perturbed(handle: ModelHandle, scale: float = 0.05) -> ModelHandle:
    tl = copy.deepcopy(handle.model)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in tl.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen) * (p.std() + 0.1))
    return ModelHandle(tl, kind="tokens", name=handle.name + "-tuned")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def pair(request):
    a = _family(request.param)
    b = _perturbed(a)
    tokens = torch.randint(0, 50, (5, 9), generator=torch.Generator().manual_seed(3))
    return a, b, tokens


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    torch.testing.assert_close(ours.double(), ref.double(), atol=ATOL, rtol=1e-5)


def _rel(parts_a, parts_b) -> float:
    parts_a, parts_b = [p.detach() for p in parts_a], [p.detach() for p in parts_b]
    d = sum(float((pb.double() - pa.double()).square().sum()) for pa, pb in zip(parts_a, parts_b))
    a = sum(float(pa.double().square().sum()) for pa in parts_a)
    return (d / a) ** 0.5


def test_weight_changes_match_the_parameters(pair):
    a, b, tokens = pair
    ours = compare(a, tokens, other=b, batch_size=2)
    ta, tb = a.model, b.model
    names = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O")
    for layer in range(a.n_layers):
        at, bt = ta.blocks[layer], tb.blocks[layer]
        for head in range(a.n_heads):
            parts = lambda blk, head=head: [getattr(blk.attn, n)[head] for n in names]
            assert float(ours.weights["head"][layer, head]) == pytest.approx(
                _rel(parts(at), parts(bt)), rel=1e-5
            )
        for neuron in (0, 5, a.d_mlp - 1):
            parts = lambda blk, n=neuron: [blk.mlp.W_in[:, n], blk.mlp.W_out[n]]
            assert float(ours.weights["neuron"][layer, neuron]) == pytest.approx(
                _rel(parts(at), parts(bt)), rel=1e-5
            )
    assert ours.model_weights["unembed"] == pytest.approx(_rel([ta.W_U], [tb.W_U]), rel=1e-5)


def test_attention_and_activation_changes_match_full_caches(pair):
    a, b, tokens = pair
    ours = compare(a, tokens, other=b, batch_size=2)
    _, ca = a.model.run_with_cache(tokens)
    _, cb = b.model.run_with_cache(tokens)
    n_layers, n_heads = a.n_layers, a.n_heads
    js = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    for layer in range(n_layers):
        pa, pb = ca["pattern", layer].double(), cb["pattern", layer].double()
        for head in range(n_heads):
            rows = [
                jensenshannon(pa[i, head, q].numpy(), pb[i, head, q].numpy(), base=2) ** 2
                for i in range(tokens.shape[0])
                for q in range(tokens.shape[1])
            ]
            js[layer, head] = sum(rows) / len(rows)
        post = (cb["post", layer] - ca["post", layer]).double().flatten(0, 1)
        _close(ours.activation_mean["neuron"][layer], post.mean(0))
        _close(ours.activation_spread["neuron"][layer], post.std(0, unbiased=False))
        z = (cb["z", layer] - ca["z", layer]).double().norm(dim=-1).flatten(0, 1)
        _close(ours.activation_mean["head"][layer], z.mean(0))
        _close(ours.activation_spread["head"][layer], z.std(0, unbiased=False))
    _close(ours.attention, js)
    assert float(js.min()) > 0  # every head's pattern moved: the check is not vacuous


def _folded(handle: ModelHandle):
    folded = copy.deepcopy(handle.model)
    folded.load_and_process_state_dict(
        folded.state_dict(),
        fold_ln=True,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
    )
    return folded


def test_dla_change_matches_logit_attrs(pair):
    a, b, tokens = pair
    target, against = torch.tensor([3, 7, 11, 3, 1]), torch.tensor([5, 5, 2, 9, 0])
    ours = compare(a, tokens, other=b, target=target, against=against, batch_size=2)
    refs = {}
    for side, handle in (("a", a), ("b", b)):
        _, cache = _folded(handle).run_with_cache(tokens)
        heads = cache.stack_head_results(layer=-1, pos_slice=-1)
        neurons = cache.stack_neuron_results(layer=-1, pos_slice=-1)
        refs[side] = [
            cache.logit_attrs(s, tokens=target, incorrect_tokens=against, pos_slice=-1).mean(-1)
            for s in (heads, neurons)
        ]
        logits = handle.model(tokens)[:, -1]
        own = logits.gather(1, target[:, None])[:, 0] - logits.gather(1, against[:, None])[:, 0]
        assert getattr(ours, f"logit_{side}") == pytest.approx(float(own.mean().detach()), abs=ATOL)
    shape = ours.dla["head"].shape
    _close(ours.dla["head"], (refs["b"][0] - refs["a"][0]).reshape(shape))
    _close(ours.dla_a["neuron"], refs["a"][1].reshape(ours.dla_a["neuron"].shape))
    _close(ours.dla["neuron"], (refs["b"][1] - refs["a"][1]).reshape(ours.dla["neuron"].shape))
