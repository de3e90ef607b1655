"""Static HTML snapshots of explorer's widgets: the page a view draws, without a kernel.

``snapshot_html(widget)`` writes the widget's synced state (binary payloads as base64)
and its ES module into one self-contained HTML fragment that draws the view as it is now.
Clicks change nothing (there is no kernel), but every figure, label and number is there:
the documentation site shows widgets this way, and the screenshot tests render views at
several page widths without starting JupyterLab.

>>> from explorer.models import zoo
>>> from explorer.data import repeated_tokens
>>> from explorer.views import AttentionView
>>> model = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=12, n_ctx=16)
>>> html = snapshot_html(AttentionView(model, repeated_tokens(2, 4, 12, seed=0)))
>>> html.startswith('<div class="explorer-snapshot"') and "attention" in html
True
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import uuid
from collections.abc import Mapping
from typing import Any

_SKIP = {"_esm", "_css", "_dom_classes", "layout", "tabbable", "tooltip", "comm", "keys"}

# Loads the module from the page, hands it a model that answers from the saved state.
_LOADER = """
(async () => {
  const root = document.getElementById(%(id)s);
  const raw = JSON.parse(root.querySelector("script.explorer-state").textContent);
  const esm = JSON.parse(root.querySelector("script.explorer-esm").textContent);
  const revive = (v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if (typeof v.__bytes__ === "string") {
        const bin = atob(v.__bytes__);
        const out = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
        return new DataView(out.buffer);
      }
      const o = {};
      for (const [k, x] of Object.entries(v)) o[k] = revive(x);
      return o;
    }
    return Array.isArray(v) ? v.map(revive) : v;
  };
  const state = revive(raw);
  const handlers = {};
  const model = {
    get: (k) => state[k],
    set: (k, v) => {
      state[k] = v;
      for (const ev of ["change:" + k, "change"]) (handlers[ev] || []).forEach((f) => f());
    },
    save_changes: () => {}, send: () => {},
    on: (ev, f) => { (handlers[ev] = handlers[ev] || []).push(f); },
    off: () => {},
  };
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const mod = await import(url);
  const render = (mod.default && mod.default.render) || mod.render;
  await render({ model, el: root.querySelector(".explorer-snapshot-view") });
  root.setAttribute("data-rendered", "true");
})();
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):  # a dict, or a tensor trait's Payload
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def widget_state(widget: Any) -> dict[str, Any]:
    """The synced traits of ``widget`` as JSON (bytes as ``{"__bytes__": base64}``)."""
    state = {}
    for name in widget.keys:
        if name in _SKIP or name.startswith("_"):
            continue
        state[name] = _jsonable(getattr(widget, name))
    return state


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left.

    ``</script`` ends the element early, and ``<!--`` followed by ``<script`` puts the HTML
    parser in a state where the element's own ``</script>`` no longer closes it: that view
    and every later one on the page would stop drawing. JSON allows these three characters
    only inside strings, where ``\\u003c`` (and so on) decodes to the same text.

    >>> _script_json({"token": "<!--<script></script>&"})
    '{"token": "\\\\u003c!--\\\\u003cscript\\\\u003e\\\\u003c/script\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def snapshot_html(widget: Any, *, title: str = "") -> str:
    """One self-contained HTML fragment that draws ``widget`` as it is now (no kernel)."""
    box = f"explorer-snapshot-{uuid.uuid4().hex[:12]}"
    caption = (
        f'<div class="explorer-snapshot-title">{html_lib.escape(title)}</div>' if title else ""
    )
    return (
        f'<div class="explorer-snapshot" id="{box}">{caption}'
        f"<style>{widget._css}</style>"
        f'<script type="application/json" class="explorer-state">{_script_json(widget_state(widget))}</script>'
        f'<script type="application/json" class="explorer-esm">{_script_json(widget._esm)}</script>'
        f'<div class="explorer-snapshot-view"></div>'
        f'<script type="module">{_LOADER % {"id": json.dumps(box)}}</script></div>'
    )


def snapshot_page(widgets: list[tuple[str, Any]], *, title: str = "explorer views") -> str:
    """A whole HTML page with a snapshot of each ``(title, widget)``."""
    body = "\n".join(snapshot_html(w, title=t) for t, w in widgets)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html_lib.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:16px}"
        ".explorer-snapshot{margin:0 0 24px}.explorer-snapshot-title{font-weight:600;margin:4px 0}"
        f"</style></head><body>{body}</body></html>"
    )
