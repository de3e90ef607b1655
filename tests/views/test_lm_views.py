"""LogitAttributionView, LogitLensView and TokenAttributionView without a browser: their
state is the analysis results, a click (a trait set by the page) selects in the kernel,
selections link to other views, bad input lands in the error banner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

from explorer.analysis import attribute_tokens, direct_logit_attribution, logit_lens
from explorer.views import AttentionView, LogitAttributionView, LogitLensView, TokenAttributionView


@pytest.fixture(scope="module")
def model(tiny_lm):
    return tiny_lm


TOKENS = torch.tensor([[1, 4, 7, 4, 9], [2, 3, 5, 3, 8]])


def test_dla_view_shows_the_analysis_and_a_click_selects(model):
    view = LogitAttributionView(model, TOKENS, target="w7", against="w9")
    expected = direct_logit_attribution(model, TOKENS, target=7, against=9, granularity="head")
    assert np.allclose(view.values.numpy(), expected.grid().numpy(), atol=1e-6)
    assert view.direction == "'w7' - 'w9'" and view.logit == pytest.approx(
        float(expected.logit.mean())
    )
    view.selected = "L1H3"  # the page's click
    assert (view.layer, view.head) == (1, 3)
    view.granularity = "neurons"
    assert view.values.numpy().shape == (2, 64)
    view.selected = "L0N17"
    assert (view.layer, view.neuron) == (0, 17)
    view.granularity = "layers"
    layers = direct_logit_attribution(model, TOKENS, target=7, against=9, granularity="layer")
    assert view.labels == list(layers.labels)
    assert np.allclose(view.values.numpy(), layers.mean().numpy(), atol=1e-6)
    assert view.remainder == pytest.approx(float(layers.remainder.mean()), abs=1e-5)
    view.selected = "1_mlp_out"
    assert view.layer == 1 and view.error == ""


def test_dla_view_links_to_the_attention_view(model):
    dla = LogitAttributionView(model, TOKENS, target="w7")
    attention = AttentionView(model, TOKENS)
    traitlets.link((dla, "layer"), (attention, "layer"))
    traitlets.link((dla, "head"), (attention, "head"))
    dla.selected = "L1H2"  # a click on the DLA heatmap moves the attention view
    assert (attention.layer, attention.head) == (1, 2)
    attention.head = 0  # and a click there moves the DLA selection
    assert dla.selected == "L1H0"


def test_dla_view_target_is_edited_in_the_page(model):
    view = LogitAttributionView(model, TOKENS, target="w7")
    view.target = "12"  # an id typed in the page
    expected = direct_logit_attribution(model, TOKENS, target=12)
    assert np.allclose(view.values.numpy(), expected.grid().numpy(), atol=1e-6)
    view.target = "nope"
    assert "not in the vocabulary" in view.error
    view.target = "w3"
    assert view.error == ""
    view.selected = "L9H9"
    assert "no unit 'L9H9'" in view.error


def test_logit_lens_view(model):
    view = LogitLensView(model, TOKENS, n=3)
    lens = logit_lens(model, TOKENS, n=3)
    assert view.row_labels == ["0_pre", "1_pre", "final_post"]
    assert np.array_equal(view.target_rank.numpy(), lens.target_rank[:, 0].numpy())
    assert view.top_tokens[:3] == lens.top_tokens(0, 0)
    assert view.top_logits.numpy().shape == (3, 5, 3)
    view.row, view.position = 1, 4  # a click
    assert view.layer == 1
    view.row = 2
    assert view.layer == 1  # final_post reads the last layer's output
    view.prompt = 1
    assert view.tokens == model.to_str_tokens(TOKENS[1])
    view.target = "w4"
    assert view.target_tokens == ["w4"] * 5
    with pytest.raises(traitlets.TraitError, match="prompt 2 out of range"):
        view.prompt = 2


def test_logit_lens_view_sends_a_window_of_positions(model):
    view = LogitLensView(model, TOKENS, n=2, target="w4")
    lens = logit_lens(model, TOKENS, n=2, target=4)
    view.window, view.position_start = 2, 3  # positions 3 and 4 only
    assert view.tokens == model.to_str_tokens(TOKENS[0, 3:5]) and view.n_positions == 5
    assert np.array_equal(view.target_rank.numpy(), lens.target_rank[:, 0, 3:5].numpy())
    assert len(view.top_tokens) == 3 * 2 * 2
    with pytest.raises(traitlets.TraitError, match="position_start 5 out of range"):
        view.position_start = 5


def test_token_attribution_view(model):
    view = TokenAttributionView(model, TOKENS, target="w7", baseline="w0", n_steps=16)
    expected = attribute_tokens(model, TOKENS, target=7, baseline=0, n_steps=16)
    assert np.allclose(view.scores.numpy(), expected.scores.numpy(), atol=1e-6)
    assert view.delta == pytest.approx(expected.delta.tolist(), abs=1e-6)
    assert view.tokens[1] == model.to_str_tokens(TOKENS[1])
    view.prompt, view.position = 1, 3  # a click on a token
    view.against = "w9"
    assert view.direction == "'w7' - 'w9'" and view.error == ""
    view.target = "w99"
    assert "not in the vocabulary" in view.error


def test_views_refuse_image_models():
    from explorer.models import zoo

    mlp = zoo.mnist_mlp(hidden=(4,))
    for cls in (LogitAttributionView, TokenAttributionView):
        with pytest.raises(ValueError, match="takes images"):
            cls(mlp, torch.rand(1, 1, 28, 28), target=1)
    with pytest.raises(ValueError, match="takes images"):
        LogitLensView(mlp, torch.rand(1, 1, 28, 28))


def test_views_take_one_target_per_prompt(model):
    targets, against = torch.tensor([7, 5]), [9, 8]
    dla = LogitAttributionView(model, TOKENS, target=targets, against=against)
    expected = direct_logit_attribution(
        model, TOKENS, target=targets, against=torch.tensor(against)
    )
    assert np.allclose(dla.values.numpy(), expected.grid().numpy(), atol=1e-6)
    assert dla.target == "(one per prompt)" and dla.error == ""
    dla.target = "w3"  # typing a token replaces the per-prompt targets
    assert dla.direction.startswith("'w3' - 'w9'")
    tokens = TokenAttributionView(model, TOKENS, target=targets, n_steps=8)
    expected = attribute_tokens(model, TOKENS, target=targets, n_steps=8)
    assert np.allclose(tokens.scores.numpy(), expected.scores.numpy(), atol=1e-6)
