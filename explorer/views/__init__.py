"""Two-way widgets: browse heads and neurons, intervene with a click (anywidget ESM views).

Each view is an anywidget (a Python class with synced traits and an ES module beside it).
A click changes a trait, the kernel runs analysis and sends the result back as binary
float16/uint8 buffers (``serialize``). ``show(model, data)`` opens them all, linked.

A new view: ``name.py`` with a subclass of ``_base.ExplorerWidget`` and ``name.js`` beside
it (one module per widget; ``esm("name.js")`` prepends the shared ``_common.js`` drawing
helpers and ``_controls.js`` menus, unit pickers and the pending line). The view only
encodes results and dispatches clicks: every number comes from ``explorer.analysis`` (or
``explorer.hypotheses``), and ``tests/views/test_views_compute_nothing.py`` fails on a
forward pass or a reduction written in a view. Buttons send ``exRequest(model, name, args)``
(anywidget's ``experimental.invoke``), answered by the ``@page_request`` method of that
name; ``background=True`` ones run on a worker thread with elapsed time and Cancel in the
page (``exSet`` does the same for trait changes whose analysis may take long). A view's JS
redraws on any synced trait change: there is no list of trait names to keep in step.

>>> from explorer.data import repeated_tokens
>>> from explorer.models import zoo
>>> from explorer.views import AttentionView
>>> view = AttentionView(zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16),
...                      repeated_tokens(4, 6, 20))
>>> view.layer, view.head
(0, 0)
"""

from explorer.views.attention_view import (
    AttentionView,
)
from explorer.views.audit_view import (
    AuditView,
)
from explorer.views.diff_view import (
    DiffView,
)
from explorer.views.explorer_view import (
    Explorer,
    show,
)
from explorer.views.feature_view import (
    FeatureView,
)
from explorer.views.hypothesis_view import (
    HypothesisBoard,
    HypothesisWidget,
    verdict_payload,
)
from explorer.views.image_grid import (
    image_grid,
)
from explorer.views.intervention_panel import (
    InterventionPanel,
)
from explorer.views.logit_attribution_view import (
    LogitAttributionView,
    direction_args,
    read_token,
    token_choice,
)
from explorer.views.logit_lens_view import (
    LogitLensView,
)
from explorer.views.neuron_view import (
    NeuronView,
)
from explorer.views.patching_view import (
    PatchingView,
)
from explorer.views.scrubber import (
    StepViewsFailed,
    TrainingScrubber,
)
from explorer.views.serialize import (
    Payload,
    Tensor,
    css,
    decode,
    empty,
    encode,
    esm,
    images_for_display,
    payload_bytes,
    query_window,
    thumbnail,
)
from explorer.views.session_board import (
    SessionBoard,
    board_payload,
)
from explorer.views.snapshot import (
    snapshot_html,
    snapshot_page,
    widget_state,
)
from explorer.views.sweep_view import (
    SweepView,
)
from explorer.views.token_attribution_view import (
    TokenAttributionView,
)
from explorer.views.token_labels import (
    token_label,
    token_labels,
)

__all__ = [
    "AttentionView",
    "AuditView",
    "DiffView",
    "Explorer",
    "FeatureView",
    "HypothesisBoard",
    "HypothesisWidget",
    "InterventionPanel",
    "LogitAttributionView",
    "LogitLensView",
    "NeuronView",
    "PatchingView",
    "Payload",
    "SessionBoard",
    "StepViewsFailed",
    "SweepView",
    "Tensor",
    "TokenAttributionView",
    "TrainingScrubber",
    "board_payload",
    "css",
    "decode",
    "direction_args",
    "empty",
    "encode",
    "esm",
    "image_grid",
    "images_for_display",
    "payload_bytes",
    "query_window",
    "read_token",
    "show",
    "snapshot_html",
    "snapshot_page",
    "thumbnail",
    "token_choice",
    "token_label",
    "token_labels",
    "verdict_payload",
    "widget_state",
]
