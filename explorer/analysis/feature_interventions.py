"""Interventions on SAE features: ablation, sweeps, activation and attribution patching.

Every pass splices the SAE in with its error term kept (``features.splice_hooks``), so an
edit of feature ``i`` changes the stream by exactly ``(new - old) * sae.decoder[i]``. The
replacement activations (``sources``, ``[batch, pos, d_sae]``) follow ``ablation``'s rules:
zeros, the batch mean per position (of ``reference`` when given), or another example's
values (seeded). ``ablate`` and ``ablation_sweep`` hand feature units here and wrap the
numbers in their own results; a sweep stacks one copy of the batch per feature (chunks
bounded by ``max_tokens``) and scores the features whose activations the edit leaves
unchanged (a feature silent on the batch, under zero ablation) without running them.

>>> from explorer.analysis import metrics
>>> from explorer.features import SparseAutoencoder
>>> from explorer.models import zoo
>>> m = zoo.attention_only_transformer(n_layers=1, d_model=8, d_vocab=10, n_ctx=6)
>>> sae = SparseAutoencoder.create("blocks.0.hook_resid_post", d_in=8, d_sae=16, k=4)
>>> x = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
>>> values, clean, corrupted = feature_patching(m, x, corrupted=x.flip(0), metric=metrics.logit_diff(1, 2), sae=sae)
>>> tuple(values.shape)
(16,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from explorer._checks import check_choice, check_model
from explorer.analysis.feature_units import Feature, feature_activations, sae_of
from explorer.analysis.interventions import clean_metric
from explorer.analysis.metrics import Metric, check_metric, evaluate, evaluate_copies
from explorer.features import SparseAutoencoder, check_hooks_fit, splice_hooks
from explorer.models.fast_paths import run_from_layer, starts_mid_model
from explorer.models.handle import ModelHandle
from explorer.models.sweeps import MAX_TOKENS

__all__: list[str] = []  # ablate, ablation_sweep and the patching verbs are the API

ABLATIONS = ("zero", "mean", "resample")
MODES = ("add", "clamp", "scale")
FAN_OUT_TOKENS = 2048  # rows x positions of one pass from mid-model: more spills CPU caches


def sources(
    model: ModelHandle,
    inputs: torch.Tensor,
    clean: torch.Tensor,
    sae: SparseAutoencoder,
    ablation: str,
    reference: torch.Tensor | None,
    seed: int,
) -> torch.Tensor:
    """The replacement feature activations ``[batch, pos, d_sae]`` (``ablation``'s rules)."""
    check_choice("ablation", ablation, ABLATIONS)
    if ablation == "zero":
        return torch.zeros_like(clean)
    ref = clean
    if reference is not None:
        reference = model.check_inputs(reference)
        if reference.shape[1:] != inputs.shape[1:]:
            raise ValueError(
                f"reference inputs must match the inputs' shape after the batch dimension: "
                f"{list(reference.shape[1:])} vs {list(inputs.shape[1:])}"
            )
        ref = feature_activations(model, reference, sae=sae)
    if ablation == "mean":
        return ref.mean(0, keepdim=True).expand_as(clean).clone()
    batch, n_ref = clean.shape[0], ref.shape[0]
    g = torch.Generator().manual_seed(seed)
    if reference is None and n_ref > 1:  # another example of the batch, as ``ablation`` does
        pick = (torch.arange(batch) + torch.randint(1, n_ref, (batch,), generator=g)) % n_ref
    else:
        pick = torch.randint(0, n_ref, (batch,), generator=g)
    return ref[pick]


def _mask(units: Sequence[Feature], n_pos: int, d_sae: int) -> torch.Tensor:
    """``[units, pos, d_sae]``: which feature activations each unit's edit replaces."""
    mask = torch.zeros(len(units), n_pos, d_sae, dtype=torch.bool)
    for row, unit in enumerate(units):
        if unit.position is None:
            mask[row, :, unit.feature] = True
        else:
            if not -n_pos <= unit.position < n_pos:
                raise ValueError(f"{unit}: position out of range for inputs of length {n_pos}")
            mask[row, unit.position, unit.feature] = True
    return mask


def _setup(
    model: ModelHandle, inputs: Any, units: Sequence[Feature], metric: Metric
) -> tuple[torch.Tensor, SparseAutoencoder, torch.Tensor]:
    check_model(model, "intervene on features")
    check_metric(metric)
    if not units:
        raise ValueError("no features: pass at least one Feature")
    sae = sae_of(units)
    check_hooks_fit(model, sae)
    inputs = model.check_inputs(inputs)
    return inputs, sae, feature_activations(model, inputs, sae=sae)


@torch.no_grad()
def ablate_features(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    units: Sequence[Feature],
    metric: Metric,
    ablation: str = "zero",
    reference: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """``(before, after, hooks)``: the metric per example without and with ``units``
    ablated together (``ablate``'s numbers for features)."""
    inputs, sae, clean = _setup(model, inputs, units, metric)
    source = sources(model, inputs, clean, sae, ablation, reference, seed)
    mask = _mask(units, inputs.shape[1], sae.d_sae).any(0)

    def edit(acts: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, source.to(acts.dtype), acts)

    batch = inputs.shape[0]
    before = clean_metric(model, inputs, metric=metric)
    after = evaluate(metric, model.run_with_hooks(inputs, splice_hooks(sae, edit)), batch)
    return before, after, tuple(sae.hooks)


@torch.no_grad()
def sweep_features(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    units: Sequence[Feature],
    metric: Metric,
    ablation: str = "zero",
    reference: torch.Tensor | None = None,
    seed: int = 0,
    max_tokens: int = MAX_TOKENS,
    source: torch.Tensor | None = None,
    sets: Sequence[Sequence[Feature]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(before [batch], after [unit, batch])``: each feature of ``units`` replaced on its
    own (by ``source`` when given, else by ``ablation``'s), equal to a loop of ``ablate``.
    With ``sets``: each set replaced together instead (rows follow ``sets``).

    Copies of the batch are stacked, one per feature, as many per pass as ``max_tokens``
    allows; a feature whose replacement equals its activation everywhere leaves the pass
    unchanged, so its row is the metric before (no pass run).
    """
    inputs, sae, clean = _setup(model, inputs, units, metric)
    if source is None:
        source = sources(model, inputs, clean, sae, ablation, reference, seed)
    batch, n_pos = inputs.shape[0], inputs.shape[1] if inputs.ndim > 1 else 1
    before = clean_metric(model, inputs, metric=metric)
    mask = _mask(units, clean.shape[1], sae.d_sae)
    if sets is not None:
        mask = torch.stack([_mask(group, clean.shape[1], sae.d_sae).any(0) for group in sets])
    after = before.expand(len(mask), batch).clone()
    changed = (source != clean).any(0)  # [pos, d_sae]: where a replacement changes anything
    moved = (mask & changed[None]).flatten(1).any(1)
    todo = moved.nonzero().flatten().tolist()
    per_pass = max(1, max_tokens // max(1, batch * n_pos))
    start_layer, base = _fan_out(model, sae, inputs, clean)
    if base is not None:  # from the residual stream after the SAE, each copy plus its change
        decoder = sae.decoder.to(base.dtype)
        per_pass = max(1, min(max_tokens, FAN_OUT_TOKENS) // max(1, batch * n_pos))
        for start in range(0, len(todo), per_pass):
            rows = todo[start : start + per_pass]
            delta = _deltas(source - clean, mask[rows], decoder).reshape(-1, *base.shape[1:])
            logits = run_from_layer(model, base.repeat(len(rows), 1, 1) + delta, start_layer)
            after[rows] = evaluate_copies(metric, logits, len(rows), batch)
        return before, after
    for start in range(0, len(todo), per_pass):
        rows = todo[start : start + per_pass]
        copies, chunk = len(rows), mask[rows]  # [copies, pos, d_sae]

        def edit(
            acts: torch.Tensor, chunk: torch.Tensor = chunk, copies: int = copies
        ) -> torch.Tensor:
            stacked = acts.reshape(copies, batch, *acts.shape[1:])
            out = torch.where(chunk[:, None], source.to(acts.dtype)[None], stacked)
            return out.reshape(acts.shape)

        stacked_inputs = inputs.repeat(copies, *([1] * (inputs.ndim - 1)))
        logits = model.run_with_hooks(stacked_inputs, splice_hooks(sae, edit))
        after[rows] = evaluate_copies(metric, logits, copies, batch)
    return before, after


_STARTS = {  # the hook an SAE writes -> (residual hook that carries its change, layer to start at)
    "hook_resid_pre": ("hook_resid_pre", 0),
    "hook_resid_post": ("hook_resid_post", 1),
    "hook_mlp_out": ("hook_resid_post", 1),
}


def _fan_out(
    model: ModelHandle, sae: SparseAutoencoder, inputs: torch.Tensor, clean: torch.Tensor
) -> tuple[int, torch.Tensor | None]:
    """``(layer, clean residual stream entering it)`` when a feature edit is a change of the
    residual stream entering a block (an SAE writing ``hook_resid_pre``/``_post`` or
    ``hook_mlp_out``, decoding affinely) and the model can start there; else ``(0, None)``.
    """
    parts = sae.hook_out.split(".")
    if len(parts) != 3 or parts[0] != "blocks" or parts[2] not in _STARTS:
        return 0, None
    if not starts_mid_model(model) or not _affine(sae, clean):
        return 0, None
    layer = int(parts[1])
    name, shift = _STARTS[parts[2]]
    hook = model.hook_name(name.removeprefix("hook_"), layer)
    _, cache = model.cache_pass(inputs, names=[hook], stop_at_layer=_stop(model, layer + 1))
    return layer + shift, cache[hook]


def _deltas(diff: torch.Tensor, mask: torch.Tensor, decoder: torch.Tensor) -> torch.Tensor:
    """``[copies, batch, pos, d]``: each copy's change of the stream, ``(diff * mask) @ W_dec``;
    one outer product per copy when each copy edits one feature (a sweep)."""
    diff = diff.to(decoder.dtype)
    features = mask.any(1)  # [copies, d_sae]
    if bool((features.sum(1) == 1).all()):
        which = features.float().argmax(1)  # [copies]
        at = mask[torch.arange(len(which)), :, which]  # [copies, pos]
        scale = diff[..., which].permute(2, 0, 1) * at[:, None]  # [copies, batch, pos]
        return scale[..., None] * decoder[which][:, None, None]
    return (diff[None] * mask[:, None]) @ decoder


def _stop(model: ModelHandle, layer: int) -> int | None:
    return layer if model.stops_early else None


def _affine(sae: SparseAutoencoder, acts: torch.Tensor) -> bool:
    """Whether ``decode`` is ``acts @ W_dec + b`` here (no output normalization): then an
    edit's change of the stream is ``(new - old) @ W_dec`` whatever the rest of the acts."""
    sample = acts.reshape(-1, acts.shape[-1])[:8]
    if sample.numel() == 0:
        return False
    with torch.no_grad():
        moved = sae.decode(sample) - sae.decode(torch.zeros_like(sample))
        return bool(torch.allclose(moved, sample @ sae.decoder.to(sample.dtype), atol=1e-5))


def feature_patching(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    corrupted: torch.Tensor,
    metric: Metric,
    sae: SparseAutoencoder,
    method: str = "activation",
    batch_size: int | None = None,
    other: ModelHandle | None = None,
) -> tuple[torch.Tensor, float, float]:
    """Patch each feature of ``sae`` (at every position) from the clean ``inputs`` into the
    ``corrupted`` run: ``(values, clean value, corrupted value)``, ``values[i]`` the mean
    metric with feature ``i`` clean (``activation_patching(grid="feature", sae=...)``).
    ``method="attribution"`` estimates it to first order from one backward pass (Nanda
    2023): ``m_corr + mean_b sum_pos (f_clean - f_corr) * d m / d f`` on the spliced
    corrupted run. ``other``: the clean features (and clean value) are ``other``'s on
    ``inputs``, encoded by the same SAE at its hook; ``model`` keeps its own error term
    (cross-model patching, ``activation_patching(other=..., grid="feature")``).
    """
    check_choice("method", method, ("activation", "attribution"))
    source = model if other is None else other
    if other is not None:
        _check_fits_both(model, other, sae, method)
    units = [Feature(sae, i) for i in range(sae.d_sae)]
    corrupted, _, corrupt_acts = _setup(model, corrupted, units, metric)
    clean = source.check_inputs(inputs)
    if clean.shape != corrupted.shape:
        raise ValueError(
            f"inputs {tuple(clean.shape)} and corrupted {tuple(corrupted.shape)} must have one shape"
        )
    clean_acts = feature_activations(source, clean, sae=sae)
    clean_value = float(clean_metric(source, clean, metric=metric).mean())
    if method == "activation":
        budget = MAX_TOKENS if batch_size is None else batch_size * corrupted.shape[-1]
        before, after = sweep_features(
            model, corrupted, units=units, metric=metric, source=clean_acts, max_tokens=budget
        )
        values = after.mean(1)
        corrupted_value = float(before.mean())
    else:
        corrupted_value, values = _attribution(
            model, corrupted, sae, metric, clean_acts, corrupt_acts
        )
    return values.float(), clean_value, corrupted_value


def _check_fits_both(
    model: ModelHandle, other: ModelHandle, sae: SparseAutoencoder, method: str
) -> None:
    """Sentences for cross-model feature patching: the SAE reads and writes a hook of both
    models, and the patching is exact (activation)."""
    if method != "activation":
        raise ValueError(
            "cross-model feature patching runs exactly (method='activation'); attribution "
            "patching of features takes one model and a corrupted input"
        )
    check_model(other, "patch features from")
    for handle in (model, other):
        check_hooks_fit(handle, sae)  # the width is checked where each model's features are read


def _attribution(
    model: ModelHandle,
    corrupted: torch.Tensor,
    sae: SparseAutoencoder,
    metric: Metric,
    clean_acts: torch.Tensor,
    corrupt_acts: torch.Tensor,
) -> tuple[float, torch.Tensor]:
    if not model.returns_gradients:
        raise ValueError(
            f"attribution patching takes gradients, and {model.name} runs its passes on a "
            "server: use method='activation'"
        )
    record: dict[str, torch.Tensor] = {}
    with torch.enable_grad():
        logits = model.run_with_hooks(corrupted, splice_hooks(sae, record=record))
        value = metric(logits)
        if value.shape != (corrupted.shape[0],):
            raise ValueError(f"a metric must return one value per example, got {list(value.shape)}")
        acts = record[sae.hook]
        (grad,) = torch.autograd.grad(value.sum(), acts)
    model.zero_grad()
    contrib = ((clean_acts - corrupt_acts) * grad.detach()).flatten(0, -2).sum(0)
    corrupted_value = float(value.detach().mean())
    return corrupted_value, contrib / corrupted.shape[0] + corrupted_value
