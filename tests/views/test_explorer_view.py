"""Explorer / show: the views a model supports, in tabs, with selections linked."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
import torch
from ipywidgets.widgets.widget import _remove_buffers

from explorer.data import repeated_tokens
from explorer.views import Explorer, show


def test_transformer_gets_attention_intervention_and_patching_linked(attn_model):
    ex = show(attn_model, repeated_tokens(8, 6, 30))
    assert isinstance(ex, Explorer)
    assert [ex.get_title(i) for i in range(len(ex.children))] == [
        "Attention",
        "Intervene",
        "Patching",
    ]
    assert ex.neurons is None
    ex.intervention.select(1, 3)
    assert (ex.attention.layer, ex.attention.head) == (1, 3)
    assert (ex.patching.layer, ex.patching.head) == (1, 3)
    ex.patching.grid = "head"
    ex.patching.select(0, 2)
    assert (ex.attention.layer, ex.attention.head) == (0, 2)
    assert ex.patching.corrupted.shape == ex.patching.inputs.shape


def test_mlp_gets_neurons_and_a_neuron_link(mnist_mlp):
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(30, 1, 28, 28, generator=g), torch.randint(0, 10, (30,), generator=g))
    ex = show(mnist_mlp, data)
    assert [ex.get_title(i) for i in range(len(ex.children))] == [
        "Neurons",
        "Intervene",
        "Patching",
    ]
    assert ex.attention is None
    ex.intervention.granularity = "neuron"
    ex.intervention.select(1, 4)
    assert (ex.neurons.layer, ex.neurons.neuron) == (1, 4)
    assert ex.neurons.top_values["shape"] == [8]
    assert ex.patching.grid == "neuron"
    ex.neurons.neuron = 9
    assert ex.intervention.neuron == 9


def test_every_view_state_is_strict_json_plus_binary_buffers(attn_model, mlp_transformer):
    ex = show(mlp_transformer, repeated_tokens(8, 6, 30))
    ex.intervention.units = []  # None means (not NaN) in empty results
    for view in (ex.attention, ex.neurons, ex.intervention, ex.patching):
        state, _, buffers = _remove_buffers(view.get_state())
        json.dumps(state, allow_nan=False)  # NaN in a trait would break the comm message
        assert sum(len(b) for b in buffers) < 2**20
    assert ex.attention.pattern.numpy().shape == (13, 13)


def test_a_user_metric_feeds_both_the_panel_and_patching(attn_model):
    tokens = repeated_tokens(8, 6, 30)
    seen = []

    def metric(logits):
        seen.append(logits.shape[0])
        return -logits[:, -1, 0]

    ex = show(attn_model, tokens, metric=metric)
    assert ex.intervention.metric_names == ["metric"]
    assert seen  # patching ran it
    with pytest.raises(TypeError, match="metric must be a function"):
        show(attn_model, tokens, metric=42)


class _RecordingComm:
    """Stands in for the kernel comm: records what a widget would send to the page."""

    log: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, **kwargs):
        self.comm_id = kwargs.get("comm_id") or f"comm-{len(self.log)}"
        self.sent: list[dict] = []
        self.kernel = object()
        self.log.append((self.comm_id, "open"))

    def send(self, data=None, buffers=None):
        self.log.append((self.comm_id, data.get("method", "")))
        self.sent.append(data)

    def on_msg(self, callback):
        pass

    def close(self, *args, **kwargs):
        pass


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_each_view_reaches_the_page_in_one_message(kind, mnist_mlp, attn_model, monkeypatch):
    # A message to a model that is still loading its module holds up JupyterLab's handling
    # of every later kernel message; under CPU load that starved the next widgets past
    # anywidget's 2 s ("Failed to initialize model"). A view must open complete.
    import comm

    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: _RecordingComm(**kwargs))
    _RecordingComm.log = []
    if kind == "mlp":
        g = torch.Generator().manual_seed(0)
        ex = show(mnist_mlp, (torch.rand(30, 1, 28, 28, generator=g), torch.randint(0, 10, (30,))))
    else:
        ex = show(attn_model, repeated_tokens(8, 6, 30))
    views = [v for v in (ex.attention, ex.neurons, ex.intervention, ex.patching) if v is not None]
    ids = {v.comm.comm_id for v in views}
    assert len(ids) == len(views) >= 3
    sent = [method for comm_id, method in _RecordingComm.log if comm_id in ids]
    assert sent == ["open"] * len(views)  # no update after the opening
    ex.intervention.ablation = "mean"  # and once open, changes do go out
    assert (ex.intervention.comm.comm_id, "update") in _RecordingComm.log


def _custom(content):
    return {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}


def test_a_relinked_page_gets_the_whole_state_once(mnist_mlp, monkeypatch):
    # explorer/views/_link.js: when anywidget's start-up window ran out, the page relinks the
    # model it finds by ``_ex_model_id`` and asks once for everything it may have dropped
    import comm

    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: _RecordingComm(**kwargs))
    _RecordingComm.log = []
    g = torch.Generator().manual_seed(0)
    view = show(mnist_mlp, (torch.rand(30, 1, 28, 28, generator=g), torch.randint(0, 10, (30,))))
    view = view.neurons
    assert view._ex_model_id == view.model_id == view.comm.comm_id  # chosen by the view
    view._handle_msg(_custom({"type": "something else"}))
    assert view.comm.sent == []
    view._handle_msg(_custom({"type": "ex-resync"}))
    (update,) = view.comm.sent
    assert update["method"] == "update"
    assert set(update["state"]) == set(view.get_state())  # the whole state, not a diff
