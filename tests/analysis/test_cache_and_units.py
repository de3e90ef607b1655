from __future__ import annotations

import pytest
import torch

from explorer.analysis import Head, Neuron, ResidPosition, parse_unit, run_with_cache
from explorer.analysis.cache import iter_batches
from explorer.analysis.units import all_heads, all_neurons, check_unit


def test_run_with_cache_keeps_only_requested_hooks(attn_model, repeated):
    result = run_with_cache(
        attn_model, repeated, hooks=["blocks.1.attn.hook_pattern", "hook_embed"]
    )
    assert sorted(result.activations) == ["blocks.1.attn.hook_pattern", "hook_embed"]
    _, full = attn_model.cache_pass(repeated)
    assert torch.allclose(result["blocks.1.attn.hook_pattern"], full["blocks.1.attn.hook_pattern"])
    assert torch.allclose(result.output, attn_model(repeated))
    with pytest.raises(KeyError, match="was not cached"):
        result["blocks.0.attn.hook_pattern"]


def test_unknown_hook_names_are_refused_with_suggestions(attn_model, repeated):
    with pytest.raises(ValueError, match="unknown hook 'blocks.0.attn.hook_patern'"):
        run_with_cache(attn_model, repeated, hooks=["blocks.0.attn.hook_patern"])
    with pytest.raises(ValueError, match="layer 2 out of range: valid layers are 0..1"):
        attn_model.hook_name("pattern", 2)
    with pytest.raises(ValueError, match="unknown hook"):
        attn_model.hook_name("post", 0)  # attention-only: no MLP


@pytest.mark.parametrize(
    "text,unit",
    [
        ("head 1.4", Head(1, 4)),
        ("L0H2", Head(0, 2)),
        ("head 1.3@7", Head(1, 3, 7)),
        ("neuron 0.37", Neuron(0, 37)),
        ("L1N5", Neuron(1, 5)),
        ("resid 1@5", ResidPosition(1, 5)),
    ],
)
def test_parse_unit(text, unit):
    assert parse_unit(text) == unit
    assert parse_unit(unit) is unit


def test_parse_unit_rejects_other_text():
    with pytest.raises(ValueError, match="cannot read a unit from 'head one'"):
        parse_unit("head one")
    with pytest.raises(TypeError):
        parse_unit(3)  # type: ignore[arg-type]


def test_check_unit_ranges(attn_model, mnist_mlp):
    assert check_unit(attn_model, unit="head 1.3") == Head(1, 3)
    with pytest.raises(ValueError, match="position 40 out of range"):
        check_unit(attn_model, unit="head 1.3@40")
    with pytest.raises(ValueError, match="no residual stream"):
        check_unit(mnist_mlp, unit="resid 0@1")
    with pytest.raises(ValueError, match="without attention heads"):
        check_unit(mnist_mlp, unit="head 0.0")
    assert len(all_heads(attn_model)) == 8 and len(all_heads(attn_model, layer=1)) == 4
    assert len(all_neurons(mnist_mlp, layer=1)) == 12


def test_iter_batches():
    data = torch.arange(10)
    assert [b.tolist() for b in iter_batches(data, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in iter_batches([(torch.ones(2), torch.zeros(2))], 4)] == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="empty"):
        list(iter_batches(torch.zeros(0), 4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        list(iter_batches(data, 0))


def test_activations_only_stop_after_the_last_block_asked(mlp_transformer):
    from explorer.analysis.cache import run_with_cache

    tokens = torch.randint(0, 30, (2, 8), generator=torch.Generator().manual_seed(0))
    fired = []
    unembed = mlp_transformer.model.hook_dict["unembed.hook_in"]
    unembed.add_hook(lambda act, hook: fired.append(hook.name))
    try:
        full = run_with_cache(mlp_transformer, tokens, hooks=["blocks.0.attn.hook_pattern"])
        assert fired == ["unembed.hook_in"] and full.output.shape[-1] == 30  # logits
        short = run_with_cache(
            mlp_transformer, tokens, hooks=["blocks.0.attn.hook_pattern"], logits=False
        )
        assert fired == ["unembed.hook_in"]  # neither the unembedding nor block 1 ran
        assert torch.equal(short["blocks.0.attn.hook_pattern"], full["blocks.0.attn.hook_pattern"])
        run_with_cache(mlp_transformer, tokens, hooks=["hook_embed"], logits=False)
        assert len(fired) == 2  # a hook outside the blocks: the whole pass
    finally:
        unembed.remove_hooks()
