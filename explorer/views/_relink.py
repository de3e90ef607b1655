"""The kernel's half of relinking a view whose anywidget start-up window ran out.

anywidget drops every kernel message to a model whose 2 s window ran out; ``_link.js`` then
relinks the model's comm in the page, finding the model by ``_ex_model_id`` (the comm's id,
chosen by the view before it opens), and asks once for the whole state, answered here.

>>> len(new_model_id())
32
"""

from __future__ import annotations

import uuid
from typing import Any


def new_model_id() -> str:
    """A comm id for a view, known to the page from the view's first message."""
    return uuid.uuid4().hex


def resync(widget: Any, content: Any, buffers: list[bytes]) -> None:
    """Send the whole state once when the page asks (``{"type": "ex-resync"}``): it replaces
    every update the page dropped while the model was cut off."""
    if isinstance(content, dict) and content.get("type") == "ex-resync":
        widget.send_state()
