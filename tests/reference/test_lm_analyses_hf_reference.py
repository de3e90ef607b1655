"""The language-model analyses on Hugging Face models opened by ``explorer.load``, against
transformer-lens, to 1e-5: GPT-2, Llama and Qwen2 tiny models written offline
(``tests/hf_tiny.py``: random weights of std 0.2, norm weights included, and a real BPE
tokenizer so `` Mary`` and `` John`` are single tokens), on the IOI prompt.

Token strings go through the model's tokenizer. transformer-lens's ``logit_attrs`` expects
the final norm folded into ``W_U``, so DLA is compared with it on a folded copy.

Each family runs in two columns: the transformer-lens backend (the default) and the nnsight
backend (``backend="nnsight"``: nnsight traces of the Hugging Face modules), both against
the same transformer-lens reference.
"""

from __future__ import annotations

import copy

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import (
    activation_patching,
    circuit_svd,
    direct_logit_attribution,
    logit_lens,
    metrics,
)

CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"


@pytest.fixture(
    scope="module",
    params=[(f, b) for f in ("gpt2", "llama", "qwen2") for b in ("transformer-lens", "nnsight")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def family(request, tmp_path_factory):
    name, backend = request.param
    folder = hf_tiny.write_family(name, tmp_path_factory.mktemp(name))
    reference = explorer.load(folder)
    handle = explorer.load(folder, backend=backend)
    folded = copy.deepcopy(reference.model)
    folded.load_and_process_state_dict(
        folded.state_dict(),
        fold_ln=True,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
    )
    return handle, handle.to_tokens(hf_tiny.IOI), folded, reference


def _close(ours, ref):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    torch.testing.assert_close(ours.double(), ref.double(), atol=1e-5, rtol=1e-5)


def test_dla_of_mary_over_john_matches_logit_attrs(family):
    handle, tokens, folded, _ = family
    mary, john = handle.to_single_token(" Mary"), handle.to_single_token(" John")
    ours = direct_logit_attribution(
        handle, tokens, target=" Mary", against=" John", granularity="all"
    )
    _, cache = folded.run_with_cache(tokens)
    stack, labels = cache.get_full_resid_decomposition(
        expand_neurons=True, pos_slice=-1, return_labels=True
    )
    ref = cache.logit_attrs(
        stack, tokens=torch.tensor([mary]), incorrect_tokens=torch.tensor([john]), pos_slice=-1
    )
    assert list(ours.labels) == labels
    _close(ours.values.T, ref)
    assert ours.direction == "' Mary' - ' John'"


def test_logit_lens_matches_accumulated_resid(family):
    handle, tokens, _, tl = family
    lens = logit_lens(handle, tokens, target=" Mary", n=3)
    _, cache = tl.model.run_with_cache(tokens)
    resid, labels = cache.accumulated_resid(apply_ln=True, return_labels=True)
    ref = resid @ tl.model.W_U + tl.model.b_U
    assert list(lens.labels) == labels
    _close(lens.target_logit, ref[..., handle.to_single_token(" Mary")])
    _close(lens.top_logits, ref.topk(3, dim=-1).values)


@pytest.mark.parametrize(
    "grid, tl_name",
    [("head", "get_act_patch_attn_head_out_all_pos"), ("v", "get_act_patch_attn_head_v_all_pos")],
)
def test_patching_matches_get_act_patch(family, grid, tl_name):
    from transformer_lens import patching

    handle, clean, _, tl = family
    corrupted = handle.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(
        torch.tensor([handle.to_single_token(" Mary")]),
        torch.tensor([handle.to_single_token(" John")]),
    )
    ours = activation_patching(handle, clean, corrupted=corrupted, metric=metric, grid=grid)
    kv_heads = getattr(handle.cfg, "n_key_value_heads", None)
    if (
        grid == "v"
        and "nnsight" in (handle.family or "")
        and kv_heads not in (None, handle.n_heads)
    ):
        # Hugging Face computes values per key/value head: one cell patches a whole group
        # of query heads, which transformer-lens's ungrouped model has no grid for
        assert ours.values.shape == (handle.n_layers, kv_heads)
        assert ours.values.isfinite().all()
        return
    _, clean_cache = tl.model.run_with_cache(clean)
    ref = getattr(patching, tl_name)(
        tl.model, corrupted, clean_cache, lambda logits: metric(logits).mean()
    )
    # explorer's loader ungroups grouped-query keys/values (hook_v has a head per query
    # head); transformer-lens's patching still counts cfg.n_key_value_heads of them
    _close(ours.values[:, : ref.shape[1]], ref)


def test_ov_svd_matches_factored_matrix(family):
    handle, _, _, tl = family
    ours = circuit_svd(handle, circuit="OV")
    S = tl.model.OV.svd()[1]
    _close(ours.S, S.reshape(-1, S.shape[-1]))
