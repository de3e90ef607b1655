"""Universality across runs: what networks trained with other seeds or settings share.

Three questions, each asked of handles or runs (a ``Run`` stands for its last checkpoint),
through the handle protocol only:

- ``representation_similarity(model, inputs, other=...)``: linear CKA (Kornblith et al.
  2019) between two models' activations on the same inputs, layer by layer (the residual
  stream after each block of a transformer, each hidden layer of a plain network), with its
  permutation baseline: the CKA after shuffling one model's rows (the pairing of examples
  destroyed), ``n_permutations`` times, seeded. CKA is invariant to rotations and isotropic
  scaling of either representation, so two seeds that learned the same features in other
  bases score 1.
- ``match_units(model, inputs, other=..., granularity="neuron")``: each layer's units of one
  model paired one to one with the other's (Hungarian matching,
  ``scipy.optimize.linear_sum_assignment``, maximising the summed Pearson correlation of
  their activations on the same inputs); ``share`` is the fraction of units whose partner
  correlates at least ``threshold``. Neurons are compared by their activations
  (``mlp.hook_post``); heads by their attention patterns (``attn.hook_pattern``), which do
  not depend on the basis of the head's space.
- ``key_frequency_recurrence(sweep_or_runs)`` (grokking, in
  ``explorer.sweep.key_frequency_recurrence``): the key frequencies of each run's embedding,
  and how many runs share each.

Activations are rows: one per example and position (tokens), or per example (images).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(200, 8, generator=g)
>>> q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
>>> round(linear_cka(x, 3 * x @ q), 6)
1.0
>>> round(linear_cka(x, torch.randn(200, 8, generator=g)), 2) < 0.2
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import Shown, fmt, pandas
from explorer.models.protocol import Handle
from explorer.training.run import Run

__all__ = [
    "RepresentationSimilarity",
    "UnitMatching",
    "cka_baseline",
    "correlations",
    "linear_cka",
    "match_units",
    "representation_similarity",
]


# ------------------------------------------------------------------------ helpers
def _handle(model: Handle | Run, what: str) -> Handle:
    if isinstance(model, Run):
        handle = model.load_model()
        handle.name = f"{model.path.name}@{model.steps[-1]}"  # runs of a sweep share a name
        return handle
    if not isinstance(model, Handle):
        raise TypeError(f"{what} must be a model handle or a Run, got {type(model).__name__}")
    return model


def _rows(act: torch.Tensor, tokens: bool) -> torch.Tensor:
    """``[rows, features]``: examples (x positions for tokens) by everything else."""
    if tokens and act.ndim >= 3:
        return act.reshape(act.shape[0] * act.shape[1], -1).double()
    return act.reshape(act.shape[0], -1).double()


def _activations(
    model: Handle, other: Handle, inputs: torch.Tensor, hooks: Sequence[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    for h in hooks:
        model.check_hook(h)
        other.check_hook(h)
    with torch.no_grad():
        _, a = model.cache_pass(inputs, hooks)
        _, b = other.cache_pass(inputs, hooks)
    return a, b


def _centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same rows, ``[n, p]`` and ``[n, q]``:
    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with columns centred (0 if either
    is constant)."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"CKA needs the same rows (at least 2): got {x.shape[0]} and {y.shape[0]}")
    xc, yc = (
        _centred(x.double().reshape(x.shape[0], -1)),
        _centred(y.double().reshape(y.shape[0], -1)),
    )
    denom = float(torch.linalg.norm(xc.T @ xc) * torch.linalg.norm(yc.T @ yc))
    return float(torch.linalg.norm(yc.T @ xc) ** 2) / denom if denom > 0 else 0.0


def cka_baseline(
    x: torch.Tensor, y: torch.Tensor, *, n_permutations: int = 100, seed: int = 0
) -> torch.Tensor:
    """``[n_permutations]`` linear CKAs of ``x`` with ``y``'s rows shuffled (seeded): what
    CKA is when the pairing of rows carries nothing."""
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    xc, yc = _centred(x.double()), _centred(y.double())
    denom = float(torch.linalg.norm(xc.T @ xc) * torch.linalg.norm(yc.T @ yc))
    g = torch.Generator().manual_seed(seed)
    out = [
        float(torch.linalg.norm(yc[torch.randperm(len(yc), generator=g)].T @ xc) ** 2)
        for _ in range(n_permutations)
    ]
    return torch.tensor(out, dtype=torch.float64) / (denom if denom > 0 else float("inf"))


def _default_hooks(model: Handle, site: str) -> list[str]:
    return [model.hook_name(site, layer) for layer in range(model.n_layers)]


# ---------------------------------------------------------------- representation similarity
@dataclass(frozen=True, repr=False)
class RepresentationSimilarity(Shown):
    """Linear CKA per hook, and its permutation baseline: ``baseline`` holds each hook's
    ``n_permutations`` CKAs with one model's rows shuffled; ``percentile`` the share of them
    below the observed CKA, ``baseline_p95`` their 95th percentile."""

    hooks: tuple[str, ...]
    cka: tuple[float, ...]
    baseline: torch.Tensor  # [hook, permutation]
    names: tuple[str, str]
    n_rows: int

    @property
    def baseline_p95(self) -> tuple[float, ...]:
        return tuple(float(v) for v in torch.quantile(self.baseline, 0.95, dim=1))

    @property
    def percentile(self) -> tuple[float, ...]:
        return tuple(float((row < c).double().mean()) for row, c in zip(self.baseline, self.cka))

    def to_dataframe(self) -> Any:
        """One row per hook: ``hook``, ``cka``, ``baseline_mean``, ``baseline_p95``,
        ``percentile``."""
        return pandas().DataFrame(
            {
                "hook": list(self.hooks),
                "cka": list(self.cka),
                "baseline_mean": self.baseline.mean(1).tolist(),
                "baseline_p95": list(self.baseline_p95),
                "percentile": list(self.percentile),
            }
        )

    def _summary(self) -> str:
        pairs = ", ".join(f"{h.split('.hook_')[0]} {c:.3f}" for h, c in zip(self.hooks, self.cka))
        return f"{self.names[0]} vs {self.names[1]} on {self.n_rows} rows: {pairs}"

    def _table(self) -> tuple:
        rows = [
            (h, fmt(c), fmt(p95), fmt(pc))
            for h, c, p95, pc in zip(self.hooks, self.cka, self.baseline_p95, self.percentile)
        ]
        note = f"baseline: {self.baseline.shape[1]} permutations of the rows"
        return "Linear CKA", ("hook", "CKA", "baseline p95", "percentile"), rows, note


def representation_similarity(
    model: Handle | Run,
    inputs: torch.Tensor,
    *,
    other: Handle | Run,
    hooks: str | Sequence[str] | None = None,
    n_permutations: int = 100,
    seed: int = 0,
) -> RepresentationSimilarity:
    """Linear CKA between ``model`` and ``other`` at each of ``hooks`` on ``inputs``.

    ``hooks`` defaults to every layer's ``resid_post`` (transformers) or hidden layer
    (``mlp.hook_post``, plain networks). The baseline shuffles ``other``'s rows
    ``n_permutations`` times (seeded by ``seed``).
    """
    a, b = _handle(model, "model"), _handle(other, "other")
    if isinstance(hooks, str):
        hooks = [hooks]
    hooks = (
        list(hooks) if hooks else _default_hooks(a, "resid_post" if a.is_transformer else "post")
    )
    if (
        isinstance(n_permutations, bool)
        or not isinstance(n_permutations, int)
        or n_permutations < 1
    ):
        raise ValueError(f"n_permutations must be a whole number >= 1, got {n_permutations!r}")
    inputs = a.check_inputs(inputs)
    acts_a, acts_b = _activations(a, b, inputs, hooks)
    tokens = a.kind == "tokens"
    ckas, baselines, n_rows = [], [], 0
    for h in hooks:
        x, y = _rows(acts_a[h], tokens), _rows(acts_b[h], tokens)
        n_rows = x.shape[0]
        ckas.append(linear_cka(x, y))
        baselines.append(cka_baseline(x, y, n_permutations=n_permutations, seed=seed))
    return RepresentationSimilarity(
        tuple(hooks), tuple(ckas), torch.stack(baselines), (a.name, b.name), n_rows
    )


# ------------------------------------------------------------------------ unit matching
def correlations(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of every column of ``x`` ``[n, p]`` with every column of ``y``
    ``[n, q]``: ``[p, q]`` (0 for a constant column)."""
    xc, yc = _centred(x.double()), _centred(y.double())
    xn, yn = xc.norm(dim=0), yc.norm(dim=0)
    corr = (xc.T @ yc) / (xn[:, None] * yn[None, :])
    return torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True, repr=False)
class UnitMatching(Shown):
    """Per hook, each unit of the first model's partner in the second (``partners[i][u]``)
    and their correlation; ``share[i]`` of units whose partner reaches ``threshold``."""

    hooks: tuple[str, ...]
    granularity: str
    partners: tuple[tuple[int, ...], ...]
    correlation: tuple[tuple[float, ...], ...]
    threshold: float
    names: tuple[str, str]

    @property
    def share(self) -> tuple[float, ...]:
        return tuple(
            sum(c >= self.threshold for c in cs) / len(cs) if cs else 0.0 for cs in self.correlation
        )

    def to_dataframe(self) -> Any:
        """One row per unit: ``hook``, ``unit``, ``partner``, ``correlation``, ``matched``."""
        rows = [
            {"hook": h, "unit": u, "partner": p, "correlation": c, "matched": c >= self.threshold}
            for h, ps, cs in zip(self.hooks, self.partners, self.correlation)
            for u, (p, c) in enumerate(zip(ps, cs))
        ]
        return pandas().DataFrame(rows)

    def _summary(self) -> str:
        parts = ", ".join(f"{h.split('.hook_')[0]} {s:.0%}" for h, s in zip(self.hooks, self.share))
        return (
            f"{self.granularity}s of {self.names[0]} matched in {self.names[1]} "
            f"(correlation >= {self.threshold:g}): {parts}"
        )

    def _table(self) -> tuple:
        rows = [
            (h, len(ps), fmt(s), fmt(sum(cs) / len(cs) if cs else 0.0))
            for h, ps, cs, s in zip(self.hooks, self.partners, self.correlation, self.share)
        ]
        note = f"Hungarian matching on activation correlation; threshold {self.threshold:g}"
        header = ("hook", self.granularity + "s", "share matched", "mean correlation")
        return "Units matched across runs", header, rows, note


_SITES = {"neuron": "post", "head": "pattern"}


def _unit_columns(act: torch.Tensor, granularity: str, tokens: bool) -> torch.Tensor:
    if granularity == "head":  # [batch, head, query, key] -> [batch * query * key, head]
        return act.permute(0, 2, 3, 1).reshape(-1, act.shape[1]).double()
    return _rows(act, tokens)


def match_units(
    model: Handle | Run,
    inputs: torch.Tensor,
    *,
    other: Handle | Run,
    granularity: str = "neuron",
    hooks: str | Sequence[str] | None = None,
    threshold: float = 0.5,
) -> UnitMatching:
    """Pair ``model``'s units with ``other``'s one to one at each hook by activation
    correlation on ``inputs`` (Hungarian matching), and the share paired above ``threshold``.

    ``granularity``: ``"neuron"`` (hooks default to every layer's ``mlp.hook_post``) or
    ``"head"`` (every layer's ``attn.hook_pattern``).
    """
    # lazy: scipy.optimize loads in a moment, but only the matching needs it
    from scipy.optimize import linear_sum_assignment

    if granularity not in _SITES:
        raise ValueError(f"granularity must be one of {sorted(_SITES)}, got {granularity!r}")
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold is a correlation: it must be in [-1, 1], got {threshold!r}")
    a, b = _handle(model, "model"), _handle(other, "other")
    if isinstance(hooks, str):
        hooks = [hooks]
    if not hooks:
        if granularity == "neuron" and a.is_transformer and not a.has_mlp:
            raise ValueError(f"{a.name} has no MLP neurons: match granularity='head'")
        hooks = _default_hooks(a, _SITES[granularity])
    inputs = a.check_inputs(inputs)
    acts_a, acts_b = _activations(a, b, inputs, list(hooks))
    tokens = a.kind == "tokens"
    partners, corrs = [], []
    for h in hooks:
        x = _unit_columns(acts_a[h], granularity, tokens)
        y = _unit_columns(acts_b[h], granularity, tokens)
        c = correlations(x, y)
        rows, cols = linear_sum_assignment(c.numpy(), maximize=True)
        partner = [-1] * c.shape[0]
        value = [0.0] * c.shape[0]
        for r, k in zip(rows.tolist(), cols.tolist()):
            partner[r], value[r] = k, float(c[r, k])
        partners.append(tuple(partner))
        corrs.append(tuple(value))
    return UnitMatching(
        tuple(hooks), granularity, tuple(partners), tuple(corrs), float(threshold), (a.name, b.name)
    )
