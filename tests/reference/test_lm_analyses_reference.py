"""The language-model analyses against transformer-lens (and captum), to 1e-5, on two families.

Families: a GPT-2-shaped model (LayerNorm, learned positions, gelu MLP) and a Llama-shaped
one (RMSNorm, rotary, gated silu MLP, grouped-query attention). Norm weights and biases
are random so that the final norm's weight and bias matter. Each is a HookedTransformer
wrapped in explorer's handle, as ``explorer.load`` wraps one.

transformer-lens's ``logit_attrs`` reads components along ``W_U`` without the final
norm's weight (it expects ``fold_ln=True``), so DLA is compared with transformer-lens on
a copy whose norms are folded into the weights: the same function, computed its way.
"""

from __future__ import annotations

import copy

import pytest
import torch

ATOL = 1e-5


def _family(name: str):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from explorer.models.handle import ModelHandle

    common = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16)
    if name == "gpt2":
        cfg = HookedTransformerConfig(
            **common, act_fn="gelu_new", normalization_type="LN", seed=0, device="cpu"
        )
    else:
        cfg = HookedTransformerConfig(
            **common,
            act_fn="silu",
            normalization_type="RMS",
            positional_embedding_type="rotary",
            rotary_dim=8,
            gated_mlp=True,
            n_key_value_heads=2,
            final_rms=True,
            seed=0,
            device="cpu",
        )
    model = HookedTransformer(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.split(".")[-1] == "w" and "ln" in pname:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            elif pname.split(".")[-1] in ("b", "b_O", "b_out", "b_U", "b_in", "b_Q", "b_K", "b_V"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    model.eval()
    return ModelHandle(model, kind="tokens", name=f"tiny-{name}")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def family(request):
    handle = _family(request.param)
    tokens = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(2))
    folded = copy.deepcopy(handle.model)
    folded.load_and_process_state_dict(
        folded.state_dict(),
        fold_ln=True,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,  # keeps each head's output as it is
    )
    return handle, tokens, folded


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    torch.testing.assert_close(ours.double(), ref.double(), atol=ATOL, rtol=1e-5)


# ------------------------------------------------------------------ DLA
UNIT_STACKS = {
    "layers": lambda c: c.decompose_resid(layer=-1, pos_slice=-1, return_labels=True),
    "heads": lambda c: c.stack_head_results(layer=-1, pos_slice=-1, return_labels=True),
    "neurons": lambda c: c.stack_neuron_results(layer=-1, pos_slice=-1, return_labels=True),
    "all": lambda c: c.get_full_resid_decomposition(
        expand_neurons=True, pos_slice=-1, return_labels=True
    ),
}


@pytest.mark.parametrize("units", list(UNIT_STACKS))
def test_dla_matches_logit_attrs(family, units):
    from explorer.analysis import direct_logit_attribution

    handle, tokens, folded = family
    target, against = torch.tensor([3, 7, 11]), torch.tensor([5, 5, 2])
    ours = direct_logit_attribution(
        handle, tokens, target=target, against=against, granularity=units
    )
    _, cache = folded.run_with_cache(tokens)
    stack, labels = UNIT_STACKS[units](cache)
    ref = cache.logit_attrs(stack, tokens=target, incorrect_tokens=against, pos_slice=-1)
    if units == "layers" and handle.model.cfg.positional_embedding_type == "rotary":
        keep = [i for i, label in enumerate(labels) if label != "pos_embed"]
        stack, ref, labels = stack[keep], ref[keep], [labels[i] for i in keep]
    assert list(ours.labels) == list(labels)
    _close(ours.values.T, ref)
    # the model's own logit difference at the last position
    logits = handle.model(tokens)[:, -1]
    _close(
        ours.logit,
        logits.gather(1, target[:, None])[:, 0] - logits.gather(1, against[:, None])[:, 0],
    )


def test_dla_layers_add_up_to_the_logit(family):
    """embed + layers + (norm bias and b_U) is the logit: the decomposition is complete."""
    from explorer.analysis import direct_logit_attribution

    handle, tokens, _ = family
    dla = direct_logit_attribution(handle, tokens, target=4, granularity="layer", position=5)
    _, ln_w, ln_b = handle.final_norm()
    const = handle.weight("b_U")[4] + (0 if ln_b is None else ln_b @ handle.weight("W_U")[:, 4])
    _close(dla.remainder, const.expand(3))


def test_dla_single_token_matches_logit_attrs_at_each_example_position(family):
    from explorer.analysis import direct_logit_attribution

    handle, tokens, folded = family
    positions = torch.tensor([2, 8, 4])
    ours = direct_logit_attribution(
        handle, tokens, target=9, granularity="head", position=positions
    )
    _, cache = folded.run_with_cache(tokens)
    stack = cache.stack_head_results(layer=-1)  # [head, batch, pos, d]
    rows = torch.arange(3)
    ref = cache.logit_attrs(stack, tokens=torch.full((3, 9), 9))[:, rows, positions]
    _close(ours.values.T, ref)


# ---------------------------------------------------------------- logit lens
def test_logit_lens_matches_accumulated_resid(family):
    from explorer.analysis import logit_lens

    handle, tokens, _ = family
    target = torch.randint(0, 50, tokens.shape, generator=torch.Generator().manual_seed(4))
    for incl_mid in (False, True):
        lens = logit_lens(handle, tokens, target=target, n=4, incl_mid=incl_mid)
        _, cache = handle.model.run_with_cache(tokens)
        resid, labels = cache.accumulated_resid(
            apply_ln=True, incl_mid=incl_mid, return_labels=True
        )
        ref = resid @ handle.model.W_U + handle.model.b_U  # [row, batch, pos, vocab]
        assert list(lens.labels) == labels
        _close(
            lens.target_logit, ref.gather(-1, target.expand(len(labels), -1, -1)[..., None])[..., 0]
        )
        values, ids = ref.topk(4, dim=-1)
        _close(lens.top_logits, values)
        assert torch.equal(lens.top_ids, ids)
        ref_rank = (ref > lens.target_logit[..., None]).sum(-1)
        assert torch.equal(lens.target_rank, ref_rank)


# ------------------------------------------------------- neuron-to-logit weights
def test_neuron_logit_weights_match_processed_weights(family):
    """Without inputs: transformer-lens's W_out @ W_U after fold_ln + center_writing_weights."""
    from transformer_lens import HookedTransformer

    from explorer.analysis import neuron_logit_weights

    handle, tokens, _ = family
    processed: HookedTransformer = copy.deepcopy(handle.model)
    processed.load_and_process_state_dict(
        processed.state_dict(), fold_ln=True, center_writing_weights=True, center_unembed=False
    )
    units = ["neuron 0.3", "neuron 1.17", "neuron 1.63"]
    ours = neuron_logit_weights(handle, units=units)
    ref = torch.stack([processed.W_out[0, 3], processed.W_out[1, 17], processed.W_out[1, 63]])
    _close(ours.values, ref @ processed.W_U)
    # with inputs: divided by the mean final-norm scale over their positions
    _, cache = handle.model.run_with_cache(tokens)
    scaled = neuron_logit_weights(handle, tokens, units=units)
    _close(scaled.values, ours.values / cache["ln_final.hook_scale"].mean())


# -------------------------------------------------------------- OV / QK SVD
@pytest.mark.parametrize("circuit", ["OV", "QK"])
def test_circuit_svd_matches_factored_matrix(family, circuit):
    from explorer.analysis import circuit_svd

    handle, _, _ = family
    ours = circuit_svd(handle, circuit=circuit, n=6)
    factored = handle.model.OV if circuit == "OV" else handle.model.QK
    U, S, V = factored.svd()  # [layer, head, d_model, d_head], [layer, head, d_head], ...
    n_layers, n_heads = S.shape[:2]
    _close(ours.S, S.reshape(n_layers * n_heads, -1))
    # each singular pair up to its sign: u v^T agrees
    ref_pairs = torch.einsum("lhdr,lher->lhrde", U, V).reshape(n_layers * n_heads, -1, 32, 32)
    ours_pairs = torch.einsum("hdr,her->hrde", ours.U, ours.V)
    _close(ours_pairs, ref_pairs)
    w_e, w_u = handle.model.W_E, handle.model.W_U
    # the top tokens read through the vocabulary, sign-aligned with the reference
    u, v = U.reshape(n_layers * n_heads, 32, -1), V.reshape(n_layers * n_heads, 32, -1)
    read = torch.einsum("vd,hdr->hrv", w_e, u)
    written = (
        torch.einsum("hdr,dv->hrv", v, w_u)
        if circuit == "OV"
        else torch.einsum("vd,hdr->hrv", w_e, v)
    )
    sign = written.gather(-1, written.abs().argmax(-1, keepdim=True)).sign()
    in_values, in_ids = (read * sign).topk(6, dim=-1)
    out_values, out_ids = (written * sign).topk(6, dim=-1)
    _close(ours.in_values, in_values)
    _close(ours.out_values, out_values)
    assert torch.equal(ours.out_ids, out_ids) and torch.equal(ours.in_ids, in_ids)


# ------------------------------------------------------------ head detection
@pytest.mark.parametrize(
    "pattern", ["previous_token_head", "duplicate_token_head", "induction_head"]
)
def test_detect_heads_matches_detect_head(family, pattern):
    from transformer_lens.head_detector import detect_head

    from explorer.analysis import detect_heads

    handle, _, _ = family
    tl = handle.model
    half = torch.randint(1, 50, (2, 6), generator=torch.Generator().manual_seed(5))
    tokens = torch.cat([torch.zeros(2, 1, dtype=torch.long), half, half], dim=1)  # BOS L L
    prompts = {f"p{i}": tokens[i : i + 1] for i in range(2)}
    # detect_head tokenizes strings (first the whole list, then each prompt); ours takes ids
    tl.to_tokens = lambda seq, **_: tokens if isinstance(seq, list) else prompts[seq]
    try:
        for bos, current in [(False, False), (True, False), (False, True), (True, True)]:
            for measure in ("mul", "abs"):
                ours = detect_heads(
                    handle,
                    tokens,
                    pattern=pattern,
                    exclude_bos=bos,
                    exclude_current_token=current,
                    error_measure=measure,
                )
                ref = detect_head(
                    tl,
                    list(prompts),
                    pattern,
                    exclude_bos=bos,
                    exclude_current_token=current,
                    error_measure=measure,
                )
                if measure == "abs":  # transformer-lens rounds each prompt's score to 3 places
                    rounded = 1 - ((1 - ours.per_example) * 1000).round() / 1000
                    _close(rounded.mean(0), ref)
                else:
                    _close(ours.scores, ref)
    finally:
        del tl.to_tokens


def test_detect_heads_custom_pattern_matches_detect_head(family):
    from transformer_lens.head_detector import detect_head

    from explorer.analysis import detect_heads

    handle, tokens, _ = family
    tl = handle.model
    n = tokens.shape[1]
    custom = torch.tril(torch.ones(n, n)) * (torch.arange(n)[None, :] % 2 == 0)  # even keys
    tl.to_tokens = lambda seq, **_: tokens[:1]
    try:
        ours = detect_heads(handle, tokens[:1], pattern=custom, exclude_bos=True)
        ref = detect_head(tl, "p", custom, exclude_bos=True)
    finally:
        del tl.to_tokens
    _close(ours.scores, ref)


# ------------------------------------------------------------ patching grids
TL_PATCHING = {
    "resid": "get_act_patch_resid_pre",
    "resid_mid": "get_act_patch_resid_mid",
    "attn_out": "get_act_patch_attn_out",
    "mlp_out": "get_act_patch_mlp_out",
    "head": "get_act_patch_attn_head_out_all_pos",
    "head_by_pos": "get_act_patch_attn_head_out_by_pos",
    "q": "get_act_patch_attn_head_q_all_pos",
    "k": "get_act_patch_attn_head_k_all_pos",
    "v": "get_act_patch_attn_head_v_all_pos",
    "q_by_pos": "get_act_patch_attn_head_q_by_pos",
    "k_by_pos": "get_act_patch_attn_head_k_by_pos",
    "v_by_pos": "get_act_patch_attn_head_v_by_pos",
    "pattern": "get_act_patch_attn_head_pattern_all_pos",
    "pattern_by_pos": "get_act_patch_attn_head_pattern_by_pos",
}


@pytest.fixture(scope="module")
def patching_pair(family):
    from explorer.analysis import metrics

    handle, tokens, _ = family
    clean = tokens[:2, :6]
    corrupted = clean.clone()
    corrupted[:, 2] = (clean[:, 2] + 7) % 50
    metric = metrics.logit_diff(clean[:, -1], corrupted[:, -1])
    return handle, clean, corrupted, metric


@pytest.mark.parametrize("grid", list(TL_PATCHING))
def test_patching_grids_match_get_act_patch(patching_pair, grid):
    from transformer_lens import patching

    from explorer.analysis import activation_patching

    handle, clean, corrupted, metric = patching_pair
    ours = activation_patching(handle, clean, corrupted=corrupted, metric=metric, grid=grid)
    _, clean_cache = handle.model.run_with_cache(clean)
    ref = getattr(patching, TL_PATCHING[grid])(
        handle.model, corrupted, clean_cache, lambda logits: metric(logits).mean()
    )
    _close(ours.values, ref)
    assert len(ours.axes) == ours.values.ndim


# ------------------------------------------------------------- path patching
def _path_patch_by_hand(tl, clean, corrupted, senders, receivers, inputs, metric):
    """ARENA's recipe with plain transformer-lens hooks, one sender set at a time."""
    _, clean_cache = tl.run_with_cache(clean)
    _, corrupted_cache = tl.run_with_cache(corrupted)
    group = tl.cfg.n_heads // (tl.cfg.n_key_value_heads or tl.cfg.n_heads)

    def freeze(z, hook):
        layer = hook.layer()
        z = clean_cache[hook.name].clone()
        for l, h in senders:
            if l == layer:
                z[:, :, h] = corrupted_cache[hook.name][:, :, h]
        return z

    recorded = {}

    def record(act, hook):
        recorded[hook.name] = act.clone()

    names = {f"blocks.{l}.attn.hook_{i}" for l, _ in receivers for i in inputs}
    tl.run_with_hooks(
        clean,
        fwd_hooks=[(lambda n: n.endswith("hook_z"), freeze)] + [(n, record) for n in names],
    )

    def patch(act, hook):
        act = act.clone()
        for l, h in receivers:
            for i in inputs:
                if hook.name == f"blocks.{l}.attn.hook_{i}":
                    head = h if i == "q" else h // group
                    act[:, :, head] = recorded[hook.name][:, :, head]
        return act

    return metric(tl.run_with_hooks(clean, fwd_hooks=[(n, patch) for n in names])).mean()


def test_path_patching_matches_the_recipe_with_tl_hooks(patching_pair):
    from explorer.analysis import path_patching

    handle, clean, corrupted, metric = patching_pair
    tl = handle.model
    # keys/values kept grouped (2 for 4 query heads): a path into one head's keys cannot be
    # patched alone, so it is refused (the recipe would patch its whole group)
    grouped = handle.kv_hook_heads < handle.n_heads
    for inputs in (("q",), ("k", "v"), ("q", "k", "v")):
        receivers = [(1, 1), (1, 3)]
        if grouped and inputs != ("q",):
            with pytest.raises(ValueError, match="is not exact on .*each shared by 2"):
                path_patching(
                    handle,
                    clean,
                    corrupted=corrupted,
                    receivers="head 1.1",
                    metric=metric,
                    receiver_inputs=inputs,
                )
            continue
        sweep = path_patching(
            handle,
            clean,
            corrupted=corrupted,
            receivers=["head 1.1", "head 1.3"],
            metric=metric,
            receiver_inputs=inputs,
        )
        ref = torch.stack(
            [
                _path_patch_by_hand(tl, clean, corrupted, [(0, h)], receivers, inputs, metric)
                for h in range(4)
            ]
        )
        _close(sweep.values[0], ref)
        assert sweep.values[1].isnan().all()
    joint = path_patching(
        handle,
        clean,
        corrupted=corrupted,
        senders=["head 0.0", "head 0.2"],
        receivers="head 1.2",
        metric=metric,
        receiver_inputs=("q",) if grouped else ("q", "k", "v"),
    )
    via = "q" if grouped else "qkv"
    ref = _path_patch_by_hand(tl, clean, corrupted, [(0, 0), (0, 2)], [(1, 2)], via, metric)
    _close(joint.values, ref)


# ---------------------------------------------------------- token attribution
def test_attribute_tokens_matches_captum_layer_integrated_gradients(family):
    from captum.attr import LayerIntegratedGradients

    from explorer.analysis import attribute_tokens

    handle, tokens, _ = family
    tl = handle.model
    target, against = torch.tensor([3, 7, 11]), torch.tensor([5, 5, 2])
    ours = attribute_tokens(handle, tokens, target=target, against=against, baseline=1, n_steps=32)

    def f(ids):
        last = tl(ids)[:, -1]
        copies = ids.shape[0] // 3
        t, a = target.repeat(copies), against.repeat(copies)
        return last.gather(1, t[:, None])[:, 0] - last.gather(1, a[:, None])[:, 0]

    lig = LayerIntegratedGradients(f, tl.embed)
    ref, delta = lig.attribute(
        tokens, baselines=torch.ones_like(tokens), n_steps=32, return_convergence_delta=True
    )
    _close(ours.scores, ref.sum(-1))
    _close(ours.delta, delta)
    # completeness: scores add up to f(input) - f(baseline), up to the delta
    _close(ours.scores.sum(-1) - ours.delta, f(tokens) - f(torch.ones_like(tokens)))
