"""The nnsight backend gives the transformer-lens backend's numbers, on every family.

One tiny random-weight Hugging Face model per decoder family (``hf_tiny``), opened twice
from the same object: ``explorer.load(m)`` (converted to transformer-lens) and
``explorer.load(m, backend="nnsight")`` (nnsight traces of the Hugging Face modules). Every
analysis is run on both and compared to 1e-4.
"""

from __future__ import annotations

import io

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import (
    ablate,
    ablation_sweep,
    activation_patching,
    attribute_tokens,
    attribution_patching,
    composition_scores,
    detect_heads,
    direct_logit_attribution,
    head_scores,
    logit_lens,
    metrics,
    path_patching,
    top_k_examples,
)
from explorer.analysis.ablation import _kept

DECODERS = tuple(f for f in hf_tiny.FAMILIES if f != "bert")
CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"
ATOL = 1e-4


@pytest.fixture(scope="module")
def pairs():
    torch.manual_seed(0)
    tok = hf_tiny.tokenizer()
    out = {}
    for family in DECODERS:
        hf_model = hf_tiny.model(family, tok)
        out[family] = (
            explorer.load(hf_model, tokenizer=tok),
            explorer.load(hf_model, tokenizer=tok, backend="nnsight"),
        )
    return out


@pytest.fixture(params=DECODERS)
def pair(request, pairs):
    return pairs[request.param]


def _tokens(model, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(5, model.d_vocab, (n, 4), generator=g)
    bos = torch.full((n, 1), model.tokenizer.bos_token_id)
    return torch.cat([bos, half, half], dim=1)


def _close(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=ATOL, rtol=0, equal_nan=True), float(
        (a - b).abs().nan_to_num().max()
    )


def test_the_handle_speaks_transformer_lens_names(pair):
    tl, nns = pair
    assert "nnsight" in nns.family and nns.edits_fan_out is False
    assert set(nns.hook_names) <= set(tl.hook_names)
    for kind in ("resid_pre", "z", "pattern", "attn_out", "post", "mlp_out", "resid_post"):
        assert nns.hook_name(kind, 1) in nns.hook_names
    with pytest.raises(ValueError, match="unknown hook"):
        nns.check_hook("blocks.0.hook_nothing")


def test_reading_activations(pair):
    tl, nns = pair
    tokens = _tokens(tl)
    names = nns.hook_names
    a, ca = tl.cache_pass(tokens, names=names)
    b, cb = nns.cache_pass(tokens, names=names)
    _close(a, b)
    for name in names:
        got = cb[name]
        if name.endswith(("hook_k", "hook_v")) and got.shape[2] != ca[name].shape[2]:
            # grouped-query attention: one key/value head per group, as Hugging Face has it
            # (transformer-lens repeats it for each query head of the group)
            got = got.repeat_interleave(ca[name].shape[2] // got.shape[2], dim=2)
        _close(ca[name], got)


def test_an_edit_reaches_the_rest_of_the_pass(pair):
    tl, nns = pair
    tokens = _tokens(tl)
    hook = tl.hook_name("z", 0)

    def kill(act, hook):
        act = act.clone()
        act[:, :, 1] = 0.0
        return act

    _close(tl.run_with_hooks(tokens, [(hook, kill)]), nns.run_with_hooks(tokens, [(hook, kill)]))
    assert not torch.allclose(nns(tokens), nns.run_with_hooks(tokens, [(hook, kill)]))
    last = nns.run_reduced(tokens, [(hook, kill)], lambda logits: logits[:, -1].amax(-1))
    assert last.shape == (tokens.shape[0],)  # reduced inside the trace
    _close(last, tl.run_with_hooks(tokens, [(hook, kill)])[:, -1].amax(-1))
    with pytest.raises(ValueError, match="read-only"):
        nns.run_with_hooks(tokens, [(nns.hook_name("pattern", 0), lambda a, h: a * 0)])


@pytest.mark.parametrize("kind", ["zero", "mean", "resample"])
def test_head_ablation_sweeps(pair, kind):
    tl, nns = pair
    tokens = _tokens(tl)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    a = ablation_sweep(tl, tokens, metric=metric, granularity="head", ablation=kind)
    b = ablation_sweep(nns, tokens, metric=metric, granularity="head", ablation=kind, batch_size=2)
    assert a.units == b.units
    _close(a.after_per_example, b.after_per_example)
    _close(a.before, b.before)


def test_neuron_sweep_in_small_chunks(pair):
    tl, nns = pair
    tokens = _tokens(tl, n=2)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    a = ablation_sweep(tl, tokens, metric=metric, granularity="neuron", layer=1)
    b = ablation_sweep(nns, tokens, metric=metric, granularity="neuron", layer=1, batch_size=4)
    _close(a.after_per_example, b.after_per_example)


@pytest.mark.parametrize("grid", ["resid", "head"])
def test_activation_and_attribution_patching(pair, grid):
    tl, nns = pair
    clean, corrupted = tl.to_tokens(hf_tiny.IOI), tl.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    for patch in (activation_patching, attribution_patching):
        a = patch(tl, clean, corrupted=corrupted, metric=metric, grid=grid)
        b = patch(nns, clean, corrupted=corrupted, metric=metric, grid=grid)
        _close(a.values, b.values)
        _close(a.clean_value, b.clean_value)


def test_direct_logit_attribution_and_logit_lens(pair):
    tl, nns = pair
    tokens = tl.to_tokens(hf_tiny.IOI)
    for units in ("heads", "layers"):
        a = direct_logit_attribution(tl, tokens, target=" Mary", against=" John", granularity=units)
        b = direct_logit_attribution(
            nns, tokens, target=" Mary", against=" John", granularity=units
        )
        assert a.labels == b.labels
        _close(a.values, b.values)
    a, b = logit_lens(tl, tokens, n=3), logit_lens(nns, tokens, n=3)
    _close(a.top_logits, b.top_logits)
    _close(a.target_logit, b.target_logit)
    assert torch.equal(a.target_rank, b.target_rank)


def test_streamed_top_k(pair):
    tl, nns = pair
    tokens = _tokens(tl, n=6)
    a = top_k_examples(tl, tokens, layer=0, n=3, batch_size=2)
    b = top_k_examples(nns, tokens, layer=0, n=3, batch_size=2)
    _close(a.values, b.values)
    assert torch.equal(a.example, b.example) and torch.equal(a.position, b.position)


def test_head_scores_and_token_attribution(pair):
    tl, nns = pair
    tokens = _tokens(tl)
    a, b = head_scores(tl, tokens), head_scores(nns, tokens)
    for kind in ("previous_token", "induction"):
        _close(a.get(kind), b.get(kind))
    for measure in ("mul", "abs"):
        a, b = (
            detect_heads(
                m, tokens, pattern="induction_head", exclude_bos=True, error_measure=measure
            )
            for m in (tl, nns)
        )
        _close(a.per_example, b.per_example)
    ioi = tl.to_tokens(hf_tiny.IOI)
    a = attribute_tokens(tl, ioi, target=" Mary", against=" John", n_steps=8)
    b = attribute_tokens(nns, ioi, target=" Mary", against=" John", n_steps=8)
    _close(a.scores, b.scores)


def test_the_explorer_widget_runs_on_it(pairs):
    nns = pairs["llama"][1]
    metric = metrics.logit_diff(" Mary", " John", model=nns)
    ex = explorer.show(nns, hf_tiny.IOI, metric=metric, corrupted=CORRUPTED)
    assert ex.attention.tokens == nns.to_str_tokens(nns.to_tokens(hf_tiny.IOI)[0])
    ex.intervention.select(1, 2)
    assert (ex.attention.layer, ex.attention.head) == (1, 2)


def test_a_folder_opens_with_device_placement(tmp_path):
    folder = hf_tiny.write_family("llama", tmp_path / "llama")
    placed = explorer.load(folder, backend="nnsight", device_map="cpu")
    moved = explorer.load(folder, backend="nnsight", device="cpu")
    tokens = placed.to_tokens(hf_tiny.IOI)
    _close(placed(tokens), explorer.load(folder)(tokens))
    _close(moved(tokens), placed(tokens))
    assert placed.tokenizer is not None and placed.prepend_bos


def test_path_patching(pair):
    tl, nns = pair
    clean, corrupted = tl.to_tokens(hf_tiny.IOI), tl.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    grouped = getattr(nns.model.hf.config, "num_key_value_heads", None) not in (None, nns.n_heads)
    # grouped-query keys/values are one per key/value head here (Hugging Face's), one per
    # query head in transformer-lens: paths via them are refused here, exact there
    inputs = ("q",) if grouped else ("q", "k", "v")
    a = path_patching(
        tl, clean, corrupted=corrupted, receivers="head 1.2", metric=metric, receiver_inputs=inputs
    )
    b = path_patching(
        nns, clean, corrupted=corrupted, receivers="head 1.2", metric=metric, receiver_inputs=inputs
    )
    _close(a.values, b.values)
    assert b.values[0].isfinite().all() and b.values[1].isnan().all()
    assert tl.kv_hook_heads == tl.n_heads
    if grouped:
        assert nns.kv_hook_heads < nns.n_heads
        for via in ("k", "v"):
            with pytest.raises(ValueError, match=f"path patching via {via} is not exact on"):
                path_patching(
                    nns,
                    clean,
                    corrupted=corrupted,
                    receivers="head 1.2",
                    metric=metric,
                    receiver_inputs=via,
                )


@pytest.mark.parametrize("family", ["llama", "gemma"])
def test_path_patching_via_grouped_keys_is_exact_on_transformer_lens(family, pairs):
    """A grouped-query model and the same model with every key/value head repeated per query
    head (plain multi-head attention) give the same path patching via k and v."""

    tl, nns = pairs[family]
    grouped = nns.model.hf
    config = grouped.config.to_dict()
    group = config["num_attention_heads"] // config["num_key_value_heads"]
    assert group > 1
    config["num_key_value_heads"] = config["num_attention_heads"]
    full = type(grouped)(type(grouped.config).from_dict(config)).eval()
    state = grouped.state_dict()
    d_head = tl.d_head
    for key, value in state.items():
        if key.endswith(("k_proj.weight", "v_proj.weight")):
            per_head = value.reshape(-1, d_head, value.shape[-1])
            state[key] = per_head.repeat_interleave(group, 0).reshape(-1, value.shape[-1])
    full.load_state_dict(state)
    mha = explorer.load(full, tokenizer=tl.tokenizer)
    clean, corrupted = tl.to_tokens(hf_tiny.IOI), tl.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    for via in ("k", "v"):
        a, b = (
            path_patching(
                m,
                clean,
                corrupted=corrupted,
                receivers="head 1.1",
                metric=metric,
                receiver_inputs=via,
            )
            for m in (tl, mha)
        )
        _close(a.values, b.values)
        assert (a.values[0] - a.clean_value).abs().max() > 1e-4  # the paths do something


def test_composition_scores(pair):
    tl, nns = pair  # GPT-2 and NeoX fold their LayerNorms: the norm weights come from the handle
    a, b = composition_scores(tl), composition_scores(nns)
    _close(a.scores, b.scores)
    assert a.scores[:, 0, :, 1, :].isfinite().all()
    for layer in range(nns.n_layers):
        for which in ("ln1", "ln2"):
            kind, w, bias = nns.block_norm(layer, which)
            ref = tl.block_norm(layer, which)
            assert kind == ref[0] and torch.equal(w, ref[1])
            assert (bias is None) == (ref[2] is None)


def test_stopping_after_a_layer_and_no_start(pair):
    tl, nns = pair
    tokens = _tokens(tl)
    for stop in (1, tl.n_layers):
        _close(
            tl.run_with_hooks(tokens, [], stop_at_layer=stop),
            nns.run_with_hooks(tokens, [], stop_at_layer=stop),
        )
    names = [tl.hook_name("z", 0), tl.hook_name("z", 1)]
    _, cache = nns.cache_pass(tokens, names=names, stop_at_layer=1)
    assert list(cache) == [names[0]]  # the block not run does not fire
    with pytest.raises(ValueError, match="stop_at_layer"):
        nns.run_with_hooks(tokens, [], stop_at_layer=tl.n_layers + 1)
    with pytest.raises(ValueError, match="start_at_layer.*hook_resid_pre"):
        nns.model(tokens, start_at_layer=1)


def test_what_each_trace_saves(pairs):
    # the sweep's traces save [copies x batch] metric values, head scores and DLA only
    # per-head or per-position numbers: no trace keeps an activation cache
    tl, nns = pairs["llama"]
    tokens = _tokens(tl)
    batch, heads = tokens.shape[0], tl.n_heads
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    nns.saved_log.clear()
    ablation_sweep(nns, tokens, metric=metric, granularity="head", batch_size=2)
    copies = max(1, 2 // batch)  # batch_size=2 rows: one copy of the batch per pass
    setup, *chunks = nns.saved_log
    # one setup pass keeps the metric and, of each swept hook, its shape: one stored zero
    assert setup.hooks == tuple(tl.hook_name("z", layer) for layer in range(tl.n_layers))
    assert setup.largest == 4 and setup.total == setup.output + 4 * tl.n_layers
    assert len(chunks) == tl.n_layers * heads // copies
    assert max(r.total for r in chunks) <= copies * batch * 4  # [copies x batch] float32
    nns.saved_log.clear()
    head_scores(nns, tokens)
    (record,) = nns.saved_log
    kinds = len(head_scores(tl, tokens).names)
    per_layer = batch * kinds * heads * 4  # [batch, kind, head]: no [batch, head, pos, pos]
    assert record.largest == per_layer and record.total - record.output == tl.n_layers * per_layer
    assert record.output == batch * tokens.shape[1] * tl.d_model * 4  # stopped: no logits
    nns.saved_log.clear()
    direct_logit_attribution(nns, tokens, target=" Mary", against=" John", granularity="head")
    # per hook only the target position: [batch, head, d_head] or [batch, d_model]
    assert 0 < max(r.largest for r in nns.saved_log) <= batch * tl.d_model * 4
    budget = explorer.load(
        nns.model.hf, tokenizer=nns.tokenizer, backend="nnsight", max_saved_bytes=2 * record.total
    )
    head_scores(budget, tokens)  # fits: the per-head scores and the stopped residual
    with pytest.raises(ValueError, match="max_saved_bytes"):
        budget.cache_pass(tokens, names=[tl.hook_name("pattern", 0)])


def _pickled(value):
    """Bytes ``torch.save`` writes for ``value``, as nnsight's response does (protocol 4)."""
    buffer = io.BytesIO()
    torch.save(value, buffer, pickle_protocol=4)
    return len(buffer.getvalue())


@pytest.mark.parametrize("kind", ["zero", "mean", "mean over a reference", "resample"])
def test_ablation_setup_keeps_only_what_the_sources_need(pairs, kind):
    # of each ablated hook the setup pass keeps its shape for zero ablation (one zero
    # expanded: a 4-byte storage), its batch mean for mean ablation, its values to resample
    tl, nns = pairs["gpt2"]
    tokens = _tokens(tl)
    batch, pos = tokens.shape
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    ablation = kind.split()[0]
    reference = _tokens(tl, n=3, seed=1) if "reference" in kind else None
    one_prompt = pos * tl.n_heads * tl.d_head * 4  # a hook_z of one prompt, float32
    kept = {"zero": 4, "mean": one_prompt, "resample": batch * one_prompt}[ablation]
    if reference is not None:
        kept = 4  # the mean comes from the reference's pass, which keeps only the mean
    units, hooks = ["head 0.1", "head 1.2"], (tl.hook_name("z", 0), tl.hook_name("z", 1))
    for run in (ablate, ablation_sweep):
        args = {"units": units} if run is ablate else {"unit_type": "head", "max_tokens": 64}
        nns.saved_log.clear()
        b = run(nns, tokens, metric=metric, ablation=ablation, reference=reference, **args)
        setup = nns.saved_log[0]
        assert setup.hooks == hooks and setup.output == batch * 4  # the metric
        assert setup.largest == kept and setup.total == setup.output + len(hooks) * kept
        if reference is not None:  # its pass: the reference's mean, one prompt per hook
            ref_pass = nns.saved_log[1]
            assert ref_pass.hooks == hooks and ref_pass.largest == one_prompt
        a = run(tl, tokens, metric=metric, ablation=ablation, reference=reference, **args)
        _close(a.before, b.before)
        _close(a.after, b.after)
        if run is ablation_sweep:
            _close(a.after_per_example, b.after_per_example)
    assert not torch.allclose(b.after, torch.as_tensor(b.before))  # the ablations bite
    # what the log counts is what torch.save writes: an expanded zero pickles as one zero
    zero = torch.zeros(()).expand(batch, pos, tl.n_heads, tl.d_head)
    assert _pickled(zero) == _pickled(torch.zeros(())) < _pickled(zero.contiguous())
    # and the kept zero is made on the CPU: an NDIF server moves a GPU tensor with
    # .to("cpu") before pickling, and a .to copy of an expanded tensor is full-size
    assert zero.to(torch.float64).is_contiguous()
    on_device = torch.empty(batch, pos, tl.n_heads, tl.d_head, device="meta")
    shape_only = _kept(nns, set(), "zero", True)(hooks[0], on_device)
    assert shape_only.shape == on_device.shape and shape_only.device.type == "cpu"
    assert _pickled(shape_only) == _pickled(torch.zeros(()))


@pytest.fixture(scope="module")
def simulated(pairs):
    """nnsight's local simulation of a remote trace: serialised as for an NDIF server,
    deserialised with explorer's modules hidden, run here (no server)."""
    out = {}
    for family in ("gpt2", "llama"):
        tl, nns = pairs[family]
        out[family] = (
            tl,
            explorer.load(nns.model.hf, tokenizer=nns.tokenizer, backend="nnsight", remote="local"),
        )
    return out


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_remote_traces_carry_every_analysis(simulated, family):
    tl, rem = simulated[family]
    assert rem._trace_kwargs == {"remote": "local"}
    clean, corrupted = tl.to_tokens(hf_tiny.IOI), tl.to_tokens(CORRUPTED)
    metric = metrics.logit_diff(" Mary", " John", model=tl)
    tokens = _tokens(tl)
    _close(
        tl.cache_pass(tokens, names=["blocks.1.attn.hook_z"])[1]["blocks.1.attn.hook_z"],
        rem.cache_pass(tokens, names=["blocks.1.attn.hook_z"])[1]["blocks.1.attn.hook_z"],
    )
    a = ablation_sweep(tl, tokens, metric=metric, granularity="head")
    _close(
        a.after_per_example,
        ablation_sweep(rem, tokens, metric=metric, granularity="head").after_per_example,
    )
    a, b = (
        activation_patching(tl, clean, corrupted=corrupted, metric=metric, grid="head"),
        activation_patching(rem, clean, corrupted=corrupted, metric=metric, grid="head"),
    )
    _close(a.values, b.values)
    a = path_patching(
        tl, clean, corrupted=corrupted, receivers="head 1.0", metric=metric, receiver_inputs="q"
    )
    _close(
        a.values,
        path_patching(
            rem,
            clean,
            corrupted=corrupted,
            receivers="head 1.0",
            metric=metric,
            receiver_inputs="q",
        ).values,
    )
    a, b = (
        direct_logit_attribution(m, clean, target=" Mary", granularity="head") for m in (tl, rem)
    )
    _close(a.values, b.values)
    a, b = logit_lens(tl, clean, n=3), logit_lens(rem, clean, n=3)
    _close(a.top_logits, b.top_logits)
    a, b = top_k_examples(tl, tokens, layer=0, n=3), top_k_examples(rem, tokens, layer=0, n=3)
    _close(a.values, b.values)
    _close(head_scores(tl, tokens).get("induction"), head_scores(rem, tokens).get("induction"))


def test_remote_options_are_checked(pairs):
    hf_model, tok = pairs["gpt2"][1].model.hf, pairs["gpt2"][1].tokenizer
    handle = explorer.load(hf_model, tokenizer=tok, backend="nnsight", remote=True)
    assert handle.remote is True and handle._trace_kwargs == {"remote": True}
    with pytest.raises(ValueError, match="remote='ndif'.*'local'"):
        explorer.load(hf_model, tokenizer=tok, backend="nnsight", remote="ndif")
    with pytest.raises(ValueError, match="tokenizer"):
        explorer.load(hf_model, backend="nnsight", remote="local")
    clean = handle.to_tokens(hf_tiny.IOI)
    with pytest.raises(ValueError, match="attribution patching takes gradients.*activation_p"):
        attribution_patching(handle, clean, corrupted=clean, metric=lambda logits: logits[:, -1, 0])


def test_bad_backend_and_options_are_named(pairs):
    with pytest.raises(ValueError, match="nnsight"):
        explorer.load(explorer.models.config.MLPConfig(hidden=(4,)), backend="nnsight")
    with pytest.raises(ValueError, match="backend='nnsight' only"):
        explorer.load(explorer.models.config.MLPConfig(hidden=(4,)), remote=True)
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        explorer.load(pairs["gpt2"][1].model.hf, backend="jax")
