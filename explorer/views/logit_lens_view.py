"""``LogitLensView``: the logit lens as a layer x position grid of top tokens.

Each cell is one lens row (the residual stream entering a layer, read through the final
norm and the unembedding; ``analysis.logit_lens``) at one position of the prompt: its top
token is written in the cell and the colour says how high the target token ranks there
(dark: top-1; by default the target is the model's own final prediction, so the grid
shows from which layer on the answer is there). A click sets ``row``/``position`` (and the
linkable ``layer``); the kernel-side result has the top-k tokens and logits of every cell.
Long prompts are windowed: only ``window`` positions from ``position_start`` are sent.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.logit_lens import LogitLens, logit_lens
from explorer.models.handle import ModelHandle
from explorer.views._base import check_range
from explorer.views._renamed import renamed_trait
from explorer.views._reporting import reports_errors
from explorer.views.logit_attribution_view import read_token
from explorer.views.serialize import Tensor, esm
from explorer.views.token_labels import _ShowsTokens


class LogitLensView(_ShowsTokens):
    """The logit lens of one prompt (``prompt`` picks it from the batch).

    Args:
        model: a transformer handle.
        inputs: token ids ``[batch, pos]`` (or ``[pos]``).
        target: token whose rank colours the grid (text or id); empty: the model's own
            prediction at each position.
        n: top tokens kept per cell (``k=`` before explorer 0.4).

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=8)
    >>> view = LogitLensView(m, torch.tensor([[0, 3, 5, 3]]), n=3)
    >>> view.row_labels, view.target_rank["shape"], len(view.top_tokens)
    (['0_pre', '1_pre', 'final_post'], [3, 4], 36)
    """

    _esm = esm("logit_lens_view.js")
    _token_traits = (
        "tokens",
        "top_tokens",
        "target_tokens",
    )  # token strings the page labels (token_labels)
    # a new target or n is a lens pass over the batch: on the worker thread, with Cancel
    # (prompt, window and row only slice the cached lens: the page sets them directly)

    target = traitlets.Unicode("", help="token whose rank is shown; empty: the model's answer").tag(
        sync=True
    )
    n = traitlets.Int(5, help="top tokens per cell").tag(sync=True)
    k = renamed_trait("k", "n")
    prompt = traitlets.Int(0, help="which row of the batch is shown").tag(sync=True)
    n_prompts = traitlets.Int(1, help="rows in the batch").tag(sync=True)
    position_start = traitlets.Int(0, help="first position sent to the page").tag(sync=True)
    window = traitlets.Int(64, help="most positions sent to the page").tag(sync=True)
    n_positions = traitlets.Int(0, help="positions in the prompt").tag(sync=True)
    row = traitlets.Int(0, help="selected lens row").tag(sync=True)
    position = traitlets.Int(0, help="selected position").tag(sync=True)
    layer = traitlets.Int(0, help="layer of the selected row (linkable)").tag(sync=True)

    row_labels = traitlets.List(traitlets.Unicode(), help="lens rows: 0_pre ... final_post").tag(
        sync=True
    )
    tokens = traitlets.List(traitlets.Unicode(), help="the prompt's tokens in the window").tag(
        sync=True
    )
    top_tokens = traitlets.List(
        traitlets.Unicode(), help="top-k token strings, [row, pos, k] row-major"
    ).tag(sync=True)
    top_logits = Tensor("float32", help="payload [row, pos, k]").tag(sync=True)
    target_rank = Tensor("int32", help="payload [row, pos]: rank of the target (0 = top)").tag(
        sync=True
    )
    target_logit = Tensor("float32", help="payload [row, pos]").tag(sync=True)
    target_tokens = traitlets.List(traitlets.Unicode(), help="the target at each position").tag(
        sync=True
    )

    @renamed_arguments(tokens="inputs", k="n")
    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        target: int | str | None = None,
        n: int = 5,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"{model.name} takes images: the logit lens needs tokens")
        self.model = model
        self.inputs = model.check_inputs(inputs)
        super().__init__(
            target="" if target is None else str(target),
            n=n,
            n_prompts=self.inputs.shape[0],
            n_positions=self.inputs.shape[1],
            top_logits=None,
            target_rank=None,
            target_logit=None,
            **kwargs,
        )
        self._show()

    @traitlets.validate("prompt")
    def _valid_prompt(self, proposal: dict[str, Any]) -> int:
        return check_range("prompt", proposal["value"], self.inputs.shape[0], "in the batch")

    def result(self) -> LogitLens:
        """The (cached) lens of the whole batch for the current target and n."""
        key = (self.target, self.n)
        target = read_token(self.model, self.target) if self.target else None
        return self._results.get(
            key, lambda: logit_lens(self.model, self.inputs, target=target, n=self.n)
        )

    @traitlets.validate("position_start")
    def _valid_start(self, proposal: dict[str, Any]) -> int:
        return check_range(
            "position_start", proposal["value"], self.inputs.shape[1], "in the prompt"
        )

    @traitlets.validate("window")
    def _valid_window(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise traitlets.TraitError(f"window must be at least 1, got {proposal['value']}")
        return proposal["value"]

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._results.clear()
        self._show()

    @traitlets.observe("target", "n", "prompt", "position_start", "window")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        lens = self.result()
        p, w = self.prompt, slice(self.position_start, self.position_start + self.window)
        ids = lens.top_ids[:, p, w]  # [row, pos, k]
        with self.hold_sync():
            self.row_labels = list(lens.labels)
            self.tokens = self.model.to_str_tokens(self.inputs[p, w])
            self.top_tokens = [lens.token_text[i] for i in ids.flatten().tolist()]
            self.top_logits = lens.top_logits[:, p, w]
            self.target_rank = lens.target_rank[:, p, w].int()
            self.target_logit = lens.target_logit[:, p, w]
            self.target_tokens = [lens.token_text[i] for i in lens.target_ids[p, w].tolist()]

    @traitlets.observe("row")
    def _row_layer(self, change: dict[str, Any]) -> None:
        label = self.row_labels[self.row] if self.row < len(self.row_labels) else ""
        if label and label[0].isdigit():
            self.layer = int(label.split("_")[0])
        elif label:
            self.layer = self.model.n_layers - 1
