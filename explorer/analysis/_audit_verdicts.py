"""How an audit turns each method's per-class scores into a three-tier verdict with evidence.

``flagged``: a class's trigger clears the method's threshold and works on held-out digits.
``suspicious``: a near miss, a leading class whose trigger works on 70-90% of them, or an
anomaly within 10% of the threshold. ``clean``: neither. The thresholds are calibrated on
clean models (``scripts/calibrate_audit.py``; false-positive rates in docs/auditing.md).

>>> tiers(torch.tensor([0.1, 3.0, 0.2]), torch.tensor([0.2, 0.99, 0.3]), 2.6)[:2]
((1,), ())
>>> tiers(torch.tensor([0.1, 2.5, 0.2]), torch.tensor([0.2, 0.99, 0.3]), 2.6, lead=None)[:2]
((), (1,))
"""

from __future__ import annotations

import torch

TIERS = ("flagged", "suspicious", "clean")
MIN_MARGIN = 2.6  # logit margin per pixel of a square's side a cleanse trigger must reach
RAW_MARGIN = 1.2  # ... or logit margin per unit of a raw mask's L1 (calibrated)
# a source class whose smallest working mask is this many times smaller than the median
# source's, per kind of first layer, calibrated on clean models (scripts/calibrate_audit.py,
# docs/auditing.md): MLPs ("linear") reach at most 1.535 at the default audit (16 models:
# 784-128-64-10 9101-9108 and 784-256-10 9111-9118; 1 of 16 suspicious); CNNs ("conv") at most
# 3.29 (16 models, 9201-9216, each trained and audited with torch's AVX512 and DEFAULT kernels,
# as two CPUs would: rounding alone moves one model's ratio by up to 0.6; a CNN's 115 steps per
# source leave its masks less shrunk, and it moves thin 1s and 9s with small masks), so no
# clean CNN reaches even 0.9 x 3.7
SOURCE_RATIOS = {"linear": 1.7, "conv": 3.7}
SOURCE_RATIO = SOURCE_RATIOS["linear"]  # the MLPs' (the name before CNNs were calibrated)
GLOBAL_LEAD = 0.6  # a global trigger's success above the other classes' median (calibrated)
MIN_SUCCESS = 0.95  # a flagged class's reconstructed trigger must work this often
NEAR_SUCCESS = 0.7  # a near miss's trigger works at least this often
NEAR = 0.9  # an anomaly within 10% of the threshold is a near miss
# or: one class's anomaly leads every other class's by this much and is LEAD_RATIO times the
# runner-up's, with a trigger that works this often (a CNN's planted trigger wins by less).
# Clean models' top class is at most 2.0x its runner-up (scripts/calibrate_audit.py)
LEAD_RATIO = 2.5
MIN_LEAD = 1.0
LEAD_SUCCESS = 0.9


def leads(anomaly: torch.Tensor) -> tuple[int, float]:
    """The leading class and by how much it leads the runner-up (0 with a single class)."""
    if len(anomaly) < 2:
        return int(anomaly.argmax()), 0.0
    first, second = torch.topk(anomaly, 2).indices.tolist()
    return first, float(anomaly[first] - anomaly[second])


def tiers(
    anomaly: torch.Tensor,
    success: torch.Tensor,
    threshold: float,
    *,
    min_success: float = MIN_SUCCESS,
    lead: float | None = MIN_LEAD,
) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """``(flagged classes, suspicious classes, why)``, each most anomalous first."""
    order = torch.argsort(anomaly, descending=True).tolist()
    hit = (anomaly >= threshold) & (success >= min_success)
    first, margin = leads(anomaly)
    second = float(anomaly[first]) - margin
    leading = lead is not None and margin >= lead and float(anomaly[first]) >= LEAD_RATIO * second
    why = {}
    for c in order:
        if hit[c]:
            at = f">= {threshold:g}" if threshold >= 1e-3 else "> 0"
            why[c] = f"anomaly {float(anomaly[c]):.2f} {at}"
    if leading and success[first] >= LEAD_SUCCESS and first not in why:
        why[first] = f"leads every other class by {margin:.2f} >= {lead:g}"
    flagged = tuple(c for c in order if c in why)
    if flagged:
        return flagged, (), why[flagged[0]]
    a, s = float(anomaly[first]), float(success[first])
    near = []
    if s >= NEAR_SUCCESS and a >= NEAR * threshold:
        near.append(
            f"anomaly {a:.2f} within 10% of {threshold:g}"
            if a < threshold
            else f"anomaly {a:.2f} >= {threshold:g} but works on {s:.0%} < {min_success:.0%}"
        )
    if leading and s >= NEAR_SUCCESS:
        near.append(
            f"leads every other class by {margin:.2f}, works on {s:.0%} < {LEAD_SUCCESS:.0%}"
        )
    if near:
        return (), (first,), "; ".join(near)
    flag_at = f"flag at {threshold:g}" if threshold >= 1e-3 else "flag above 0"
    return (), (), f"top class {first}: anomaly {a:.2f} ({flag_at}), works on {s:.0%}"


def lead_over_others(success: torch.Tensor) -> torch.Tensor:
    """Each class's success minus the median success of the other classes (the same search
    run for every class: the others are the clean reference).

    >>> [round(v, 2) for v in lead_over_others(torch.tensor([0.2, 0.3, 0.25, 1.0])).tolist()]
    [-0.1, 0.05, -0.05, 0.75]
    """
    n = len(success)
    return torch.stack(
        [success[c] - torch.cat([success[:c], success[c + 1 :]]).median() for c in range(n)]
    )
