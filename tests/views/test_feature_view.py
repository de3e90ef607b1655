"""FeatureView (issue 26.3): one SAE feature's contexts, density, logit effect and a
steer/ablate control, on a toy model with a planted SAE."""

from __future__ import annotations

import pytest
import torch
import traitlets

from explorer.analysis import Feature, neuron_logit_weights
from explorer.analysis.feature_units import feature_activations
from explorer.features import SparseAutoencoder
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.views import FeatureView
from explorer.views.serialize import decode

TOKEN = 5


def _setup():
    model = zoo.transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32,
                                              d_vocab=20, n_ctx=12, seed=1))  # fmt: skip
    sae = SparseAutoencoder.create("hook_embed", d_in=16, d_sae=24, architecture="standard")
    with torch.no_grad():
        e = model.weight("embed")[TOKEN]
        sae.sae.b_dec.zero_()
        sae.sae.W_enc[:, 3] = 10 * e / e.dot(e)
        sae.sae.b_enc[3] = -9.0
        sae.sae.b_enc[4] = -1e3  # dead
        sae.sae.b_enc[6] = 1e3  # dense
        w_u = model.weight("unembed")[:, TOKEN]
        sae.sae.W_dec[3] = 3 * w_u / w_u.norm()
    tokens = torch.randint(0, 20, (30, 10), generator=torch.Generator().manual_seed(0))
    return model, sae, tokens


def test_a_feature_shows_its_contexts_density_and_logit_effect():
    model, sae, tokens = _setup()
    view = FeatureView(model, tokens, sae=sae, n=4, context=2)
    view.feature = 3
    assert view.error == "" and view.selected == "F3"
    acts = decode(view.example_acts)
    assert acts.shape[0] == 4
    e, s = view.example_ids[0], view.example_starts[0]
    real = feature_activations(model, tokens[e : e + 1], sae=sae)[0, s : s + acts.shape[1], 3]
    assert torch.allclose(torch.as_tensor(acts[0]).float(), real, atol=1e-2)
    top_token = view.example_tokens[0][view.example_positions[0] - s]
    assert top_token == model.to_str_tokens([TOKEN])[0]
    assert view.density == pytest.approx(float((tokens == TOKEN).float().mean()))
    weights = neuron_logit_weights(model, units=[Feature(sae, 3)])
    assert view.promoted_tokens[0] == weights.top(0, 1)[0][0] == model.token_strings()[TOKEN]
    assert int(torch.as_tensor(decode(view.hist_counts)).sum()) == tokens.numel()
    assert 4 in view.dead_units and 6 in view.dense_units
    view.feature = 4
    assert view.fires is False


def test_the_steer_control_reports_its_effect_and_ablating_a_silent_feature_changes_nothing():
    model, sae, tokens = _setup()
    view = FeatureView(model, tokens, sae=sae, metric=lambda logits: logits[:, -1, TOKEN])
    view.feature = 3
    view.steer("add", 20.0)
    r = view.steer_result
    assert view.error == "" and r["feature"] == 3 and r["change"] > 1.0
    view.feature = 4  # dead: zeroing it is a no-op
    view.steer("zero")
    assert abs(view.steer_result["change"]) < 1e-5 and view.steer_result["mode"] == "zero"


def test_selection_links_by_label_and_bad_features_are_refused():
    model, sae, tokens = _setup()
    view = FeatureView(model, tokens, sae=sae)
    other = traitlets.HasTraits()
    other.add_traits(selected=traitlets.Unicode("F0"))
    traitlets.link((other, "selected"), (view, "selected"))
    other.selected = "F7"  # a DLA or patching column label
    assert view.feature == 7
    with pytest.raises(traitlets.TraitError, match="feature 24 out of range"):
        view.feature = 24
    with pytest.raises(ValueError, match="hook"):
        FeatureView(
            model,
            tokens,
            sae=SparseAutoencoder.create("blocks.9.hook_resid_post", d_in=16, d_sae=8),
        )


def test_a_click_on_a_feature_s_dla_bar_opens_it_in_the_linked_feature_view():
    from explorer.analysis import direct_logit_attribution
    from explorer.views import LogitAttributionView

    model, sae, tokens = _setup()
    dla = LogitAttributionView(model, tokens[:6], target=TOKEN, sae=sae, granularity="features")
    assert "features" in dla.granularities and dla.error == ""
    expected = direct_logit_attribution(
        model, tokens[:6], target=TOKEN, granularity="feature", sae=sae
    ).mean()
    assert torch.allclose(torch.as_tensor(decode(dla.values)), expected)
    view = FeatureView(model, tokens, sae=sae)
    traitlets.link((dla, "selected"), (view, "selected"))
    dla.selected = "F3"  # what a click on bar 3 sends
    assert view.feature == 3 and view.error == ""
    plain = LogitAttributionView(model, tokens[:6], target=TOKEN)
    assert "features" not in plain.granularities
