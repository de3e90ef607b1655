"""Every view shows a running budget meter: ``spent`` follows its model's pass counters after
its own analysis, after page requests, and after passes run elsewhere once the view acts."""

from __future__ import annotations

import torch
from page_requests import invoke

from explorer.analysis import metrics
from explorer.models import zoo
from explorer.views import AttentionView, InterventionPanel, NeuronView
from explorer.views._base import ExplorerWidget

torch.set_num_threads(1)


def _counts(model):
    forward, backward, examples = model.spent.snapshot()
    return {"forward": forward, "backward": backward, "examples": examples}


def test_a_view_starts_with_its_models_passes_and_follows_a_click():
    model = zoo.mnist_mlp(hidden=(16,))
    view = NeuronView(model, torch.rand(40, 1, 28, 28), n=4)
    assert view.spent == _counts(model) and view.spent["forward"] > 0
    before = view.spent["forward"]
    view.neuron = 5  # a click: small passes over the top examples
    assert view.spent == _counts(model) and view.spent["forward"] > before


def test_passes_run_elsewhere_show_at_the_next_request():
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=8)
    tokens = torch.randint(0, 12, (4, 6))
    panel = InterventionPanel(model, tokens, metric={"loss": metrics.repeated_half_loss(tokens)})
    shown = panel.spent["forward"]
    with torch.no_grad():
        model(tokens)  # a cell elsewhere runs the model
    assert panel.spent["forward"] == shown  # the meter moves when the view does something
    invoke(panel, "_page_sweep")
    panel.wait(120)
    assert panel.spent == _counts(model) and panel.spent["forward"] > shown + 1


def test_views_without_a_model_have_no_meter():
    class Plain(ExplorerWidget):
        pass

    assert Plain().spent == {}


def test_the_page_draws_the_meter():
    view = AttentionView(
        zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=8),
        torch.randint(0, 12, (2, 6)),
    )
    assert "exSpentMeter(model)" in view._esm and 'data-testid": "spent"' in view._esm
    assert view.spent["forward"] >= 1
