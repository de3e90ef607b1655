"""The streamed top-k's threshold path (only values beating a unit's k-th best) against a
top-k over the whole dataset, with enough batches that both merge paths run."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import neurons, top_k_examples


@pytest.mark.parametrize("largest", [True, False])
def test_threshold_path_equals_the_full_top_k(mlp_transformer, monkeypatch, largest):
    taken = {"sparse": 0, "dense": 0}
    candidates = neurons._candidates

    def counting(*args):
        out = candidates(*args)
        taken["dense" if out is None else "sparse"] += 1
        return out

    monkeypatch.setattr(neurons, "_candidates", counting)
    tokens = torch.randint(0, 30, (400, 16), generator=torch.Generator().manual_seed(3))
    top = top_k_examples(
        mlp_transformer, tokens, layer=0, n=4, batch_size=40, hooks="pre", largest=largest
    )
    _, cache = mlp_transformer.cache_pass(tokens)
    acts = cache["blocks.0.mlp.hook_pre"]
    expected = acts.reshape(-1, 64).topk(4, dim=0, largest=largest).values.T
    assert torch.allclose(top.values, expected, atol=1e-6)
    got = acts[top.example, top.position, torch.arange(64)[:, None]]
    assert torch.allclose(got, top.values, atol=1e-6)
    assert taken["sparse"] >= 1, taken  # the first batch always takes the per-batch top-k


def test_top_k_runs_a_transformer_only_up_to_the_layer_read(mlp_transformer):
    later = []

    def watch(act, hook):
        later.append(1)

    tokens = torch.randint(0, 30, (8, 16), generator=torch.Generator().manual_seed(4))
    with mlp_transformer.hooks([("blocks.1.hook_resid_pre", watch)]):
        top = top_k_examples(mlp_transformer, tokens, layer=0, n=3)
        assert later == []  # layer 1 never ran
        top_k_examples(mlp_transformer, tokens, layer=1, n=3)
        assert later == [1]
    _, cache = mlp_transformer.cache_pass(tokens)
    expected = cache["blocks.0.mlp.hook_post"].reshape(-1, 64).topk(3, dim=0).values.T
    assert torch.allclose(top.values, expected, atol=1e-6)


def test_stop_at_layer_is_checked(mlp_transformer, mnist_mlp):
    tokens = torch.zeros(1, 4, dtype=torch.long)
    out, cache = mlp_transformer.cache_pass(tokens, ["blocks.0.hook_resid_post"], stop_at_layer=1)
    assert torch.equal(out, cache["blocks.0.hook_resid_post"])
    with pytest.raises(ValueError, match="stop_at_layer"):
        mlp_transformer.cache_pass(tokens, stop_at_layer=3)
    with pytest.raises(ValueError, match="stop_at_layer is for decoder transformers"):
        mnist_mlp.cache_pass(torch.zeros(1, 1, 28, 28), stop_at_layer=1)
