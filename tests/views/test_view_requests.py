"""One queue per view, results tied to the model they were computed on, read-only reports.

A page sweep runs on the view's worker thread. Before: ``set_model(B)`` called meanwhile
cleared the view at once, then the sweep on A finished and drew A's effects under B; a
Python ``panel.sweep()`` ran beside it; the board's "re-ran ... on" named B for verdicts
computed on A; and the page could set ``error`` and ``busy``. Each test holds the
analysis at a gate, so what it asserts does not depend on timing; a second caller is given
``JOIN_S`` to (wrongly) run before the gate opens.
"""

from __future__ import annotations

import threading

import pytest
import torch
from page_requests import invoke

from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split, planted
from explorer.views import InterventionPanel, hypothesis_view, intervention_panel
from explorer.views.hypothesis_view import HypothesisBoard

SAFETY_S = 120  # a bound so a broken test cannot hang; never a speed target
JOIN_S = 0.5  # time a second request gets to run while the first is held


def request(widget, action, **arguments):
    return invoke(widget, "_page_" + action, **arguments)


class Gate:
    """Holds calls of ``fn`` until released; counts how many ran at the same time."""

    def __init__(self, fn):
        self.fn = fn
        self.entered = threading.Event()
        self.released = threading.Event()
        self.inside = self.most_inside = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            assert self.released.wait(SAFETY_S)
            return self.fn(*args, **kwargs)
        finally:
            with self.lock:
                self.inside -= 1


def in_thread(fn, *args):
    thread = threading.Thread(target=fn, args=args, daemon=True)
    thread.start()
    return thread


def other_weights(model):
    """A copy of ``model`` with other weights (another fingerprint)."""
    other = model.copy()
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.5)
    assert other.fingerprint() != model.fingerprint()
    return other


@pytest.fixture
def held_sweep(monkeypatch):
    gate = Gate(intervention_panel.ablation_sweep)
    monkeypatch.setattr(intervention_panel, "ablation_sweep", gate)
    return gate


def test_set_model_during_a_page_sweep_never_shows_the_old_sweep(attn_model, repeated, held_sweep):
    panel = InterventionPanel(attn_model, repeated)
    b = other_weights(attn_model)
    request(panel, "sweep")
    assert held_sweep.entered.wait(SAFETY_S) and panel.busy == "sweep"
    swap = in_thread(panel.set_model, b)
    swap.join(JOIN_S)
    assert swap.is_alive(), "set_model did not wait for the sweep running on the old model"
    held_sweep.released.set()
    swap.join(SAFETY_S)
    assert panel.wait(SAFETY_S)
    assert panel.model is b
    assert panel.last_run["outcome"] == "done" and panel.error == ""
    # the sweep on A ended first; B then cleared it: nothing of A is shown under B
    assert panel.sweep_effects.numpy().size == 0 and panel.sweep_info == ""


def test_a_python_sweep_waits_for_the_page_sweep(attn_model, repeated, held_sweep):
    panel = InterventionPanel(attn_model, repeated)
    request(panel, "sweep")
    assert held_sweep.entered.wait(SAFETY_S)
    python = in_thread(panel.sweep)
    python.join(JOIN_S)
    assert held_sweep.calls == 1, "a Python sweep ran beside the page's"
    held_sweep.released.set()
    python.join(SAFETY_S)
    assert panel.wait(SAFETY_S)
    assert held_sweep.calls == 2 and held_sweep.most_inside == 1
    assert panel.error == "" and panel.sweep_effects.numpy().size > 0


def test_a_result_computed_while_the_weights_changed_is_dropped(attn_model, repeated, held_sweep):
    panel = InterventionPanel(attn_model, repeated)
    request(panel, "sweep")
    assert held_sweep.entered.wait(SAFETY_S)
    with torch.no_grad():  # the weights change in place (training in another thread, say)
        next(attn_model.model.parameters()).add_(1.0)
    held_sweep.released.set()
    assert panel.wait(SAFETY_S)
    after = f"{attn_model.name} @{attn_model.fingerprint()}"
    assert panel.last_run["outcome"] == "dropped"
    assert "before its weights changed was dropped, not shown under" in panel.error
    assert after in panel.error
    assert panel.sweep_effects.numpy().size == 0
    panel.sweep()  # run again: on the model the view has now
    assert panel.error == "" and panel.sweep_effects.numpy().size > 0


def test_the_board_names_the_model_its_verdicts_came_from(monkeypatch):
    a = planted.concept_neuron_model()
    b = other_weights(a)
    data = planted.concept_examples(120, seed=4)
    store = HypothesisStore(":memory:")
    hypothesis = Hypothesis(
        claim="neuron 0.3 detects the concept",
        units="neuron 0.3",
        measure=NeuronSelectivity("auroc"),
        threshold=0.9,
        formation=Split(range(60)),
        held_out=Split(range(60, 120)),
        n_boot=50,
        n_baseline=20,
    )
    store.save(hypothesis, project="room", author="ada")
    gate = Gate(hypothesis_view.rerun_project)
    monkeypatch.setattr(hypothesis_view, "rerun_project", gate)
    board = HypothesisBoard(store, "room", model=a, inputs=data)
    request(board, "rerun")
    assert gate.entered.wait(SAFETY_S)
    swap = in_thread(board.set_model, b)
    swap.join(JOIN_S)
    gate.released.set()
    swap.join(SAFETY_S)
    assert board.wait(SAFETY_S) and board.error == ""
    (verdict,) = store.verdicts(hypothesis.id)
    assert verdict.model_fingerprint == a.fingerprint()
    assert f"on {a.name} @{a.fingerprint()}" in board.message
    assert b.fingerprint() not in board.message
    assert board.model_name == f"{b.name} @{b.fingerprint()}"  # what the next re-run uses


def test_the_page_cannot_set_what_reports(attn_model, repeated):
    panel = InterventionPanel(attn_model, repeated)
    # ipywidgets' "update" message from the page: the reports are refused, the rest taken
    panel.set_state({"error": "all is fine", "busy": "sweep", "units": ["head 1.2"]})
    assert panel.error == "" and panel.busy == "" and panel.units == ["head 1.2"]
    assert panel.after_mean is not None
    panel.set_state({"requests": 99, "last_run": {"outcome": "done"}, "spent": {}})
    assert panel.requests == 0 and panel.last_run == {} and panel.spent["forward"] > 0
    # explorer's own "set" request: refused with a sentence
    request(panel, "set", busy="sweep")
    assert panel.wait(SAFETY_S)
    assert "the page cannot set busy (read-only" in panel.error and panel.busy == ""


def test_a_page_click_while_a_request_runs_never_blocks_the_kernel(
    attn_model, repeated, held_sweep
):
    panel = InterventionPanel(attn_model, repeated)
    request(panel, "sweep")
    assert held_sweep.entered.wait(SAFETY_S)
    # the comm handler runs in the kernel's thread: it must return at once (Cancel comes
    # the same way), so a click on the busy view is refused, not queued behind the sweep
    click = in_thread(panel.set_state, {"units": ["head 1.2"]})
    click.join(JOIN_S * 4)
    assert not click.is_alive(), "the page's update waited for the sweep"
    assert "InterventionPanel is still running sweep: wait for it or press Cancel" in panel.error
    assert panel.units == []
    held_sweep.released.set()
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "done"


def test_two_views_workers_never_wait_for_each_other():
    from explorer.views._request_queue import Busy, RequestQueue, in_queue

    class View(RequestQueue):
        busy = ""
        model = None

        def __init__(self, name):
            self.name, self.inside, self.go = name, threading.Event(), threading.Event()

        @in_queue
        def run(self, then=None):
            self.inside.set()
            assert self.go.wait(SAFETY_S)
            return then.run() if then is not None else self.name

    a, b = View("a"), View("b")
    outcome = {}

    def work(view, then):
        try:
            outcome[view.name] = view.run(then)
        except Busy as exc:
            outcome[view.name] = str(exc)

    # a's worker, inside a's request, reaches for b while b's worker holds b (and would
    # reach for a): one of them is refused instead of both waiting forever
    first = in_thread(work, a, b)
    second = in_thread(work, b, a)
    assert a.inside.wait(SAFETY_S) and b.inside.wait(SAFETY_S)
    a.go.set()
    b.go.set()
    first.join(SAFETY_S)
    second.join(SAFETY_S)
    assert not first.is_alive() and not second.is_alive(), "the two workers deadlocked"
    assert any("is still running" in str(v) for v in outcome.values())


def test_a_model_replaced_by_assignment_is_caught_too(attn_model, repeated, held_sweep):
    panel = InterventionPanel(attn_model, repeated)
    b = other_weights(attn_model)
    request(panel, "sweep")
    assert held_sweep.entered.wait(SAFETY_S)
    panel.model = b  # not set_model: nothing waits, but the result is still dropped
    held_sweep.released.set()
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "dropped"
    assert "before another model replaced it was dropped" in panel.error
    assert f"@{b.fingerprint()}" in panel.error and panel.sweep_effects.numpy().size == 0


def test_requests_never_hash_the_weights(attn_model, repeated, monkeypatch):
    """The check around each request reads a version counter: hashing a large model's
    weights (``fingerprint``, 1.5 s for 163M parameters on a busy CPU) would slow clicks."""
    panel = InterventionPanel(attn_model, repeated)

    def no_hashing():
        raise AssertionError("a request hashed the weights")

    monkeypatch.setattr(attn_model, "fingerprint", no_hashing)
    panel.units = ["head 1.2"]
    request(panel, "sweep")
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "done", panel.error
    assert panel.error == "" and panel.sweep_effects.numpy().size > 0
