"""The simple predictors a ``Prediction`` fits on its formation runs: numbers in, a probability out.

Each turns a table of features (one row per run) and a yes/no outcome per run into a fitted
predictor whose ``probabilities(features)`` gives, for each run, the probability of the
outcome. All are deterministic (no random start), written in float64 torch, and small
enough to read:

- ``"logistic"``: logistic regression on the standardised features (the formation runs'
  mean and spread), with an L2 penalty of ``1.0`` on the weights (not the intercept),
  fitted by Newton's method (iteratively reweighted least squares). The penalty keeps the
  weights finite when the formation runs are separable, as they often are with a few dozen.
- ``"threshold"``: a rule, the conjunction of one cutoff per feature (``weight_decay >= 0.3
  and train_frac >= 0.4``), each cutoff and its side (``>=`` or ``<=``) chosen among the
  formation runs' values to maximise the formation accuracy (every pair of cutoffs is tried
  for up to two features; beyond two, one feature at a time, three passes). Its
  probabilities are the outcome's frequency among the formation runs inside and outside
  the rule, with Laplace's rule of succession (``(k + 1) / (n + 2)``), so a rule never says
  0 or 1.
- no features at all: the formation runs' base rate (by the same rule of succession), the
  baseline of a prediction made from settings alone.

>>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
>>> fit_predictor("threshold", x, torch.tensor([0, 0, 1, 1]), ("wd",)).describe()
'wd >= 2'
>>> p = fit_predictor("logistic", x, torch.tensor([0, 0, 1, 1]), ("wd",)).probabilities(x)
>>> bool(p[0] < 0.5 < p[3])
True
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["PREDICTORS", "FittedPredictor", "fit_predictor"]

PREDICTORS = ("logistic", "threshold")
PENALTY = 1.0  # the L2 penalty of the logistic regression, on standardised features


@dataclass(frozen=True)
class FittedPredictor:
    """A predictor fitted on formation runs: its kind, features and parameters.

    ``weights``/``intercept``/``mean``/``scale`` for ``"logistic"``; ``cutoffs`` (one
    ``(side, value)`` per feature, ``None`` where a feature is left out of the rule) and
    ``inside``/``outside`` (the outcome's frequency there) for ``"threshold"``; only
    ``base_rate`` when there are no features.
    """

    kind: str
    features: tuple[str, ...]
    base_rate: float
    weights: tuple[float, ...] = ()
    intercept: float = 0.0
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    cutoffs: tuple[tuple[str, float] | None, ...] = ()
    inside: float = 0.0
    outside: float = 0.0

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """The probability of the outcome for each row of ``features`` ``[runs, features]``."""
        x = features.double()
        if not self.features:
            return torch.full((len(x),), self.base_rate, dtype=torch.float64)
        if self.kind == "logistic":
            d = torch.float64
            z = (x - torch.tensor(self.mean, dtype=d)) / torch.tensor(self.scale, dtype=d)
            return torch.sigmoid(z @ torch.tensor(self.weights, dtype=d) + self.intercept)
        return torch.where(_inside(x, self.cutoffs), self.inside, self.outside)

    def describe(self) -> str:
        """The fitted predictor in words (a rule, or the weights of each feature)."""
        if not self.features:
            return f"the base rate {self.base_rate:.3g}"
        if self.kind == "logistic":
            terms = " ".join(f"{w:+.3g}*z({f})" for f, w in zip(self.features, self.weights))
            return f"sigmoid({self.intercept:+.3g} {terms})"
        parts = [
            f"{f} {c[0]} {c[1]:.4g}" for f, c in zip(self.features, self.cutoffs) if c is not None
        ]
        return " and ".join(parts) or "always (no cutoff beats the base rate)"


def _inside(x: torch.Tensor, cutoffs: Sequence[tuple[str, float] | None]) -> torch.Tensor:
    keep = torch.ones(len(x), dtype=torch.bool)
    for j, cut in enumerate(cutoffs):
        if cut is not None:
            keep &= x[:, j] >= cut[1] if cut[0] == ">=" else x[:, j] <= cut[1]
    return keep


def _succession(k: float, n: float) -> float:
    return (k + 1.0) / (n + 2.0)


def fit_predictor(
    kind: str, features: torch.Tensor, outcomes: torch.Tensor, feature_names: Sequence[str]
) -> FittedPredictor:
    """Fit ``kind`` on ``features`` ``[runs, len(feature_names)]`` and 0/1 ``outcomes``."""
    if kind not in PREDICTORS:
        raise ValueError(f"unknown predictor {kind!r}: choose one of {', '.join(PREDICTORS)}")
    x, y = features.double(), outcomes.double()
    base = _succession(float(y.sum()), len(y))
    names = tuple(feature_names)
    if not names:
        return FittedPredictor(kind, (), base)
    if kind == "logistic":
        return _logistic(x, y, names, base)
    return _threshold(x, y, names, base)


def _logistic(
    x: torch.Tensor, y: torch.Tensor, names: tuple[str, ...], base: float
) -> FittedPredictor:
    mean = x.mean(0)
    scale = x.std(0, unbiased=False)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant feature: 0 weight
    z = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), (x - mean) / scale], 1)
    penalty = torch.eye(z.shape[1], dtype=torch.float64) * PENALTY
    penalty[0, 0] = 0.0
    w = torch.zeros(z.shape[1], dtype=torch.float64)
    for _ in range(100):  # Newton: the penalised log-likelihood is strictly concave
        p = torch.sigmoid(z @ w)
        gradient = z.T @ (y - p) - penalty @ w
        hessian = z.T @ (z * (p * (1 - p))[:, None]) + penalty + 1e-9 * torch.eye(len(w))
        step = torch.linalg.solve(hessian, gradient)
        w = w + step
        if float(step.abs().max()) < 1e-10:
            break
    return FittedPredictor(
        "logistic", names, base, weights=tuple(w[1:].tolist()), intercept=float(w[0]),
        mean=tuple(mean.tolist()), scale=tuple(scale.tolist()),
    )  # fmt: skip


def _candidates(column: torch.Tensor) -> list[tuple[str, float] | None]:
    values = sorted(set(column.tolist()))
    return [None] + [(side, v) for v in values for side in (">=", "<=")]


def _accuracy(x: torch.Tensor, y: torch.Tensor, cutoffs: list) -> tuple[float, int, float]:
    inside = _inside(x, cutoffs)
    k_in, n_in = float(y[inside].sum()), int(inside.sum())
    k_out, n_out = float(y[~inside].sum()), len(y) - n_in
    # each side predicts its majority; ties broken toward fewer cutoffs (a simpler rule),
    # then toward a rule that says when the outcome happens (yes inside, no outside)
    right = max(k_in, n_in - k_in) + max(k_out, n_out - k_out)
    says_yes = _succession(k_in, n_in) - _succession(k_out, n_out)
    return right, -sum(c is not None for c in cutoffs), says_yes


def _threshold(
    x: torch.Tensor, y: torch.Tensor, names: tuple[str, ...], base: float
) -> FittedPredictor:
    options = [_candidates(x[:, j]) for j in range(x.shape[1])]
    if len(names) <= 2:
        best = max(itertools.product(*options), key=lambda c: _accuracy(x, y, list(c)))
        cutoffs = list(best)
    else:
        cutoffs = [None] * len(names)
        for _ in range(3):
            for j in range(len(names)):
                cutoffs[j] = max(
                    options[j], key=lambda c: _accuracy(x, y, [*cutoffs[:j], c, *cutoffs[j + 1 :]])
                )
    inside = _inside(x, cutoffs)
    return FittedPredictor(
        "threshold", names, base, cutoffs=tuple(cutoffs),
        inside=_succession(float(y[inside].sum()), int(inside.sum())),
        outside=_succession(float(y[~inside].sum()), int((~inside).sum())),
    )  # fmt: skip
