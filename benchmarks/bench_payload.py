"""Bytes sent to the browser for one attention layer: ours (float16 binary) vs circuitsvis.

The layer is 12 heads x 1,024 tokens from a real (untrained) causal model, so half of
every pattern is masked zeros, as in practice. Ours is ``explorer.views.serialize.encode``
(float16 buffers that ipywidgets sends as binary); ``AttentionView`` sends even less (a
uint8 thumbnail per head and a 256-row window of the selected head). circuitsvis's
``attention_patterns`` writes every weight into the HTML as JSON; we measure its CDN
HTML (``str()``, the JSON props plus a short loader) without rendering it, because its
``_repr_html_`` first checks for internet access and then inlines a ~1 MB script.
"""

from __future__ import annotations

import json
import time

import torch

from benchmarks.results import Row
from benchmarks.timing import best_of
from explorer.models import ModelHandle, zoo

BENCHMARK = "widget payload"
TARGET_MB = 30.0  # the design's "< 30 MB", read as MiB (stricter)
MB = 2**20


def _layer(size: str) -> tuple[ModelHandle, torch.Tensor, torch.Tensor]:
    """``(model, tokens [1, n], pattern [12, n, n])`` of the first layer."""
    n = {"tiny": 64, "small": 512, "full": 1024}[size]
    model = zoo.attention_only_transformer(
        n_layers=1, d_model=192, n_heads=12, d_vocab=100, n_ctx=n, seed=0
    )
    tokens = torch.randint(1, 100, (1, n), generator=torch.Generator().manual_seed(0))
    _, cache = model.cache_pass(tokens, names=["blocks.0.attn.hook_pattern"])
    return model, tokens, cache["blocks.0.attn.hook_pattern"][0]


def _view_state_bytes(view: object) -> int:
    """Bytes of a widget's full state as sent on display: JSON plus binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(view.get_state())  # type: ignore[attr-defined]
    return len(json.dumps(state).encode()) + sum(len(b) for b in buffers)


def run(size: str = "full") -> list[Row]:
    from circuitsvis.attention import attention_patterns

    from explorer.views import AttentionView
    from explorer.views.serialize import encode, payload_bytes

    model, tokens, pattern = _layer(size)
    n_heads, n = pattern.shape[0], pattern.shape[-1]
    str_tokens = model.to_str_tokens(tokens[0])
    times, results = best_of(
        {
            "ours": lambda: encode(pattern),
            "circuitsvis": lambda: attention_patterns(tokens=str_tokens, attention=pattern),
        },
        1,
    )
    ours_mb = payload_bytes(results["ours"]) / MB
    html = str(results["circuitsvis"])  # the CDN version: no network access, no inlined bundle
    theirs_mb = len(html.encode()) / MB
    del results, html

    start = time.perf_counter()
    view = AttentionView(model, tokens, scores=("previous_token",))
    view_seconds = time.perf_counter() - start
    view_mb = _view_state_bytes(view) / MB
    case = f"{n_heads} heads x {n:,} tokens"
    return [
        Row(
            BENCHMARK,
            f"attention layer {case}: float16 binary vs circuitsvis JSON",
            "MiB",
            ours_mb,
            theirs_mb,
            theirs_mb / ours_mb,
            target=f"< {TARGET_MB:g} MiB",
            met=ours_mb < TARGET_MB,
            note="ours: explorer.views.serialize.encode; circuitsvis: attention_patterns(...) HTML",
        ),
        Row(
            BENCHMARK,
            f"AttentionView on {n:,} tokens: whole first message vs circuitsvis",
            "MiB",
            view_mb,
            theirs_mb,
            theirs_mb / view_mb,
            target=f"< {TARGET_MB:g} MiB",
            met=view_mb < TARGET_MB,
            details={"build_seconds": view_seconds},
            note="state on display: uint8 thumbnails, one head's 256-row float16 window, scores",
        ),
        Row(
            BENCHMARK,
            f"serialise the layer ({case}): encode vs attention_patterns",
            "s",
            times["ours"],
            times["circuitsvis"],
            times["circuitsvis"] / max(times["ours"], 1e-9),
        ),
    ]
