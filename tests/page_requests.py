"""Send a view a request the way its page does: anywidget's command message, through the
widget's own message handlers (what ``invoke(name, arguments)`` in the view's JS sends)."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count()


def invoke(widget: Any, name: str, **arguments: Any) -> dict[str, Any]:
    """The reply the page would get: ``{"outcome", "error"}`` (``started`` for a request
    that runs in the background)."""
    replies: list[dict[str, Any]] = []
    widget.send = lambda content, buffers=None: replies.append(content)
    try:
        message = {"id": str(next(_ids)), "kind": "anywidget-command", "name": name}
        widget._handle_custom_msg({**message, "msg": arguments}, [])
    finally:
        del widget.send
    (reply,) = replies
    assert reply["kind"] == "anywidget-command-response" and reply["id"] == message["id"]
    return reply["response"]
