"""Every analysis and view runs on every Hugging Face family, with checks that it is right.

One tiny random-weight model per family (``hf_tiny``), loaded from a folder written by
``save_pretrained``. The checks do not depend on what random weights compute: batched sweeps
equal one-at-a-time ablations, patching a position whose token is the same in both runs
changes nothing, token labels are the tokenizer's strings.
"""

from __future__ import annotations

import hf_tiny
import pytest
import torch

import explorer
from explorer.analysis import (
    ablate,
    ablation_sweep,
    activation_patching,
    attribution_patching,
    head_scores,
    metrics,
    parse_unit,
    top_k_examples,
)
from explorer.hypotheses import AblationEffect, Examples, HeadScore, Hypothesis, Split

CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def handles(tmp_path_factory):
    tok = hf_tiny.tokenizer()
    root = tmp_path_factory.mktemp("hf-analyses")
    return {f: explorer.load(hf_tiny.write_family(f, root / f, tok)) for f in hf_tiny.FAMILIES}


def _batch(model, n=8, seed=0):
    """``n`` prompts ``[BOS][5 random tokens][the same 5]`` (what induction scores read)."""
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(5, model.d_vocab, (n, 5), generator=g)
    bos = torch.full((n, 1), model.tokenizer.bos_token_id)
    return torch.cat([bos, half, half], dim=1)


def _after(sweep, unit: str) -> float:
    return float(sweep.after[sweep.units.index(parse_unit(unit))])


@pytest.fixture(params=hf_tiny.FAMILIES)
def model(request, handles):
    return handles[request.param]


def test_head_scores_and_top_k_neurons(model):
    tokens = _batch(model)
    scores = head_scores(model, tokens)
    assert tuple(scores.get("previous_token").shape) == (2, 4)
    assert torch.isfinite(scores.get("previous_token")).all()
    top = top_k_examples(model, tokens, layer=1, n=3, batch_size=4)
    assert tuple(top.values.shape) == (model.d_mlp, 3)
    _, cache = model.cache_pass(tokens, names=[model.hook_name("post", 1)])
    best = cache[model.hook_name("post", 1)].flatten(0, 1).max(0).values
    assert torch.allclose(top.values[:, 0], best, atol=1e-5)  # streamed top-1 is the true max


def test_head_and_neuron_sweeps_equal_one_at_a_time_ablation(model):
    tokens = _batch(model)
    metric = metrics.logit_diff(" Mary", " John", model=model)
    heads = ablation_sweep(model, tokens, metric=metric, granularity="head")
    for unit in ("head 0.1", "head 1.3"):
        exact = ablate(model, tokens, units=unit, metric=metric).after.mean()
        assert _after(heads, unit) == pytest.approx(float(exact), abs=1e-4)
    neurons = ablation_sweep(model, tokens, metric=metric, granularity="neuron", layer=0)
    assert len(neurons.units) == model.d_mlp
    exact = ablate(model, tokens, units="neuron 0.7", metric=metric).after.mean()
    assert _after(neurons, "neuron 0.7") == pytest.approx(float(exact), abs=1e-4)


def test_patching_a_position_with_the_same_token_changes_nothing(model):
    clean, corrupted = model.to_tokens(hf_tiny.IOI), model.to_tokens(CORRUPTED)
    assert clean.shape == corrupted.shape
    same = (clean[0] == corrupted[0]).nonzero().flatten()
    differ = (clean[0] != corrupted[0]).nonzero().flatten()
    metric = metrics.logit_diff(" Mary", " John", model=model)
    for patch in (activation_patching, attribution_patching):
        result = patch(model, clean, corrupted=corrupted, metric=metric, grid="resid")
        layer0 = result.values[0]
        assert torch.allclose(layer0[same], torch.tensor(result.corrupted_value), atol=1e-4)
        assert (layer0[differ] - result.corrupted_value).abs().max() > 1e-4
    heads = activation_patching(model, clean, corrupted=corrupted, metric=metric, grid="head")
    assert tuple(heads.values.shape) == (2, 4) and torch.isfinite(heads.values).all()


def test_explorer_shows_a_text_prompt_with_token_strings(model):
    metric = metrics.logit_diff(" Mary", " John", model=model)
    ex = explorer.show(model, hf_tiny.IOI, metric=metric, corrupted=CORRUPTED)
    titles = [ex.get_title(i) for i in range(len(ex.children))]
    assert titles == ["Attention", "Neurons", "Intervene", "Patching"]
    assert ex.attention.tokens == model.to_str_tokens(model.to_tokens(hf_tiny.IOI)[0])
    assert " Mary" in ex.attention.tokens and " drink" in ex.attention.tokens
    assert ex.patching.clean_tokens == ex.attention.tokens
    assert ex.patching.corrupted_tokens == model.to_str_tokens(model.to_tokens(CORRUPTED)[0])
    ex.intervention.select(1, 2)
    assert (ex.attention.layer, ex.attention.head) == (1, 2)


def test_hypotheses_are_tested_on_the_model(model):
    tokens = _batch(model, n=16, seed=1)
    mary, john = model.to_single_token(" Mary"), model.to_single_token(" John")
    data = Examples(tokens, labels=torch.full((16,), mary), alt_labels=torch.full((16,), john))
    split = {"formation": Split(range(8)), "held_out": Split(range(8, 16))}
    for measure in (HeadScore("previous_token"), AblationEffect("logit_diff")):
        verdict = Hypothesis(
            claim="head 1.0 matters",
            units="head 1.0",
            measure=measure,
            threshold=0.0,
            n_boot=100,
            **split,
        ).test(model, data)
        assert verdict.status in ("supported", "refuted", "inconclusive")
        assert verdict.n_examples == 8 and verdict.ci_low <= verdict.value <= verdict.ci_high
