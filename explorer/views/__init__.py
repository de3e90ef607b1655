"""Two-way widgets: browse heads and neurons, intervene with a click (anywidget ESM views).

Each view is an anywidget (a Python class with synced traits and an ES module beside it).
A click changes a trait, the kernel runs analysis and sends the result back as binary
float16/uint8 buffers (``serialise``). ``show(model, data)`` opens them all, linked.
"""

from explorer.views.attention_view import AttentionView
from explorer.views.audit_view import AuditView
from explorer.views.explorer_view import Explorer, show
from explorer.views.hypothesis_view import HypothesisBoard, HypothesisWidget
from explorer.views.intervention_panel import InterventionPanel
from explorer.views.logit_attribution_view import LogitAttributionView
from explorer.views.logit_lens_view import LogitLensView
from explorer.views.neuron_view import NeuronView
from explorer.views.patching_view import PatchingView
from explorer.views.scrubber import TrainingScrubber
from explorer.views.token_attribution_view import TokenAttributionView

__all__ = [
    "AttentionView",
    "AuditView",
    "Explorer",
    "HypothesisBoard",
    "HypothesisWidget",
    "InterventionPanel",
    "LogitAttributionView",
    "LogitLensView",
    "NeuronView",
    "PatchingView",
    "TokenAttributionView",
    "TrainingScrubber",
    "show",
]
