"""Steering SAE features: add to, clamp or scale a feature's activation during a pass.

The SAE is spliced in with its error term kept (``features.splice_hooks``), so steering
feature ``i`` by ``a`` moves the stream by ``a * sae.decoder[i]`` and nothing else.
``steer`` reports a metric before and after; ``generate_steered`` continues prompts
greedily with the feature steered in every pass.

>>> from explorer.features import SparseAutoencoder
>>> from explorer.models import zoo
>>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> r = steer(m, torch.tensor([[1, 2, 3]]), units=Feature(sae, 2), metric=lambda l: l[:, -1, 0], amount=5.0)
>>> r.mode, tuple(r.after.shape)
('add', (1,))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float

from explorer._checks import check_choice
from explorer._display import num
from explorer.analysis.ablation import _BeforeAfter
from explorer.analysis.feature_interventions import _mask, _setup
from explorer.analysis.feature_units import Feature
from explorer.analysis.interventions import clean_metric
from explorer.analysis.metrics import Metric, evaluate
from explorer.features import Add, check_hooks_fit, splice_hooks
from explorer.models.handle import ModelHandle

__all__ = ["SteeringResult", "steer"]

MODES = ("add", "clamp", "scale")


@dataclass(frozen=True, repr=False)
class SteeringResult(_BeforeAfter):
    """The metric per example before and after steering ``units`` (``mode`` by ``amount``)."""

    before: Float[torch.Tensor, " batch"]
    after: Float[torch.Tensor, " batch"]
    units: tuple[Feature, ...]
    mode: str
    amount: float

    def _summary(self) -> str:
        names = ", ".join(map(str, self.units[:2])) + (" ..." if len(self.units) > 2 else "")
        return (
            f"{self.mode} {num(self.amount)} on {names} over {len(self.before)} examples: "
            f"metric {num(self.before_mean)} -> {num(self.after_mean)}"
        )

    def _table(self) -> tuple:
        rows = [
            ("metric before", self.before_mean),
            ("metric after", self.after_mean),
            ("change", self.effect),
        ]
        names = ", ".join(map(str, self.units[:2])) + (" ..." if len(self.units) > 2 else "")
        return f"steering: {self.mode} {num(self.amount)} on {names}", ("", "mean"), rows, ""


@torch.no_grad()
def steer(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    units: Feature | Sequence[Feature],
    metric: Metric,
    amount: float,
    mode: str = "add",
) -> SteeringResult:
    """The metric per example without and with the features steered:
    ``mode="add"`` adds ``amount`` to their activations (moving the stream along their
    decoder directions), ``"clamp"`` sets them to ``amount``, ``"scale"`` multiplies them
    (at the unit's position only, when it names one)."""
    check_choice("mode", mode, MODES)
    if isinstance(units, Feature):
        units = [units]
    inputs, sae, _ = _setup(model, inputs, units, metric)
    mask = _mask(units, inputs.shape[1], sae.d_sae).any(0)

    def edit(acts: torch.Tensor) -> torch.Tensor:
        if mode == "add":
            new = acts + float(amount)
        elif mode == "clamp":
            new = torch.full_like(acts, float(amount))
        else:
            new = acts * float(amount)
        return torch.where(mask, new, acts)

    before = clean_metric(model, inputs, metric=metric)
    after = evaluate(metric, model.run_with_hooks(inputs, splice_hooks(sae, edit)), len(inputs))
    return SteeringResult(before, after, tuple(units), mode, float(amount))


@torch.no_grad()
def generate_steered(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    unit: Feature,
    amount: float,
    n: int = 8,
) -> torch.Tensor:
    """Greedy continuation ``[batch, pos + n]`` of ``inputs`` with ``amount`` added to the
    feature's activation at every position of every pass (``amount=0``: the model's own)."""
    sae = unit.sae
    check_hooks_fit(model, sae)
    tokens = model.check_inputs(inputs)
    hooks = splice_hooks(sae, {unit.feature: Add(float(amount))})
    for _ in range(n):
        if model.n_ctx is not None and tokens.shape[1] >= model.n_ctx:
            break
        logits = model.run_with_hooks(tokens, hooks)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens
