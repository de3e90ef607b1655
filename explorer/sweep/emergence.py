"""Emergence with scale: how step-like an outcome's change with model size is.

``emergence(sweep_or_table, size="d_model", outcome=("test_loss", "test_acc"))`` fits three
curves to each outcome as a function of size ``N`` (``x = ln N``):

- ``linear``: ``y = a + b x`` (a steady change per doubling);
- ``power_law``: ``y = a N^b`` (scaling-law smooth);
- ``sigmoid``: ``y = lo + (hi - lo) / (1 + exp(-(x - mid) / w))`` (a step at ``N = e^mid``).

The fit is chosen on sizes held out: each distinct size in turn is left out (all its seeds
with it), every curve is fitted to the others and predicts it, and the curve with the least
mean squared error on the held-out sizes wins (``cv_error``; ``cv_r2`` is ``1 - cv_error /
variance``). More parameters win only when they predict sizes they never saw. So that every
curve is tested on extrapolation as well as interpolation, at least 5 distinct sizes are
needed.

How step-like, whichever curve wins: ``width_decades``, the sigmoid's 10%-90% rise in
decades of size (``2 ln 9 w / ln 10``: small is a step), and ``largest_jump``, the share of
the whole change (smallest to largest size, seed means) that happens between two adjacent
sizes (1: all of it in one step; model-free).

Schaeffer et al. (2023) showed that a change can look emergent under a discontinuous metric
(accuracy, exact match) and smooth under a continuous one (loss) of the same runs: pass both
as ``outcome`` and the result shows them side by side.

>>> import math
>>> sizes = [2 ** k for k in range(2, 11)]
>>> table = {"d_model": sizes,
...          "acc": [0.1 + 0.8 / (1 + math.exp(-(math.log(s) - math.log(64)) / 0.3)) for s in sizes],
...          "loss": [5 * s ** -0.5 for s in sizes]}
>>> e = emergence(table, size="d_model", outcome=("loss", "acc"))
>>> e.chosen
{'loss': 'power_law', 'acc': 'sigmoid'}
>>> round(e.midpoint("acc"))
64
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explorer._display import Shown, fmt, pandas
from explorer.sweep.result import Sweep

__all__ = ["CURVES", "Emergence", "emergence"]

CURVES = ("linear", "power_law", "sigmoid")
MIN_SIZES = 5
_TEN_NINETY = 2 * math.log(9) / math.log(10)  # a sigmoid's 10%-90% rise, in decades per unit w


def _linear(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a + b * x


def _power_law(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * np.exp(b * x)


def _sigmoid(x: np.ndarray, lo: float, hi: float, mid: float, log_w: float) -> np.ndarray:
    z = np.clip((x - mid) / math.exp(min(log_w, 50.0)), -60, 60)
    return lo + (hi - lo) / (1 + np.exp(-z))


def _fit(curve: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The least-squares parameters of ``curve`` and their mean squared error (None: no fit)."""
    # lazy: scipy.optimize takes a moment to import; only fitting needs it
    from scipy.optimize import OptimizeWarning, curve_fit

    if curve == "linear":
        design = np.stack([np.ones_like(x), x], 1)
        params = np.linalg.lstsq(design, y, rcond=None)[0]
        return params, float(np.mean((_linear(x, *params) - y) ** 2))
    if curve == "power_law":
        fn, starts = _power_law, [[float(np.mean(y)) or 1.0, 0.0]]
        if (y > 0).all():
            slope, icept = np.polyfit(x, np.log(y), 1)
            starts.insert(0, [math.exp(icept), slope])
    else:
        fn, starts = _sigmoid, [_sigmoid_start(x, y)]
    best = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)  # no covariance: not used
                params, _ = curve_fit(fn, x, y, p0=p0, maxfev=2000)
        except (RuntimeError, ValueError, OverflowError):
            params = np.asarray(p0, dtype=float)  # the start, if the refinement fails
        error = float(np.mean((fn(x, *params) - y) ** 2))
        if math.isfinite(error) and (best is None or error < best[1]):
            best = (params, error)
    return best


def _sigmoid_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    """The best sigmoid on a grid of midpoints and widths, its ``lo`` and ``hi`` solved
    exactly (the curve is linear in them): where the least-squares refinement starts."""
    span = float(np.ptp(x)) or 1.0
    mids = np.linspace(x.min() - 0.25 * span, x.max() + 0.25 * span, 25)
    widths = span * np.geomspace(0.01, 3.0, 15)
    mid, w = (g.reshape(-1, 1) for g in np.meshgrid(mids, widths, indexing="ij"))
    s = 1 / (1 + np.exp(-np.clip((x[None] - mid) / w, -60, 60)))  # [grid, n]
    s_mean, y_mean = s.mean(1, keepdims=True), y.mean()
    var = ((s - s_mean) ** 2).sum(1, keepdims=True)
    rise = np.where(var > 0, ((s - s_mean) * (y - y_mean)).sum(1, keepdims=True) / var, 0.0)
    lo = y_mean - rise * s_mean
    i = int(np.argmin(((lo + rise * s - y) ** 2).mean(1)))
    return [float(lo[i, 0]), float(lo[i, 0] + rise[i, 0]), float(mid[i, 0]), math.log(w[i, 0])]


_FUNCTIONS = {"linear": _linear, "power_law": _power_law, "sigmoid": _sigmoid}


def _held_out_error(curve: str, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error on each size when fitted without it (every row counts once)."""
    squared = []
    for size in np.unique(x):
        out = x == size
        fitted = _fit(curve, x[~out], y[~out])
        if fitted is None:
            return math.inf
        guess = _FUNCTIONS[curve](x[out], *fitted[0])
        squared.extend(((guess - y[out]) ** 2).tolist())
    error = float(np.mean(squared))
    return error if math.isfinite(error) else math.inf


@dataclass(frozen=True, repr=False)
class Emergence(Shown):
    """Each outcome's three fits in ``size``: ``fits[outcome][curve]`` holds ``cv_error``,
    ``cv_r2``, ``error`` (in-sample), ``params``; ``chosen[outcome]`` the curve with the
    least held-out error; ``width_decades`` and ``largest_jump`` say how step-like."""

    size: str
    sizes: tuple[float, ...]
    outcomes: tuple[str, ...]
    fits: Mapping[str, Mapping[str, Mapping[str, Any]]]
    chosen: Mapping[str, str]
    width_decades: Mapping[str, float]
    largest_jump: Mapping[str, float]

    def midpoint(self, outcome: str) -> float:
        """The size at the middle of ``outcome``'s fitted sigmoid step (``e^mid``)."""
        self._check(outcome)
        return math.exp(float(self.fits[outcome]["sigmoid"]["params"][2]))

    def _check(self, outcome: str) -> None:
        if outcome not in self.fits:
            raise KeyError(f"no outcome {outcome!r}: this result has {', '.join(self.outcomes)}")

    def to_dataframe(self) -> Any:
        """One row per outcome and curve: ``outcome``, ``curve``, ``cv_error``, ``cv_r2``,
        ``error``, ``chosen``, and the outcome's ``width_decades`` and ``largest_jump``."""
        rows = [
            {
                "outcome": o,
                "curve": c,
                "cv_error": f["cv_error"],
                "cv_r2": f["cv_r2"],
                "error": f["error"],
                "chosen": self.chosen[o] == c,
                "width_decades": self.width_decades[o],
                "largest_jump": self.largest_jump[o],
            }
            for o in self.outcomes
            for c, f in self.fits[o].items()
        ]
        return pandas().DataFrame(rows)

    def _summary(self) -> str:
        parts = [f"{o}: {self.chosen[o]} (jump {self.largest_jump[o]:.2f})" for o in self.outcomes]
        return f"over {self.size} {_span(self.sizes)}: " + "; ".join(parts)

    def _table(self) -> tuple:
        rows = [
            (o, c, fmt(f["cv_error"]), fmt(f["cv_r2"]), "yes" if self.chosen[o] == c else "",
             fmt(self.width_decades[o]), fmt(self.largest_jump[o]))
            for o in self.outcomes
            for c, f in self.fits[o].items()
        ]  # fmt: skip
        note = (
            f"{len(self.sizes)} sizes of {self.size}; each curve chosen on sizes held out "
            "(leave one size out)"
        )
        header = ("outcome", "curve", "held-out MSE", "held-out R²", "chosen", "10-90% decades",
                  "largest jump")  # fmt: skip
        return "Emergence with scale", header, rows, note


def _span(sizes: Sequence[float]) -> str:
    return f"{sizes[0]:g}..{sizes[-1]:g}" if sizes else "(none)"


def _columns(source: Any, size: str, outcomes: Sequence[str]) -> dict[str, np.ndarray]:
    """``size`` and each outcome as float arrays, rows with any missing value dropped."""
    if isinstance(source, Sweep):
        table = source.outcomes()
        long = None
        columns = {}
        for name in (size, *outcomes):
            if name in table.columns:
                columns[name] = table[name].tolist()
                continue
            long = source.to_dataframe() if long is None else long
            rows = long[long.measure == name]
            if rows.empty:
                raise ValueError(
                    f"{name!r} is neither a setting or outcome of the sweep ({list(table.columns)})"
                    " nor a measure it logged"
                )
            last = rows.sort_values("step").groupby("run").value.last()
            columns[name] = [last.get(run) for run in table.index]
    else:
        frame = pandas().DataFrame(source) if not hasattr(source, "columns") else source
        missing = [n for n in (size, *outcomes) if n not in frame.columns]
        if missing:
            raise ValueError(f"no columns {missing} in the table; it has {list(frame.columns)}")
        columns = {n: frame[n].tolist() for n in (size, *outcomes)}
    out = {}
    for name, values in columns.items():
        try:
            out[name] = np.array([math.nan if v is None else float(v) for v in values])
        except (TypeError, ValueError) as err:
            raise ValueError(f"column {name!r} must hold numbers: {err}") from err
    return out


def emergence(
    sweep_or_table: Sweep | Any,
    *,
    size: str,
    outcome: str | Sequence[str],
) -> Emergence:
    """Fit linear, power-law and sigmoid curves in ``size`` to each ``outcome`` and choose
    among them on held-out sizes (see the module docstring).

    Args:
        sweep_or_table: a ``Sweep`` (its ``outcomes()``; a name that is not an outcome is
            read as a logged measure's last value per run), or a table (a DataFrame or a
            mapping of columns) with a row per run.
        size: the column of model size (``d_model``, ``n_heads``, ``n_layers``, parameters);
            every value > 0.
        outcome: one column, or several side by side (a continuous metric such as loss
            beside a discontinuous one such as accuracy).

    Returns:
        an ``Emergence``.
    """
    outcomes = (outcome,) if isinstance(outcome, str) else tuple(outcome)
    if not outcomes:
        raise ValueError("outcome must name at least one column")
    columns = _columns(sweep_or_table, size, outcomes)
    sizes = columns[size]
    if np.isnan(sizes).any() or (sizes <= 0).any():
        raise ValueError(f"every {size!r} must be a number > 0, got {sorted(set(sizes.tolist()))}")
    fits, chosen, widths, jumps = {}, {}, {}, {}
    distinct: set[float] = set()
    for name in outcomes:
        keep = ~np.isnan(columns[name])
        x, y = np.log(sizes[keep]), columns[name][keep]
        n_sizes = len(np.unique(x))
        if n_sizes < MIN_SIZES:
            raise ValueError(
                f"emergence needs at least {MIN_SIZES} distinct sizes with a value of {name!r} "
                f"(one is held out at a time, and a sigmoid has 4 parameters); got {n_sizes}"
            )
        distinct |= set(np.exp(np.unique(x)).round(9).tolist())
        variance = float(np.var(y)) or math.inf
        fits[name] = {}
        for curve in CURVES:
            whole = _fit(curve, x, y)
            held = _held_out_error(curve, x, y)
            fits[name][curve] = {
                "cv_error": held,
                "cv_r2": 1 - held / variance,
                "error": whole[1] if whole else math.inf,
                "params": tuple(float(p) for p in whole[0]) if whole else (),
            }
        chosen[name] = min(CURVES, key=lambda c: fits[name][c]["cv_error"])
        sig = fits[name]["sigmoid"]["params"]
        widths[name] = _TEN_NINETY * math.exp(sig[3]) if sig else math.nan
        means = np.array([y[x == v].mean() for v in np.unique(x)])
        total = abs(means[-1] - means[0])
        jumps[name] = float(np.abs(np.diff(means)).max() / total) if total > 0 else math.nan
    return Emergence(
        size=size,
        sizes=tuple(sorted(distinct)),
        outcomes=outcomes,
        fits=fits,
        chosen=chosen,
        width_decades=widths,
        largest_jump=jumps,
    )
