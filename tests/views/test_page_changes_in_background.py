"""Page changes that run forward passes (or load a checkpoint) run on the widget's worker
thread: the page's "set" request returns at once with ``busy`` set, the pass runs on another
thread, the traits show the new result once it ends, and Cancel puts the traits back.

Each test sends the request the way the comm does (``_on_page_message``) and holds the
view's analysis call at a gate, so what is asserted while it runs does not depend on timing.
"""

from __future__ import annotations

import threading

import pytest
import torch

import explorer
from explorer.analysis.backdoor_audit import AuditResult
from explorer.models import zoo
from explorer.studies.auditing import make_mlp
from explorer.training import Run
from explorer.views import (
    AttentionView,
    AuditView,
    InterventionPanel,
    LogitLensView,
    attention_view,
    audit_view,
    intervention_panel,
    logit_lens_view,
)
from explorer.views.scrubber import TrainingScrubber
from explorer.views.serialize import decode

SAFETY_S = 120  # a bound so a broken test cannot hang; never a speed target


def request(widget, action, **arguments):
    widget._on_page_message(widget, {"action": action, **arguments}, [])


class Gate:
    """Wraps an analysis call: records the thread it runs on and holds it until released;
    ``cancel_next(view)`` presses Cancel inside the next call, before its passes run."""

    def __init__(self, fn):
        self.fn = fn
        self.threads: list[threading.Thread] = []
        self.entered = threading.Event()
        self.released = threading.Event()
        self.released.set()
        self.to_cancel = None

    def hold(self):
        self.entered.clear()
        self.released.clear()

    def cancel_next(self, view):
        self.to_cancel = view

    def __call__(self, *args, **kwargs):
        self.threads.append(threading.current_thread())
        self.entered.set()
        if not self.released.is_set() and threading.current_thread() is threading.main_thread():
            raise AssertionError("held in the caller's thread: the request blocked the kernel")
        assert self.released.wait(SAFETY_S)
        if self.to_cancel is not None:
            view, self.to_cancel = self.to_cancel, None
            view.cancel()
        return self.fn(*args, **kwargs)


def runs_in_background(view, gate, **changes):
    """Send the page's change; check it returned while the pass is held on a worker thread."""
    gate.hold()
    request(view, "set", **changes)
    try:
        assert view.busy == "set"  # the comm handler has returned; the pass is still held
        assert gate.entered.wait(SAFETY_S)
        assert gate.threads[-1] is not threading.current_thread()
        assert gate.threads[-1].name == f"explorer {type(view).__name__}.set"
    finally:
        gate.released.set()
    assert view.wait(SAFETY_S)
    assert view.busy == "" and view.last_run["outcome"] == "done", view.error
    assert view.error == ""


def cancelled(view, gate, **changes):
    gate.cancel_next(view)
    request(view, "set", **changes)
    assert view.wait(SAFETY_S)
    assert view.last_run["outcome"] == "cancelled" and view.busy == ""


def payloads(view, names):
    return {name: getattr(view, name) for name in names}


def test_intervention_panel_ablates_in_the_background(attn_model, repeated, monkeypatch):
    gate = Gate(intervention_panel.ablate)
    monkeypatch.setattr(intervention_panel, "ablate", gate)
    panel = InterventionPanel(attn_model, repeated)
    shown = ("units", "before", "after", "before_mean", "after_mean", "hooks")
    runs_in_background(panel, gate, units=["head 1.2"])
    fresh = InterventionPanel(attn_model, repeated)
    fresh.units = ["head 1.2"]
    assert payloads(panel, shown) == payloads(fresh, shown) and panel.after_mean is not None

    for change in ({"kind": "mean"}, {"units": ["head 0.1", "head 1.2"]}):
        before = payloads(panel, (*shown, "kind"))
        cancelled(panel, gate, **change)
        assert payloads(panel, (*shown, "kind")) == before  # put back: old units, old numbers
    runs_in_background(panel, gate, kind="mean")
    assert panel.kind == "mean" and panel.after_mean != fresh.after_mean

    # a sweep cell (select) and a typed unit ablate too: in the background, put back whole
    before = payloads(panel, (*shown, "layer", "head"))
    assert (before["layer"], before["head"]) == (0, 0)
    gate.cancel_next(panel)
    request(panel, "select", layer=1, index=3)  # layer 0 -> 1, head 0 -> 3
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "cancelled"
    assert payloads(panel, (*shown, "layer", "head")) == before
    gate.hold()
    request(panel, "add_unit", text="head 0.3")
    assert panel.busy == "add_unit" and gate.entered.wait(SAFETY_S)
    assert gate.threads[-1] is not threading.current_thread()
    gate.released.set()
    assert panel.wait(SAFETY_S) and panel.last_run["outcome"] == "done"
    assert panel.units == ["head 1.2", "head 0.3"] and panel.error == ""


def test_python_assignment_still_runs_in_the_callers_thread(attn_model, repeated, monkeypatch):
    gate = Gate(intervention_panel.ablate)
    monkeypatch.setattr(intervention_panel, "ablate", gate)
    panel = InterventionPanel(attn_model, repeated)
    panel.units = ["head 0.1"]  # a cell: done when the assignment returns
    assert gate.threads == [threading.current_thread()] and panel.busy == ""
    assert decode(panel.after).shape == (repeated.shape[0],)
    panel.select(1, 2)
    assert gate.threads[-1] is threading.current_thread()
    assert (panel.layer, panel.head, panel.units) == (1, 2, ["head 1.2"])


def test_logit_lens_target_runs_in_the_background(attn_model, repeated, monkeypatch):
    gate = Gate(logit_lens_view.logit_lens)
    monkeypatch.setattr(logit_lens_view, "logit_lens", gate)
    view = LogitLensView(attn_model, repeated, k=3)
    shown = ("target", "target_rank", "target_logit", "target_tokens", "top_tokens")
    first = payloads(view, shown)
    runs_in_background(view, gate, target="7")
    fresh = LogitLensView(attn_model, repeated, k=3, target=7)
    assert payloads(view, shown[1:]) == payloads(fresh, shown[1:]) and view.target == "7"
    assert view.target_rank != first["target_rank"]
    before = payloads(view, shown)
    cancelled(view, gate, target="9")
    assert payloads(view, shown) == before


def test_attention_prompt_runs_in_the_background(attn_model, repeated, monkeypatch):
    gate = Gate(attention_view.attention_patterns)
    monkeypatch.setattr(attention_view, "attention_patterns", gate)
    view = AttentionView(attn_model, repeated)
    shown = ("prompt", "tokens", "thumbnails", "pattern")
    first = payloads(view, shown)
    runs_in_background(view, gate, prompt=2)
    fresh = AttentionView(attn_model, repeated, prompt=2)
    assert payloads(view, shown) == payloads(fresh, shown) and view.pattern != first["pattern"]
    before = payloads(view, shown)
    cancelled(view, gate, prompt=4)
    assert payloads(view, shown) == before
    assert torch.equal(view.head_pattern(), fresh.head_pattern())  # the cached patterns too


@pytest.fixture
def run(tmp_path):
    model = zoo.modular_addition_transformer(5, d_model=8)
    run = Run.create(tmp_path / "run", model)
    for step in (0, 10, 20):
        with torch.no_grad():
            model.model.W_E.fill_(float(step))  # each checkpoint is recognisable by its W_E
        run.save_checkpoint(model, step)
        run.log(step, {"train_loss": 1.0 / (step + 1)})
    return run


def test_scrubber_step_loads_and_calls_back_in_the_background(run):
    seen = []

    def view_pass(model, step):  # a linked view: one forward pass on the loaded checkpoint
        logits = model(torch.tensor([[0, 1, 5]]))
        seen.append((step, float(model.model.W_E[0, 0].detach()), logits.shape[0]))

    gate = Gate(view_pass)
    scrubber = TrainingScrubber(run, on_step=gate, step=0)
    assert seen == [(0, 0.0, 1)]
    runs_in_background(scrubber, gate, step=10)
    assert seen[-1] == (10, 10.0, 1)
    assert scrubber.step == 10 and scrubber.summary["train_loss"] == pytest.approx(1 / 11)
    assert scrubber.model.name.endswith("@10")
    calls = len(seen)
    cancelled(scrubber, gate, step=20)  # Cancel inside the callback, before its pass
    assert scrubber.step == 10 and scrubber.summary["train_loss"] == pytest.approx(1 / 11)
    assert float(scrubber.model.model.W_E[0, 0].detach()) == 10.0  # step 10 loaded again
    assert seen[calls:] == [(10, 10.0, 1)]  # the views were shown step 10 again
    assert scrubber.model.name.endswith("@10")


def test_audit_class_runs_in_the_background(monkeypatch):
    gate = Gate(audit_view.stamped_examples)
    monkeypatch.setattr(audit_view, "stamped_examples", gate)
    model = explorer.load(make_mlp(0), input_shape=(1, 28, 28), name="audited")
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    masks, patterns = torch.zeros(10, 28, 28), torch.zeros(10, 1, 28, 28)
    for c in range(10):  # class c's trigger: a 4-pixel square of value c/9 at (2c, 2c)
        masks[c, 2 * c : 2 * c + 4, 2 * c : 2 * c + 4] = 1
        patterns[c, 0, 2 * c : 2 * c + 4, 2 * c : 2 * c + 4] = c / 9
    result = AuditResult(
        model="audited",
        method="stamp",
        flagged=(4,),
        anomaly=torch.linspace(-1, 3, 10),
        masks=masks,
        patterns=patterns,
        success=torch.linspace(0, 1, 10),
        boxes=tuple((2 * c, 2 * c, 4, 4) for c in range(10)),
        forward_passes=10,
        backward_passes=0,
        examples=100,
        budget=None,
        threshold=0.0,
    )
    view = AuditView(result, model, images, n_examples=4)
    shown = ("selected", "pattern", "stamped", "before", "after", "stamped_success")
    first = payloads(view, shown)
    runs_in_background(view, gate, selected=8)
    fresh = AuditView(result, model, images, n_examples=4)
    fresh.selected = 8
    assert payloads(view, shown) == payloads(fresh, shown) and view.stamped != first["stamped"]
    before = payloads(view, shown)
    cancelled(view, gate, selected=2)
    assert payloads(view, shown) == before


def test_the_worker_runs_in_the_handlers_context(run):
    # the kernel keeps the message being answered in context variables; output an on_step
    # callback displays (into an Output widget) must see the same parent as in the handler
    import contextvars

    parent = contextvars.ContextVar("parent", default="none")
    seen = []
    scrubber = TrainingScrubber(run, on_step=lambda model, step: seen.append(parent.get()))
    token = parent.set("the comm message")
    try:
        request(scrubber, "set", step=10)
    finally:
        parent.reset(token)
    assert scrubber.wait(60)
    assert seen[-1] == "the comm message"
    assert scrubber.step == 10
