"""``ModelHandle.spent`` counts every pass of the model, however analysis runs it."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import ablate, run_with_cache
from explorer.analysis.units import Neuron
from explorer.models import zoo

torch.set_num_threads(1)


def _delta(handle, before):
    return tuple(a - b for a, b in zip(handle.spent.snapshot(), before))


def test_calls_cached_and_hooked_runs_and_direct_module_calls_all_count():
    m = zoo.mnist_mlp(hidden=(8,))
    x = torch.rand(5, 1, 28, 28)
    before = m.spent.snapshot()
    m(x)
    run_with_cache(m, x[:3], hooks=[m.hook_name("post", 0)])
    with torch.no_grad():
        m.model(x[:2])  # analysis that calls the module itself (captum, editing) is counted too
    assert _delta(m, before) == (3, 0, 10)


def test_a_backward_pass_is_counted_once_per_pass_it_reaches():
    m = zoo.mnist_mlp(hidden=(8,))
    before = m.spent.snapshot()
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    (m(x).sum() + m(x).sum()).backward()
    assert _delta(m, before) == (2, 2, 8)


def test_transformer_passes_and_interventions_count():
    m = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=8)
    tokens = torch.randint(0, 12, (3, 6))
    before = m.spent.snapshot()
    run_with_cache(m, tokens, hooks=[m.hook_name("pattern", 0)])
    assert _delta(m, before) == (1, 0, 3)
    mlp = zoo.mnist_mlp(hidden=(8,))
    before = mlp.spent.snapshot()
    ablate(mlp, torch.rand(6, 1, 28, 28), units=[Neuron(0, 1)], metric=lambda out: out[:, 0].mean())
    forward, _, examples = _delta(mlp, before)
    assert forward >= 2 and examples >= 12  # the clean and the ablated run


def test_a_copy_counts_its_own_passes():
    m = zoo.mnist_mlp(hidden=(8,))
    other = m.copy()
    before, other_before = m.spent.snapshot(), other.spent.snapshot()
    other(torch.rand(2, 1, 28, 28))
    assert _delta(m, before) == (0, 0, 0)
    assert _delta(other, other_before) == (1, 0, 2)


def test_nnsight_traces_count():
    import hf_tiny

    import explorer

    tok = hf_tiny.tokenizer()
    m = explorer.load(hf_tiny.model("gpt2", tok), tokenizer=tok, backend="nnsight")
    tokens = torch.randint(5, 100, (3, 6))
    before = m.spent.snapshot()
    run_with_cache(m, tokens, hooks=[m.hook_names[3]])
    m(tokens[:2])
    assert _delta(m, before) == (2, 0, 5)


def test_a_pass_guard_runs_before_every_pass_and_can_refuse_it():
    m = zoo.mnist_mlp(hidden=(8,))
    seen = []

    def guard(examples):
        seen.append(examples)
        if len(seen) > 2:
            raise RuntimeError("no more passes")

    remove = m.add_pass_guard(guard)
    x = torch.rand(4, 1, 28, 28)
    m(x)
    run_with_cache(m, x[:3], hooks=[m.hook_name("post", 0)])
    with pytest.raises(RuntimeError, match="no more passes"):
        m(x)
    assert seen == [4, 3, 4] and m.spent.forward == 2  # the refused pass was never counted
    remove()
    m(x)
    assert len(seen) == 3 and m.spent.forward == 3
