"""SAE features as units (issue 26.2): top-k, histograms, windows, ablation, sweeps,
patching, logit effects, steering and hypotheses, on a toy model with a small SAE."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import (
    Feature,
    ablate,
    ablation_sweep,
    activation_histogram,
    activation_patching,
    attribution_patching,
    direct_logit_attribution,
    example_windows,
    metrics,
    neuron_logit_weights,
    steer,
    top_k_examples,
)
from explorer.analysis.feature_steering import generate_steered
from explorer.analysis.feature_units import all_features, feature_activations
from explorer.features import SparseAutoencoder, run_spliced
from explorer.hypotheses import (
    AblationEffect,
    Examples,
    Hypothesis,
    NeuronSelectivity,
    Split,
    explain_units,
)
from explorer.models import zoo
from explorer.models.config import TransformerConfig

CFG = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=12, seed=1)
TOKEN = 5  # the planted feature's token


def _model():
    return zoo.transformer(TransformerConfig(**CFG), name="toy")


def _sae(hook="blocks.0.hook_resid_post", architecture="standard", d_sae=32, seed=0):
    sae = SparseAutoencoder.create(
        hook, d_in=16, d_sae=d_sae, architecture=architecture, k=4, seed=seed
    )
    with torch.no_grad():
        for _, p in sae.sae.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return sae


def _tokens(n=12, seq=8, seed=0):
    return torch.randint(0, 20, (n, seq), generator=torch.Generator().manual_seed(seed))


def _planted(model):
    """A ReLU SAE on ``hook_embed`` whose feature 3 fires (1.0) on TOKEN only, feature 4
    never fires, feature 6 fires everywhere; feature 3 writes along W_U[:, TOKEN]."""
    sae = _sae("hook_embed")
    embed = model.weight("embed")
    with torch.no_grad():
        e = embed[TOKEN]
        sae.sae.b_dec.zero_()
        sae.sae.W_enc[:, 3] = 10 * e / e.dot(e)
        sae.sae.b_enc[3] = -9.0
        cos = (embed @ e) / (embed.norm(dim=1) * e.norm())
        assert (10 * cos * embed.norm(dim=1) / e.norm() - 9 < 0).sum() == 19  # only TOKEN fires
        sae.sae.b_enc[4] = -1e3
        sae.sae.b_enc[6] = 1e3
        w_u = model.weight("unembed")[:, TOKEN]
        sae.sae.W_dec[3] = w_u / w_u.norm()
    return sae


def test_top_k_over_features_is_streamed_and_marks_dead_and_dense_features():
    model, x = _model(), _tokens(n=20)
    sae = _planted(model)
    top = top_k_examples(model, x, sae=sae, n=3, batch_size=4)  # five batches
    acts = feature_activations(model, x, sae=sae)  # [b, pos, d_sae]
    flat = acts.permute(2, 0, 1).reshape(sae.d_sae, -1)
    assert torch.allclose(top.values, flat.topk(3, dim=1).values, atol=1e-6)
    assert top.hook == "hook_embed" and tuple(top.values.shape) == (32, 3)
    assert 4 in top.dead_units and 6 in top.dense_units and 3 not in top.dense_units
    assert float(top.density[3]) == pytest.approx(float((x == TOKEN).float().mean()))
    e, p = int(top.example[3, 0]), int(top.position[3, 0])
    assert int(x[e, p]) == TOKEN
    with pytest.raises(ValueError, match="grid='feature' and sae= together"):
        activation_patching(model, x, corrupted=x, metric=metrics.logit_diff(1, 2), grid="feature")
    with pytest.raises(ValueError, match="one of the two"):
        top_k_examples(model, x, n=3)


def test_histograms_and_windows_of_a_feature():
    model, x = _model(), _tokens()
    sae = _planted(model)
    unit = Feature(sae, 3)
    hist = activation_histogram(model, x, unit=unit, bins=4)
    assert int(hist.counts.sum()) == x.numel() and hist.hook == "hook_embed"
    w = example_windows(model, x, unit=unit, examples=torch.tensor([0, 1]),
                        positions=torch.tensor([3, 4]), context=2, after=1)  # fmt: skip
    acts = feature_activations(model, x[:2], sae=sae)[..., 3]
    assert torch.allclose(w.acts[0], acts[0, w.starts[0] : w.starts[0] + 4])


def test_ablating_a_feature_changes_only_its_contribution():
    model, x = _model(), _tokens()
    sae = _sae()
    metric = metrics.logit_diff(1, 2)
    r = ablate(model, x, units=Feature(sae, 5), metric=metric)
    by_hand = metric(run_spliced(model, x, sae, {5: "zero"}))
    assert torch.allclose(r.after, by_hand, atol=1e-5) and r.hooks == (sae.hook,)
    assert torch.allclose(r.before, metric(model(x)), atol=1e-5)
    for ablation in ("mean", "resample"):
        assert torch.isfinite(
            ablate(model, x, units=[Feature(sae, 5)], metric=metric, ablation=ablation).after
        ).all()


@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_post", "blocks.1.hook_attn_out"])
def test_the_feature_sweep_equals_a_loop_of_single_ablations(ablation, hook):
    """From the residual stream after the SAE (resid_post) or stacked copies (attn_out)."""
    model, x = _model(), _tokens(n=6)
    sae = _sae(hook, architecture="topk")
    metric = metrics.logit_diff(1, 2)
    units = all_features(sae)
    sweep = ablation_sweep(model, x, metric=metric, units=units, ablation=ablation, batch_size=16)
    loop = torch.stack(
        [ablate(model, x, units=u, metric=metric, ablation=ablation).after for u in units]
    )
    assert (sweep.after_per_example - loop).abs().max() < 1e-5
    assert list(sweep.to_dataframe()["feature"]) == list(range(32))


def test_feature_patching_equals_patching_each_feature_by_hand():
    model, clean = _model(), _tokens(n=4)
    corrupted = _tokens(n=4, seed=1)
    sae = _sae()
    metric = metrics.logit_diff(1, 2)
    r = activation_patching(
        model, clean, corrupted=corrupted, metric=metric, grid="feature", sae=sae
    )
    assert r.axes == ("layer", "feature") and tuple(r.values.shape) == (1, 32)
    clean_acts = feature_activations(model, clean, sae=sae)
    for i in (0, 7):
        with torch.no_grad():
            by_hand = metric(run_spliced(model, corrupted, sae, {i: clean_acts[..., i]})).mean()
        assert float(r.values[0, i]) == pytest.approx(float(by_hand), abs=1e-5)
    a = attribution_patching(
        model, clean, corrupted=corrupted, metric=metric, grid="feature", sae=sae
    )
    assert a.method == "attribution" and a.values.shape == r.values.shape
    silent = (
        ((clean_acts == 0) & (feature_activations(model, corrupted, sae=sae) == 0))
        .flatten(0, 1)
        .all(0)
    )
    assert torch.allclose(a.values[0, silent], torch.tensor(a.corrupted_value), atol=1e-6)
    moved = (r.values[0] - r.corrupted_value).abs() > 1e-3
    agree = torch.sign(a.values[0] - a.corrupted_value) == torch.sign(
        r.values[0] - r.corrupted_value
    )
    assert agree[moved].float().mean() > 0.7  # a first-order estimate, mostly the right sign


def test_a_feature_s_logit_effect_and_dla_read_its_decoder_through_the_unembedding():
    model, x = _model(), _tokens()
    sae = _planted(model)
    weights = neuron_logit_weights(model, units=sae)
    assert weights.top(Feature(sae, 3), 1)[0][0] == model.token_strings()[TOKEN]
    last = SparseAutoencoder.create(
        "blocks.1.hook_resid_post", d_in=16, d_sae=32, architecture="standard"
    )
    dla = direct_logit_attribution(model, x, granularity="feature", sae=last, target=TOKEN)
    f = feature_activations(model, x, sae=last)[:, -1]
    expected = f * (last.decoder @ model.weight("unembed")[:, TOKEN])
    assert torch.allclose(dla.values, expected, atol=1e-5) and dla.labels[3] == "F3"
    with pytest.raises(ValueError, match="not added to the residual stream"):
        neuron_logit_weights(model, units=SparseAutoencoder.create(
            "blocks.0.attn.hook_pattern", d_in=12, d_sae=8))  # fmt: skip


def test_steering_a_feature_moves_the_metric_and_the_generation():
    model, x = _model(), _tokens(n=4)
    sae = _planted(model)
    metric = lambda logits: logits[:, -1, TOKEN]
    r = steer(model, x, units=Feature(sae, 3), metric=metric, amount=50.0)
    assert r.effect > 10 and len(repr(r)) < 300
    clamp = steer(model, x, units=[Feature(sae, 3)], metric=metric, amount=0.0, mode="clamp")
    assert torch.isfinite(clamp.after).all()
    out = generate_steered(model, x[:, :3], unit=Feature(sae, 3), amount=80.0, n=3)
    assert out.shape == (4, 6) and (out[:, 3:] == TOKEN).all()


def test_feature_hypotheses_get_held_out_verdicts_against_random_features():
    model = _model()
    sae = _planted(model)
    x = _tokens(n=80, seq=6, seed=3)
    concept = (x == TOKEN).any(1)
    data = Examples(x, labels=torch.zeros(80, dtype=torch.long), concept=concept)
    h = Hypothesis(claim="feature 3 detects token 5", units=Feature(sae, 3),
                   measure=NeuronSelectivity("auroc"), threshold=0.9,
                   formation=Split(range(40)), held_out=Split(range(40, 80)))  # fmt: skip
    verdict = h.test(model, data)
    assert verdict.status == "supported", verdict
    assert len(verdict.baseline_units) == 20  # random sets of the SAE's other features
    assert all(
        u.startswith("feature ") and u != str(Feature(sae, 3))
        for s in verdict.baseline_units
        for u in s
    )
    effect = Hypothesis(claim="feature 9 matters", units=[Feature(sae, 9)],
                        measure=AblationEffect("logit_diff"), threshold=5.0,
                        formation=Split(range(40)), held_out=Split(range(40, 80)))  # fmt: skip
    data2 = Examples(x, labels=torch.ones(80, dtype=torch.long), alt_labels=torch.full((80,), 2))
    assert effect.test(model, data2).status in ("refuted", "inconclusive")


def test_features_get_explanations_scored_held_out():
    model = _model()
    sae = _planted(model)
    result = explain_units(model, _tokens(n=60), units=[Feature(sae, 3)], n=1)
    assert result.explanations[0].keys == ((TOKEN,),) and result.scores[0] > 0.99


def test_the_sparse_feature_table_gives_every_column_and_the_windows_example_windows_gives():
    from explorer.analysis.feature_units import feature_table

    model, x = _model(), _tokens()
    sae = _sae(architecture="topk")
    table = feature_table(model, x, sae=sae, batch_size=5)
    dense = feature_activations(model, x, sae=sae).reshape(-1, sae.d_sae)
    for i in (0, 9, 31):
        assert torch.equal(table.column(i), dense[:, i])
    ids, pos = torch.tensor([2, 7]), torch.tensor([1, 6])
    starts, acts = table.windows(9, n_pos=x.shape[1], examples=ids, positions=pos, context=2)
    w = example_windows(model, x, unit=Feature(sae, 9), examples=ids, positions=pos, context=2)
    assert starts == w.starts and torch.allclose(acts, w.acts, atol=1e-6)
