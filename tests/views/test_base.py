"""The widget base: the action table, one error reporter, one request counter, unknown
keywords, set_model, and long requests that run in the background and can be cancelled."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import traitlets
from page_requests import invoke

from explorer.analysis import metrics
from explorer.models import zoo
from explorer.views import InterventionPanel, NeuronView, PatchingView
from explorer.views._base import ExplorerWidget
from explorer.views._reporting import page_request

SAFETY_S = 120  # a bound so a broken test cannot hang; never a speed target


class Counter(ExplorerWidget):
    """A fake slow action: one forward pass per step, as a chunked sweep makes."""

    done = traitlets.Int(0, help="steps of the last finished count").tag(sync=True)

    def __init__(self, model, **kwargs):
        self.model = model
        self.started = threading.Event()
        super().__init__(**kwargs)

    @page_request(background=True)
    def _page_count(self, steps: int) -> None:
        x = torch.rand(2, 1, 28, 28)
        for _ in range(int(steps)):
            self.model(x)  # checks for a cancellation first
            self.started.set()
        self.done = int(steps)

    @page_request()
    def _page_fail(self) -> None:
        raise ValueError("no such thing")


def request(widget, action, **arguments):
    return invoke(widget, "_page_" + action, **arguments)


@pytest.fixture
def mlp():
    return zoo.mnist_mlp(hidden=(8,), seed=0)


def test_a_background_request_can_be_cancelled_while_the_kernel_runs_other_cells(mlp):
    widget = Counter(mlp)
    request(widget, "count", steps=10**9)  # returns at once: the count runs on a worker
    assert widget.started.wait(SAFETY_S)
    assert widget.busy == "count"
    # the kernel is free: another cell runs the same model meanwhile
    other_cell = mlp(torch.rand(3, 1, 28, 28))
    assert other_cell.shape == (3, 10)
    # a second long request while one runs is refused with a reason, not queued
    request(widget, "count", steps=1)
    assert widget.error == "RuntimeError: still running count: wait for it or press Cancel"
    request(widget, "cancel")
    assert widget.wait(SAFETY_S)
    assert widget.busy == "" and widget.done == 0  # nothing the cancelled count would set
    assert widget.last_run["action"] == "count" and widget.last_run["outcome"] == "cancelled"
    assert widget.requests == 2  # the refused one and the cancelled one
    request(widget, "count", steps=3)  # the next one runs normally
    assert widget.wait(SAFETY_S)
    assert widget.done == 3 and widget.error == "" and widget.last_run["outcome"] == "done"
    assert widget.requests == 3


def test_one_reporter_one_counter_and_the_reply_the_page_gets(mlp):
    widget = Counter(mlp)
    reply = request(widget, "fail")
    assert reply == {"outcome": "failed", "error": "ValueError: no such thing"}
    assert widget.error == "ValueError: no such thing" and widget.requests == 1
    # a wrong argument is an error, not a crash
    assert request(widget, "count", steps=1, speed=2) == {"outcome": "started", "error": ""}
    assert widget.wait(SAFETY_S)
    assert "unexpected keyword argument 'speed'" in widget.error
    assert widget.last_run["outcome"] == "failed" and widget.requests == 2
    request(widget, "set", done=5)
    assert widget.wait(SAFETY_S)
    assert widget.done == 5 and widget.error == "" and widget.requests == 3
    request(widget, "set", model="another")
    assert widget.wait(SAFETY_S)
    assert widget.error == "ValueError: the page cannot set model" and widget.model is mlp


def test_unknown_keyword_arguments_name_the_allowed_ones(mlp):
    with pytest.raises(TypeError, match="NeuronView got an unexpected keyword argument 'topk'"):
        NeuronView(mlp, torch.rand(10, 1, 28, 28), topk=3)
    with pytest.raises(
        TypeError,
        match=r"allowed are the arguments model, inputs, n, .* and the traits .*\blayer, ",
    ):
        NeuronView(mlp, torch.rand(10, 1, 28, 28), topk=3)
    view = NeuronView(mlp, torch.rand(10, 1, 28, 28), neuron=2)  # a trait is a keyword too
    assert view.neuron == 2


def test_a_cancelled_sweep_leaves_the_panel_as_it_was(attn_model, repeated):
    """Cancel lands between two chunks of the sweep: no effects appear, the panel works on."""
    loss = metrics.next_token_loss(repeated)
    calls = []

    def metric(logits):  # Cancel, pressed while the sweep's clean pass is scored
        calls.append(len(logits))
        if len(calls) == 1:
            panel.cancel()
        return loss(logits)

    panel = InterventionPanel(attn_model, repeated, metric=metric)
    panel.units = ["head 0.1"]
    before = (panel.before_mean, panel.after_mean)
    calls.clear()
    request(panel, "sweep")
    assert panel.wait(SAFETY_S)
    assert panel.last_run["outcome"] == "cancelled" and panel.error == ""
    assert panel.sweep_effects.numpy().size == 0 and panel.sweep_info == ""
    assert (panel.before_mean, panel.after_mean) == before
    assert len(calls) == 1  # no ablated pass ran after the clean one
    calls.clear()
    request(panel, "sweep")
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "cancelled"
    panel.cancel = lambda: None  # now let it run through
    request(panel, "sweep")
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "done"
    assert panel.sweep_effects.numpy().shape == (2, 4)


def test_a_cancelled_grid_change_puts_the_grid_back(attn_model, repeated):
    clean, corrupted = repeated[:3], repeated[3:6]
    loss = metrics.next_token_loss(clean)
    view = PatchingView(attn_model, clean, corrupted=corrupted, metric=loss, grid="head")
    shown = view.values.numpy()
    view.metric = lambda logits: (view.cancel(), loss(logits))[1]  # Cancel at the first pass
    request(view, "set", grid="resid")
    assert view.wait(SAFETY_S)
    assert view.last_run["outcome"] == "cancelled"
    assert view.grid == "head" and np.array_equal(view.values.numpy(), shown)
    view.metric = loss
    request(view, "set", grid="resid")
    assert view.wait(SAFETY_S)
    assert view.grid == "resid" and view.values.numpy().shape == (2, repeated.shape[1])


def test_set_model_swaps_the_model_and_redraws(mlp):
    data = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    view = NeuronView(mlp, data, n=3)
    other = zoo.mnist_mlp(hidden=(8,), seed=1)
    fresh = NeuronView(other, data, n=3)
    assert view.top_values != fresh.top_values
    view.set_model(other)
    assert view.model is other
    for name in ("top_values", "hist_counts", "effect_values", "ablation_values"):
        assert getattr(view, name) == getattr(fresh, name), name
    with pytest.raises(TypeError, match="takes no data"):
        view.set_model(other, data)


def test_a_cancelled_neuron_change_shows_the_old_neuron_whole():
    mlp = zoo.mnist_mlp(hidden=(8, 6), seed=0)
    view = NeuronView(mlp, torch.rand(20, 1, 28, 28), n=3)
    payloads = ("top_values", "top_images", "hist_counts", "effect_values", "ablation_values")
    shown = {name: getattr(view, name) for name in payloads}
    top_examples = view.top_examples

    def cancel_then_read(layer):  # Cancel pressed while the new layer's top-k streams
        view.cancel()
        return top_examples(layer)

    view.top_examples = cancel_then_read
    request(view, "set", layer=1, neuron=4)
    assert view.wait(SAFETY_S) and view.last_run["outcome"] == "cancelled"
    assert (view.layer, view.neuron) == (0, 0)
    assert {name: getattr(view, name) for name in payloads} == shown
    view.top_examples = top_examples
    request(view, "set", layer=1, neuron=4)
    assert view.wait(SAFETY_S) and view.last_run["outcome"] == "done"
    assert (view.layer, view.neuron) == (1, 4) and view.hist_counts != shown["hist_counts"]


def test_a_cancelled_hypothesis_test_records_nothing(monkeypatch):
    from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split, planted
    from explorer.views import HypothesisWidget, hypothesis_view

    h = Hypothesis(
        claim="neuron 0.3 detects the concept",
        units="neuron 0.3",
        measure=NeuronSelectivity(),
        threshold=0.9,
        formation=Split(range(100)),
        held_out=Split(range(100, 200)),
    )
    store = HypothesisStore(":memory:")
    widget = HypothesisWidget(
        h, planted.concept_neuron_model(), planted.concept_examples(200), store=store
    )
    pick = hypothesis_view.pick_data

    def cancel_then_pick(data, hypothesis):  # Cancel pressed as the test starts
        widget.cancel()
        return pick(data, hypothesis)

    monkeypatch.setattr(hypothesis_view, "pick_data", cancel_then_pick)
    request(widget, "test", threshold=0.8)
    assert widget.wait(SAFETY_S) and widget.last_run["outcome"] == "cancelled"
    assert widget.status == "untested" and widget.history == [] and widget.error == ""
    assert store.count("verdicts") == 0
    monkeypatch.setattr(hypothesis_view, "pick_data", pick)
    request(widget, "test")
    assert widget.wait(SAFETY_S) and widget.status == "supported"
    assert widget.threshold == 0.8 and store.count("verdicts") == 1
