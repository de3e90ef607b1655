"""Attribution patching beside gradient x (clean - corrupted) computed by hand.

(Activation patching beside transformer-lens's ``patching`` module, every grid, is in
``test_lm_analyses_reference.py``.)"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import attribution_patching, metrics
from explorer.data import repeated_tokens

from .conftest import D_VOCAB, L


@pytest.fixture(scope="module")
def pair():
    clean = repeated_tokens(3, L, D_VOCAB, seed=1)
    corrupted = clean.clone()
    corrupted[:, 1 : L + 1] = repeated_tokens(3, L, D_VOCAB, seed=2)[:, 1 : L + 1]
    return clean, corrupted


def answer_metric(clean, corrupted):
    """At the last position: the logit of a clean first-half token minus the corrupted one."""
    return metrics.logit_diff(clean[:, 2], corrupted[:, 2])


def hand_attribution(model, clean, corrupted, metric):
    """``m_corr + sum_d (clean - corr) * d m / d resid_pre`` per ``[layer, pos]``, one prompt."""
    tl = model.model
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)]
    _, clean_cache = tl.run_with_cache(clean)
    acts = {}

    def keep(act, hook):
        act.retain_grad()
        acts[hook.name] = act

    value = metric(tl.run_with_hooks(corrupted, fwd_hooks=[(n, keep) for n in names]))
    assert value.shape == (1,)
    value.sum().backward()
    rows = [((clean_cache[n] - acts[n].detach()) * acts[n].grad)[0].sum(-1) for n in names]
    tl.zero_grad(set_to_none=True)
    return torch.stack(rows).detach() + float(value.detach())


def test_attribution_patching_is_gradient_times_difference_and_batch_size_free(attn2, pair):
    clean, corrupted = pair[0][:1], pair[1][:1]
    metric_one = answer_metric(clean, corrupted)
    one = attribution_patching(attn2, clean, corrupted=corrupted, metric=metric_one, grid="resid")
    by_hand = hand_attribution(attn2, clean, corrupted, metric_one)
    torch.testing.assert_close(one.values, by_hand, atol=1e-5, rtol=0)
    assert float((by_hand - one.corrupted_value).abs().max()) > 1e-2  # not a trivial grid
    # eight copies of the same pair estimate the same batch-mean metric
    clean8, corrupted8 = clean.repeat(8, 1), corrupted.repeat(8, 1)
    eight = attribution_patching(
        attn2, clean8, corrupted=corrupted8, metric=answer_metric(clean8, corrupted8)
    )
    torch.testing.assert_close(eight.values, one.values, atol=1e-5, rtol=0)
    torch.testing.assert_close(eight.recovery, one.recovery, atol=1e-4, rtol=0)


def test_attribution_patching_of_a_batch_is_the_mean_of_its_prompts(attn2, pair):
    clean, corrupted = pair
    batch = attribution_patching(
        attn2, clean, corrupted=corrupted, metric=answer_metric(clean, corrupted), grid="head"
    )
    each = [
        attribution_patching(
            attn2,
            clean[i : i + 1],
            corrupted=corrupted[i : i + 1],
            metric=answer_metric(clean[i : i + 1], corrupted[i : i + 1]),
            grid="head",
        ).values
        for i in range(clean.shape[0])
    ]
    torch.testing.assert_close(batch.values, torch.stack(each).mean(0), atol=1e-5, rtol=0)
