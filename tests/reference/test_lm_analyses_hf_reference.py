"""The language-model analyses on Hugging Face models opened by ``explorer.load``, against
transformer-lens, to 1e-5: GPT-2, Llama and Qwen2 tiny models written offline
(``tests/hf_tiny.py``: random weights of std 0.2, norm weights included, and a real BPE
tokenizer so `` Mary`` and `` John`` are single tokens), on the IOI prompt.

Token strings go through the model's tokenizer. transformer-lens's ``logit_attrs`` expects
the final norm folded into ``W_U``, so DLA is compared with it on a folded copy.
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


@pytest.fixture(scope="module", params=["gpt2", "llama", "qwen2"])
def family(request, tmp_path_factory):
    folder = hf_tiny.write_family(request.param, tmp_path_factory.mktemp(request.param))
    handle = explorer.load(folder)
    folded = copy.deepcopy(handle.model)
    folded.load_and_process_state_dict(
        folded.state_dict(),
        fold_ln=True,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
    )
    return handle, handle.to_tokens(hf_tiny.IOI), folded


def _close(ours, ref):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    torch.testing.assert_close(ours.double(), ref.double(), atol=1e-5, rtol=1e-5)


def test_dla_of_mary_over_john_matches_logit_attrs(family):
    handle, tokens, folded = family
    mary, john = handle.to_single_token(" Mary"), handle.to_single_token(" John")
    ours = direct_logit_attribution(handle, tokens, target=" Mary", against=" John", units="all")
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
    handle, tokens, _ = family
    lens = logit_lens(handle, tokens, target=" Mary", k=3)
    _, cache = handle.model.run_with_cache(tokens)
    resid, labels = cache.accumulated_resid(apply_ln=True, return_labels=True)
    ref = resid @ handle.model.W_U + handle.model.b_U
    assert list(lens.labels) == labels
    _close(lens.target_logit, ref[..., handle.to_single_token(" Mary")])
    _close(lens.top_logits, ref.topk(3, dim=-1).values)


@pytest.mark.parametrize(
    "grid, tl_name",
    [("head", "get_act_patch_attn_head_out_all_pos"), ("v", "get_act_patch_attn_head_v_all_pos")],
)
def test_patching_matches_get_act_patch(family, grid, tl_name):
    from transformer_lens import patching

    handle, clean, _ = family
    corrupted = handle.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(
        torch.tensor([handle.to_single_token(" Mary")]),
        torch.tensor([handle.to_single_token(" John")]),
    )
    ours = activation_patching(handle, clean, corrupted, metric, grid)
    _, clean_cache = handle.model.run_with_cache(clean)
    ref = getattr(patching, tl_name)(
        handle.model, corrupted, clean_cache, lambda logits: metric(logits).mean()
    )
    # explorer's loader ungroups grouped-query keys/values (hook_v has a head per query
    # head); transformer-lens's patching still counts cfg.n_key_value_heads of them
    _close(ours.values[:, : ref.shape[1]], ref)


def test_ov_svd_matches_factored_matrix(family):
    handle, _, _ = family
    ours = circuit_svd(handle, circuit="OV")
    S = handle.model.OV.svd()[1]
    _close(ours.S, S.reshape(-1, S.shape[-1]))
