"""``FeatureView``: one SAE feature across a dataset, and what steering or ablating it does.

The feature's top contexts are token windows coloured by its activation at each token,
beside its activation-density histogram and the tokens it promotes and suppresses directly
(``W_dec @ W_U`` through the final norm). A steer/ablate control adds to (or clamps, or
zeroes) the feature during a forward pass over the first ``steer_examples`` inputs and shows
the change in a metric (next-token loss unless given). The SAE's top-k table, its
activation table (kept sparse: ``FeatureTable``) and its logit weights are computed once:
changing ``feature`` is then a slice, one small pass over the k examples and a histogram of
one column.

``feature`` is an int trait and ``selected`` its label (``"F12"``, the column label of
``direct_logit_attribution(granularity="feature")`` and of feature patching):
``traitlets.link`` either to another view to follow its selection.

>>> import torch
>>> from explorer.features import SparseAutoencoder
>>> from explorer.models import zoo
>>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> view = FeatureView(m, torch.randint(0, 10, (20, 6)), sae=sae, n=3)
>>> view.feature = 5
>>> view.selected, len(view.example_tokens) <= 3
('F5', True)
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer.analysis import metrics
from explorer.analysis.feature_steering import steer
from explorer.analysis.feature_units import Feature, FeatureTable, feature_table
from explorer.analysis.neuron_logits import NeuronLogitWeights, neuron_logit_weights
from explorer.analysis.neurons import (
    Histogram,
    TopKExamples,
    histogram,
    top_k_examples,
)
from explorer.features import SparseAutoencoder, check_hooks_fit
from explorer.models.handle import ModelHandle
from explorer.views._base import check_range
from explorer.views._inputs import dataset_inputs
from explorer.views._reporting import page_request, reports_errors
from explorer.views.serialize import Tensor, esm
from explorer.views.token_labels import _ShowsTokens

STEER_MODES = ("add", "clamp", "zero")


class FeatureView(_ShowsTokens):
    """Browse the features of an SAE over a dataset; steer or ablate one.

    Args:
        model: a transformer handle the SAE fits (its hook, its width).
        inputs: token ids ``[n, pos]`` the features are read on.
        sae: a ``features.SparseAutoencoder`` (``features.load_sae``).
        n: top contexts shown.
        context: tokens shown before the top token of a context (3 after it).
        n_tokens: promoted and suppressed tokens listed.
        steer_examples: inputs the steer/ablate control runs on (the first ones).
        metric: what the control reports, ``fn(logits) -> [batch]``; default: next-token
            loss of those inputs.
        bins: histogram bins.
    """

    _esm = esm("feature_view.js")
    _token_traits = ("example_tokens", "promoted_tokens", "suppressed_tokens")

    feature = traitlets.Int(0, help="index of the selected feature in the SAE").tag(sync=True)
    selected = traitlets.Unicode("F0", help="label of the selected feature, e.g. F12").tag(
        sync=True
    )
    n = traitlets.Int(8, help="top contexts shown").tag(sync=True)
    d_sae = traitlets.Int(0, help="features in the SAE").tag(sync=True)
    sae_name = traitlets.Unicode("", help="the SAE and the hook it reads").tag(sync=True)
    n_examples = traitlets.Int(0, help="examples in the dataset").tag(sync=True)
    fires = traitlets.Bool(True, help="False when the feature never fires on the data").tag(
        sync=True
    )
    density = traitlets.Float(0.0, help="share of tokens where the feature is active").tag(
        sync=True
    )
    dead_units = traitlets.List(traitlets.Int(), help="features that never fire").tag(sync=True)
    dense_units = traitlets.List(traitlets.Int(), help="features active on > 10% of tokens").tag(
        sync=True
    )
    top_values = Tensor("float32", help="payload [k]: top activations, best first").tag(sync=True)
    example_ids = traitlets.List(traitlets.Int(), help="dataset index of each context").tag(
        sync=True
    )
    example_positions = traitlets.List(traitlets.Int(), help="position of each top value").tag(
        sync=True
    )
    example_tokens = traitlets.List(
        traitlets.List(traitlets.Unicode()), help="token window of each top context"
    ).tag(sync=True)
    example_starts = traitlets.List(traitlets.Int(), help="first position of each window").tag(
        sync=True
    )
    example_acts = Tensor("float16", help="payload [k, window]: activation per token").tag(
        sync=True
    )
    hist_counts = Tensor("int32", help="payload [bins]: activation histogram").tag(sync=True)
    hist_edges = Tensor("float32", help="payload [bins + 1]: histogram bin edges").tag(sync=True)
    promoted_tokens = traitlets.List(traitlets.Unicode(), help="tokens it promotes most").tag(
        sync=True
    )
    promoted_values = Tensor("float32", help="payload: their logit weights").tag(sync=True)
    suppressed_tokens = traitlets.List(traitlets.Unicode(), help="tokens it suppresses most").tag(
        sync=True
    )
    suppressed_values = Tensor("float32", help="payload: their logit weights").tag(sync=True)
    steer_mode = traitlets.Unicode("add", help="'add', 'clamp' or 'zero' (ablate)").tag(sync=True)
    steer_amount = traitlets.Float(10.0, help="added, or clamped to").tag(sync=True)
    steer_result = traitlets.Dict(
        help="the last steer: feature, mode, amount, metric, before, after, change"
    ).tag(sync=True)

    def __init__(
        self,
        model: ModelHandle,
        inputs: Any,
        *,
        sae: SparseAutoencoder,
        n: int = 8,
        context: int = 12,
        n_tokens: int = 8,
        steer_examples: int = 16,
        metric: Any = None,
        bins: int = 40,
        **kwargs: Any,
    ) -> None:
        if not model.is_transformer:
            raise ValueError(f"FeatureView reads token text; {model.name} takes images")
        check_hooks_fit(model, sae)
        self.model = model
        self.sae = sae
        self.inputs = dataset_inputs(model, inputs)
        self.context = context
        self.n_tokens = n_tokens
        self.bins = bins
        self._steer_inputs = self.inputs[:steer_examples]
        self._metric = metric or metrics.next_token_loss(self._steer_inputs)
        self._metric_name = "metric" if metric else "next-token loss"
        self._reset()
        super().__init__(
            d_sae=sae.d_sae,
            sae_name=sae.name,
            n_examples=len(self.inputs),
            n=n,
            **{name: None for name in _PAYLOADS},
            **kwargs,
        )
        self._show_feature()

    def _reset(self) -> None:
        self._top: TopKExamples | None = None
        self._table: FeatureTable | None = None
        self._weights: NeuronLogitWeights | None = None
        self._shown: tuple[int, int] | None = None

    def _use_model(self, data: Any) -> None:
        if data is not None:
            raise TypeError(f"{type(self).__name__}.set_model takes no data: build a new view")
        check_hooks_fit(self.model, self.sae)
        self._reset()
        self._show_feature()

    @traitlets.validate("feature")
    def _valid_feature(self, proposal: dict[str, Any]) -> int:
        return check_range("feature", proposal["value"], self.sae.d_sae, f"({self.sae.name})")

    @traitlets.validate("n")
    def _valid_n(self, proposal: dict[str, Any]) -> int:
        if not 1 <= proposal["value"] <= 64:
            raise traitlets.TraitError(f"n must be between 1 and 64, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("steer_mode")
    def _valid_mode(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in STEER_MODES:
            raise traitlets.TraitError(
                f"steer_mode must be one of {STEER_MODES}, got {proposal['value']!r}"
            )
        return proposal["value"]

    @traitlets.observe("selected")
    def _follow_label(self, change: dict[str, Any]) -> None:
        text = str(change["new"])
        if text.startswith("F") and text[1:].isdigit() and int(text[1:]) != self.feature:
            self.feature = int(text[1:])

    # ------------------------------------------------------------------ computing
    def top_examples(self) -> TopKExamples:
        """The SAE's top-k table (cached; recomputed when ``n`` grows)."""
        if self._top is None or self._top.values.shape[1] < self.n:
            self._top = top_k_examples(self.model, self.inputs, sae=self.sae, n=max(self.n, 8))
        return self._top

    def logit_weights(self) -> NeuronLogitWeights:
        """``W_dec @ W_U`` of every feature through the final norm (cached)."""
        if self._weights is None:
            self._weights = neuron_logit_weights(self.model, units=self.sae)
        return self._weights

    def density_counts(self, feature: int) -> Histogram:
        """The feature's activation histogram over every token (from the cached table)."""
        if self._table is None:
            self._table = feature_table(self.model, self.inputs, sae=self.sae)
        column = self._table.column(feature)
        return histogram(column, bins=self.bins, hook=self.sae.hook, unit=feature)

    @traitlets.observe("feature", "n")
    @reports_errors
    def _show_feature(self, change: dict[str, Any] | None = None) -> None:
        key = (self.feature, self.n)
        if key == self._shown:
            return
        f = self.feature
        top = self.top_examples()
        ids, positions = top.example[f, : self.n], top.position[f, : self.n]
        hist = self.density_counts(f)
        assert self._table is not None
        starts, window_acts = self._table.windows(
            f, n_pos=self.inputs.shape[1], examples=ids, positions=positions, context=self.context
        )
        width = window_acts.shape[1]
        tokens = [
            self.model.to_str_tokens(self.inputs[int(e), s : s + width])
            for e, s in zip(ids, starts)
        ]
        weights = self.logit_weights()
        up = weights.top(f, self.n_tokens)
        down = weights.top(f, self.n_tokens, bottom=True)
        assert top.density is not None
        with self.hold_sync():
            self.selected = f"F{f}"
            self.fires = f not in top.dead_units
            self.density = float(top.density[f])
            self.dead_units = list(top.dead_units)
            self.dense_units = list(top.dense_units)
            self.top_values = top.values[f, : self.n]
            self.example_ids = [int(i) for i in ids]
            self.example_positions = [int(p) for p in positions]
            self.example_tokens = tokens
            self.example_starts = list(starts)
            self.example_acts = window_acts
            self.hist_counts = hist.counts
            self.hist_edges = hist.edges
            self.promoted_tokens = [t for t, _ in up]
            self.promoted_values = torch.tensor([v for _, v in up])
            self.suppressed_tokens = [t for t, _ in down]
            self.suppressed_values = torch.tensor([v for _, v in down])
        self._shown = key

    @page_request(background=True)
    def _page_steer(self, mode: str = "add", amount: float = 10.0) -> None:
        self.steer(mode, amount)

    @reports_errors
    def steer(self, mode: str = "add", amount: float = 10.0) -> None:
        """Steer (``"add"``), clamp or ablate (``"zero"``) the selected feature over the
        first ``steer_examples`` inputs; ``steer_result`` gets the metric before and after."""
        self.steer_mode, self.steer_amount = mode, float(amount)
        clamp = mode in ("clamp", "zero")
        value = 0.0 if mode == "zero" else float(amount)
        result = steer(
            self.model, self._steer_inputs, units=Feature(self.sae, self.feature),
            metric=self._metric, amount=value, mode="clamp" if clamp else "add",
        )  # fmt: skip
        before, after = result.before_mean, result.after_mean
        self.steer_result = {
            "feature": self.feature, "mode": mode, "amount": value,
            "metric": self._metric_name, "before": before, "after": after,
            "change": result.effect, "examples": len(self._steer_inputs),
        }  # fmt: skip


_PAYLOADS = (
    "top_values",
    "example_acts",
    "hist_counts",
    "hist_edges",
    "promoted_values",
    "suppressed_values",
)
