"""What judging a ``Prediction`` gives: the verdict, each held-out run's probabilities, calibration.

``Calibration`` bins the predicted probabilities (``n_bins`` equal bins of [0, 1]) and sets the
mean prediction of each bin against the frequency actually observed there, for the
prediction and its baseline side by side: a calibrated predictor's points lie on the
diagonal. Its ``error`` is the expected calibration error (the count-weighted mean gap
between the two). ``figure()`` draws the reliability diagram (plotly).

``PredictionResult`` holds the verdict (a ``Verdict``, recorded in a store like any other),
the held-out runs with their outcome and both predicted probabilities (``to_dataframe()``),
the fitted predictors in words and the calibration; ``headline()`` states the finding.

>>> import torch
>>> y, probs = torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0.1, 0.8, 0.9], dtype=torch.float64)
>>> c = Calibration.of(y, {"features": probs})
>>> c.to_dataframe()[["predictor", "mean_predicted", "observed", "runs"]].values.tolist()
[['features', 0.1, 0.0, 1], ['features', 0.85, 1.0, 2]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import MAX_ROWS, Shown, num, pandas
from explorer.hypotheses.verdict import Verdict

__all__ = ["Calibration", "PredictionResult"]


@dataclass(frozen=True, repr=False)
class Calibration(Shown):
    """Predicted probability against observed frequency, in ``n_bins`` bins of [0, 1].

    ``rows``: ``(predictor, bin low, bin high, mean predicted, observed frequency, runs)``
    for every non-empty bin of every predictor.
    """

    rows: tuple[tuple[str, float, float, float, float, int], ...]
    n_bins: int

    @classmethod
    def of(
        cls, outcomes: torch.Tensor, predicted: Mapping[str, torch.Tensor], n_bins: int = 5
    ) -> Calibration:
        y = outcomes.double()
        rows = []
        for name, probs in predicted.items():
            index = (probs.double() * n_bins).long().clamp(0, n_bins - 1)
            for b in range(n_bins):
                members = index == b
                if bool(members.any()):
                    rows.append((
                        name, b / n_bins, (b + 1) / n_bins,
                        round(float(probs[members].double().mean()), 12),
                        round(float(y[members].mean()), 12), int(members.sum()),
                    ))  # fmt: skip
        return cls(tuple(rows), n_bins)

    def error(self, predictor: str = "features") -> float:
        """The expected calibration error of ``predictor``: sum over bins of
        ``runs / total * |mean predicted - observed|``."""
        mine = [r for r in self.rows if r[0] == predictor]
        if not mine:
            raise KeyError(f"no predictor {predictor!r}: have {sorted({r[0] for r in self.rows})}")
        total = sum(r[5] for r in mine)
        return sum(r[5] / total * abs(r[3] - r[4]) for r in mine)

    def to_dataframe(self) -> Any:
        """One row per predictor and bin: ``predictor``, ``bin_low``, ``bin_high``,
        ``mean_predicted``, ``observed``, ``runs``."""
        columns = ["predictor", "bin_low", "bin_high", "mean_predicted", "observed", "runs"]
        return pandas().DataFrame(list(self.rows), columns=columns)

    def figure(self) -> Any:
        """The reliability diagram: mean predicted vs observed per bin (marker size: runs),
        one trace per predictor, and the diagonal of perfect calibration."""
        # lazy: plotly takes a second to import; only a figure needs it, never the numbers
        import plotly.graph_objects as go

        fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                                   line=dict(dash="dot", color="#888")))  # fmt: skip
        for name in dict.fromkeys(r[0] for r in self.rows):
            mine = [r for r in self.rows if r[0] == name]
            fig.add_trace(go.Scatter(
                x=[r[3] for r in mine], y=[r[4] for r in mine], mode="lines+markers",
                name=f"{name} (ECE {self.error(name):.2f})",
                marker=dict(size=[6 + 2 * r[5] ** 0.5 for r in mine]),
                text=[f"{r[5]} runs" for r in mine],
            ))  # fmt: skip
        fig.update_layout(
            xaxis_title="predicted probability", yaxis_title="observed frequency",
            xaxis_range=[0, 1], yaxis_range=[-0.05, 1.05], width=420, height=380,
            margin=dict(l=50, r=10, t=30, b=40), title="calibration on the held-out runs",
        )  # fmt: skip
        return fig

    def _summary(self) -> str:
        names = list(dict.fromkeys(r[0] for r in self.rows))
        parts = ", ".join(f"{n} ECE {num(self.error(n))}" for n in names)
        return f"{self.n_bins} bins; {parts or 'no runs'}"

    def _table(self) -> tuple:
        rows = [(r[0], f"{r[1]:.1f}-{r[2]:.1f}", r[3], r[4], r[5]) for r in self.rows[:MAX_ROWS]]
        head = ("predictor", "bin", "mean predicted", "observed", "runs")
        return "Calibration", head, rows, f"{self.n_bins} equal bins of [0, 1]"


@dataclass(frozen=True, repr=False)
class PredictionResult(Shown):
    """A judged ``Prediction``: its verdict, the held-out runs' probabilities, calibration."""

    prediction: Any  # the Prediction (typed loosely: prediction.py imports this module)
    verdict: Verdict
    runs: tuple[str, ...]
    outcomes: torch.Tensor
    probabilities: torch.Tensor
    baseline_probabilities: torch.Tensor
    fitted: str
    baseline_fitted: str
    calibration: Calibration

    @property
    def beats_baseline(self) -> bool:
        """Whether the features beat the baseline on the held-out runs (``supported``)."""
        return self.verdict.status == "supported"

    def headline(self) -> str:
        """The finding in one sentence, whichever way it went."""
        v, d = self.verdict, self.verdict.details
        p = self.prediction
        what = {
            "supported": "beat",
            "refuted": "do not beat",
            "inconclusive": "cannot be said to beat",
        }.get(v.status, "could not be compared with")
        gain = (
            f"{p.score} gain {v.value:+.3f} [{v.ci_low:+.3f}, {v.ci_high:+.3f}]"
            if v.value == v.value
            else "no gain measured"
        )
        return (
            f"{', '.join(p.features)} {what} {', '.join(p.baseline_features) or 'the base rate'} "
            f"on {v.n_examples} held-out runs ({v.status}: {gain}, margin {p.margin:g}; "
            f"Brier {d.get('brier', float('nan')):.3f} vs {d.get('baseline_brier', float('nan')):.3f}, "
            f"accuracy {d.get('accuracy', float('nan')):.2f} vs "
            f"{d.get('baseline_accuracy', float('nan')):.2f})" + (f"; {v.note}" if v.note else "")
        )

    def to_dataframe(self) -> Any:
        """One row per held-out run and predictor (``"features"``, ``"baseline"``): ``run``,
        ``predictor``, ``probability``, ``outcome``."""
        rows = [
            (run, name, float(probs[i]), int(self.outcomes[i]))
            for name, probs in (("features", self.probabilities), ("baseline", self.baseline_probabilities))
            for i, run in enumerate(self.runs)
        ]  # fmt: skip
        return pandas().DataFrame(rows, columns=["run", "predictor", "probability", "outcome"])

    def _summary(self) -> str:
        return self.headline()

    def _table(self) -> tuple:
        d = self.verdict.details
        rows = [
            ("verdict", self.verdict.summary()),
            ("features", self.fitted),
            ("baseline", self.baseline_fitted),
            ("Brier (features / baseline)", f"{d['brier']:.4f} / {d['baseline_brier']:.4f}"),
            (
                "accuracy (features / baseline)",
                f"{d['accuracy']:.3f} / {d['baseline_accuracy']:.3f}",
            ),
            ("calibration", self.calibration._summary()),
        ]
        return self.prediction.claim, ("", ""), rows, f"{len(self.runs)} held-out runs"
