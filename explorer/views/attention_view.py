"""``AttentionView``: every head of a model on a prompt, and the selected head's pattern.

The grid shows one thumbnail per head with its head scores beside it; clicking a head
sets ``layer``/``head`` and the kernel sends that head's pattern. All patterns of the
prompt come from one cached forward pass, so a click costs a slice and an encode.
Long prompts are windowed: only ``window`` query rows (from ``query_start``) are sent.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.color_scales import head_score_color_scale
from explorer.analysis.head_scores import SCORES, attention_patterns, head_scores
from explorer.models.handle import ModelHandle
from explorer.views._base import check_range
from explorer.views._renamed import renamed_trait
from explorer.views._reporting import reports_errors
from explorer.views.serialize import Tensor, esm, query_window, thumbnail
from explorer.views.token_labels import _ShowsTokens

THUMBNAIL = 24


class AttentionView(_ShowsTokens):
    """Browse the attention heads of a transformer on one prompt.

    Args:
        model: a transformer handle.
        inputs: token ids ``[pos]`` or ``[batch, pos]``; ``prompt`` picks the row shown.
            Head scores are averaged over the whole batch.
        scores: the head scores shown beside each head, by name (default: all; see
            ``analysis.head_scores``).
        window: most query rows sent to the browser at once.

    >>> from explorer.models import zoo
    >>> from explorer.data import repeated_tokens
    >>> m = zoo.attention_only_transformer(n_layers=2, d_vocab=20, n_ctx=16)
    >>> view = AttentionView(m, repeated_tokens(2, 6, 20))
    >>> view.head = 3
    >>> view.pattern["shape"]
    [13, 13]
    """

    _esm = esm("attention_view.js")
    _token_traits = ("tokens",)  # token strings the page labels (token_labels)
    # a new prompt is a forward pass: on the worker thread, with Cancel (a head or a window
    # only slices the cached patterns: the page sets those directly)

    layer = traitlets.Int(0, help="layer of the selected head").tag(sync=True)
    head = traitlets.Int(0, help="index of the selected head within its layer").tag(sync=True)
    prompt = traitlets.Int(0, help="which row of the token batch is shown").tag(sync=True)
    query_start = traitlets.Int(0, help="first query row of the window sent").tag(sync=True)
    window = traitlets.Int(256, help="most query rows sent to the browser").tag(sync=True)

    n_layers = traitlets.Int(0, help="layers in the model").tag(sync=True)
    n_heads = traitlets.Int(0, help="heads per layer").tag(sync=True)
    n_prompts = traitlets.Int(1, help="rows in the token batch").tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode(), help="token strings of the prompt").tag(sync=True)
    score_names = traitlets.List(traitlets.Unicode(), help="names of the head scores").tag(
        sync=True
    )
    score_kinds = renamed_trait("score_kinds", "score_names")
    scores = Tensor("float32", help="payload [kind, layer, head] of head scores").tag(sync=True)
    thumbnails = Tensor(
        "uint8", lo=0.0, hi=1.0, help="payload [layer, head, t, t]: every head, shrunk"
    ).tag(sync=True)
    pattern = Tensor("float16", help="payload [rows, keys]: the selected head's window").tag(
        sync=True
    )
    pattern_rows = traitlets.List(
        traitlets.Int(), [0, 0], help="[start, stop) query rows in `pattern`"
    ).tag(sync=True)
    window_note = traitlets.Unicode("", help="shown when the prompt is windowed").tag(sync=True)
    score_scales = traitlets.List(
        traitlets.Dict(),
        help="per score kind, its ColorScale (0..1, the uniform-attention baseline marked)",
    ).tag(sync=True)
    score_note = traitlets.Unicode("", help="head scores that could not be computed").tag(sync=True)

    @renamed_arguments(tokens="inputs", kinds="scores")
    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        scores: tuple[str, ...] | None = None,
        window: int = 256,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"AttentionView needs a transformer; {model.name} takes {model.kind}")
        batch = model.check_inputs(inputs)
        self.model = model
        self.batch = batch
        self._patterns: torch.Tensor | None = None  # [layer, head, q, k] of the shown prompt
        self._pattern_key: tuple[int, ...] | None = None
        super().__init__(
            n_layers=model.n_layers,
            n_heads=model.n_heads or 0,
            n_prompts=batch.shape[0],
            window=window,
            pattern=None,
            scores=None,
            thumbnails=None,
            **kwargs,
        )
        self._score_names = tuple(scores) if scores is not None else SCORES
        self._compute_scores()
        self._load_prompt()

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._compute_scores()
        self._load_prompt()

    # ------------------------------------------------------------------ validation
    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        return check_range("layer", proposal["value"], self.model.n_layers, f"({self.model.name})")

    @traitlets.validate("head")
    def _valid_head(self, proposal: dict[str, Any]) -> int:
        return check_range("head", proposal["value"], self.model.n_heads or 0, "per layer")

    @traitlets.validate("prompt")
    def _valid_prompt(self, proposal: dict[str, Any]) -> int:
        return check_range("prompt", proposal["value"], self.batch.shape[0], "in the token batch")

    @traitlets.validate("window")
    def _valid_window(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise traitlets.TraitError(f"window must be at least 1 row, got {proposal['value']}")
        return proposal["value"]

    # ------------------------------------------------------------------ computing
    def _compute_scores(self) -> None:
        """Score every head; scores this batch cannot give (no targets) are left out, with a
        note."""
        scores = head_scores(self.model, self.batch, scores=self._score_names, unscorable="skip")
        self.score_names = list(scores.names)
        self.score_scales = [
            head_score_color_scale(kind, baseline=baseline).to_dict()
            for kind, baseline in zip(scores.names, scores.baselines)
        ]
        if scores.names:
            self.scores = scores.scores
        skipped = [f"{kind} ({why})" for kind, why in scores.skipped]
        self.score_note = "not scored: " + "; ".join(skipped) if skipped else ""

    @traitlets.observe("prompt")
    @reports_errors
    def _load_prompt(self, change: dict[str, Any] | None = None) -> None:
        row = self.batch[self.prompt : self.prompt + 1]
        self._patterns = attention_patterns(self.model, row)[0]  # [layer, head, q, k]
        n_layers, n_heads = self._patterns.shape[:2]
        thumbs = torch.stack(
            [
                torch.stack([thumbnail(self._patterns[l, h], THUMBNAIL) for h in range(n_heads)])
                for l in range(n_layers)
            ]
        )
        self.tokens = self.model.to_str_tokens(row[0])
        self.thumbnails = thumbs
        self._pattern_key = None
        self._send_pattern()

    @traitlets.observe("layer", "head", "query_start", "window")
    @reports_errors
    def _send_pattern(self, change: dict[str, Any] | None = None) -> None:
        if self._patterns is None:
            return
        n = self._patterns.shape[-1]
        start, stop = query_window(n, self.query_start, self.window)
        key = (self.prompt, self.layer, self.head, start, stop)
        if key == self._pattern_key:  # a click sets layer and head: compute once
            return
        # Causal attention: keys after the last query row shown are all zero, so cut them.
        self.pattern = self._patterns[self.layer, self.head, start:stop, :stop]
        self.pattern_rows = [start, stop]
        self.window_note = (
            f"showing query rows {start}..{stop - 1} of {n} (window of {self.window}); "
            "set query_start or scroll the window to see others"
            if stop - start < n
            else ""
        )
        self._pattern_key = key

    # ------------------------------------------------------------------ reading back
    def head_pattern(self, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """The full ``[query, key]`` pattern of a head on the shown prompt (float32)."""
        assert self._patterns is not None
        layer = self.layer if layer is None else self.model.check_layer(layer)
        head = self.head if head is None else self.model.check_head(layer, head)[1]
        return self._patterns[layer, head].clone()
