"""``TokenAttributionView``: integrated-gradients token scores as coloured text.

One line per prompt, each token coloured by its score from ``analysis.attribute_tokens``
(blue raises the explained logit, red lowers it; one colour scale for all lines), with
captum's convergence delta beside it. ``target`` and ``against`` are editable token
strings (or ids) recomputed in the kernel; clicking a token sets ``prompt`` and the
linkable ``position``.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.token_attribution import TokenAttribution, attribute_tokens
from explorer.models.handle import ModelHandle
from explorer.views._renamed import renamed_trait
from explorer.views._reporting import reports_errors
from explorer.views.logit_attribution_view import direction_args, token_choice
from explorer.views.serialize import Tensor, esm
from explorer.views.token_labels import _ShowsTokens


class TokenAttributionView(_ShowsTokens):
    """Per-token attribution of the logit of ``target`` (minus ``against``) at ``position``.

    Args:
        model: a transformer handle.
        tokens: token ids ``[batch, pos]`` (or ``[pos]``).
        target, against: token strings or ids (``against`` optional), or one id per prompt.
        position: the position whose logit is explained (default: the last), as in
            ``LogitAttributionView``; the view keeps it in the trait ``target_position``
            (its trait ``position`` is the token clicked, linkable to the other views).
        baseline: the baseline token (id or text); n_steps: integration points.

    >>> from explorer.models import zoo
    >>> m = zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
    >>> view = TokenAttributionView(m, torch.tensor([[0, 3, 5, 3]]), target="t5", n_steps=8)
    >>> view.scores["shape"], view.tokens
    ([1, 4], [['BOS', 't3', 't5', 't3']])
    """

    _esm = esm("token_attribution_view.js")
    _token_traits = ("tokens",)  # token strings the page labels (token_labels)

    target = traitlets.Unicode("", help="token whose logit is explained (text or id)").tag(
        sync=True
    )
    against = traitlets.Unicode("", help="token subtracted; empty: none").tag(sync=True)
    target_position = traitlets.Int(-1, help="position whose logit is explained").tag(sync=True)
    at = renamed_trait("at", "target_position")
    n_steps = traitlets.Int(50, help="integration points").tag(sync=True)
    prompt = traitlets.Int(0, help="prompt of the selected token").tag(sync=True)
    position = traitlets.Int(0, help="position of the selected token (linkable)").tag(sync=True)

    tokens = traitlets.List(traitlets.List(traitlets.Unicode()), help="tokens per prompt").tag(
        sync=True
    )
    scores = Tensor("float32", help="payload [prompt, pos]").tag(sync=True)
    delta = traitlets.List(traitlets.Float(), help="captum's convergence delta per prompt").tag(
        sync=True
    )
    value = traitlets.List(traitlets.Float(), help="the explained logit (diff) per prompt").tag(
        sync=True
    )
    baseline_value = traitlets.List(traitlets.Float(), help="the same on the baseline").tag(
        sync=True
    )
    direction = traitlets.Unicode("", help="what is explained").tag(sync=True)

    @renamed_arguments(tokens="inputs", at="position")
    def __init__(
        self,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        target: int | str | torch.Tensor | list[int],
        against: int | str | torch.Tensor | list[int] | None = None,
        position: int = -1,
        baseline: int | str = 0,
        n_steps: int = 50,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"{model.name} takes images: use attribute(model, images, target=...)")
        self.model = model
        self.inputs = model.check_inputs(inputs)
        self.baseline = baseline
        (target_text, target_ids), (against_text, against_ids) = map(
            token_choice, (target, against)
        )
        self._per_prompt = {
            k: v for k, v in (("target", target_ids), ("against", against_ids)) if v is not None
        }
        super().__init__(
            target=target_text,
            against=against_text,
            target_position=position,
            n_steps=n_steps,
            scores=None,
            **kwargs,
        )
        self._show()

    def result(self) -> TokenAttribution:
        key = (self.target, self.against, self.target_position, self.n_steps)
        return self._results.get(
            key,
            lambda: attribute_tokens(
                self.model,
                self.inputs,
                **direction_args(self.model, self.target, self.against, self._per_prompt),
                position=self.target_position,
                baseline=self.baseline,
                n_steps=self.n_steps,
            ),
        )

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        self._results.clear()
        self._show()

    @traitlets.observe("target", "against", "target_position", "n_steps")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        result = self.result()
        with self.hold_sync():
            self.tokens = [list(row) for row in result.tokens]
            self.scores = result.scores
            self.delta = result.delta.tolist()
            self.value = result.value.tolist()
            self.baseline_value = result.baseline_value.tolist()
            self.direction = result.direction
