"""Audit an image classifier for a planted trigger (backdoor), within a budget of passes.

``audit(model, inputs, method=...)`` returns one frozen ``AuditResult`` per model: a
three-tier ``verdict`` (``flagged`` / ``suspicious`` / ``clean``) with its ``evidence`` in
words, the classes behind it, per class the reconstructed trigger (mask and pattern), its
shape in words, its success on held-out images, an anomaly score, and the forward and
backward passes spent (one model call, of a batch, is one pass). Methods:

- ``"cleanse"``: per class, the smallest mask and pattern sending other digits to that class
  (Neural Cleanse, Wang et al. 2019). Both the raw mask (any shape: a line, dots, a frame)
  and its densest square (refitted) are tested on held-out digits; a square scores its
  median logit margin per pixel of its side, a raw mask its margin per unit of mask L1 (in
  the square's units), and a class's anomaly is the better of the two.
  The MAD anomaly index of the raw masks' L1 sizes is reported too (``mad_index``). The
  leading class's fewest working pixels are grown back into the whole trigger the model
  learned (a gradient step per round, ``_audit_search.complete``) and reported as its mask.
- ``"source"``: per source class, the smallest mask moving *that class's* digits to any other
  class; a source whose mask is far smaller than the median source's has a trigger that
  fires on it alone (``sources[t]`` names it for target ``t``). How much smaller is
  calibrated per kind of first layer (``SOURCE_RATIOS``: a CNN's clean sources reach twice
  an MLP's).
- ``"global"``: per class, a universal perturbation of the whole image (a pattern blended in
  at opacity 0.1, or an L-infinity perturbation of 0.1 with ``norm="linf"``); a class whose
  perturbation moves far more held-out digits than the other classes' is anomalous.
- ``"stamp"``: white, black and checkerboard squares at every position and size.
- ``"weights"``: first-layer weight magnitude on input pixels the data never uses, then a
  short pattern fit there (linear first layers only; "not applicable" before any pass).
- ``"compare"``: each pixel's first-layer weights against ``references`` (other models of
  the same architecture; ``weight_outliers``, zero passes), then a pattern fit on the
  outlying pixels to name the target class.
- ``"all"`` (default): every applicable method above but the stamp scan, the budget split
  between them and spent; the verdict is the strongest tier any method reaches.

The searches are in ``_audit_search``, the tiers in ``_audit_verdicts``. Written here, not
wrapped from adversarial-robustness-toolbox (see docs/auditing.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch

from explorer._checks import check_choice, check_positive, check_tensor
from explorer._deprecate import renamed_arguments
from explorer.analysis import _audit_search as search
from explorer.analysis._audit_methods import (
    GROW_PASSES,
    _cleanse,
    _evaluate,
    _global,
    _linear_first,
    _result,
    _source,
)
from explorer.analysis._audit_search import REFIT_STEPS
from explorer.analysis._audit_verdicts import (
    GLOBAL_LEAD,
    LEAD_RATIO,
    LEAD_SUCCESS,
    MIN_LEAD,
    MIN_MARGIN,
    MIN_SUCCESS,
    NEAR_SUCCESS,
    RAW_MARGIN,
    SOURCE_RATIO,
    SOURCE_RATIOS,
    TIERS,
    tiers,
)
from explorer.analysis._audit_weight_methods import FILL_PASSES, SOURCE_PASSES, _compare, _weights
from explorer.analysis.audit_result import AuditResult, Meter
from explorer.analysis.audit_scores import mad_index, weight_anomaly
from explorer.analysis.weight_outliers import first_layer_pixel_norms
from explorer.models.handle import ModelHandle

__all__ = [  # named here too: mad_index, weight_anomaly (audit_scores)
    "DEFAULT_BUDGETS",
    "GLOBAL_LEAD",
    "GLOBAL_STEPS",
    "LEAD_RATIO",
    "LEAD_SUCCESS",
    "MAD_THRESHOLD",
    "METHODS",
    "MIN_LEAD",
    "MIN_MARGIN",
    "MIN_SUCCESS",
    "NEAR_SUCCESS",
    "RAW_MARGIN",
    "REFIT_STEPS",
    "SOURCE_RATIO",
    "SOURCE_RATIOS",
    "SOURCE_STEPS",
    "TIERS",
    "AuditResult",
    "Meter",
    "audit",
    "mad_index",
    "weight_anomaly",
]

METHODS = ("all", "cleanse", "source", "global", "stamp", "weights", "compare")
MAD_THRESHOLD = 2.0  # Neural Cleanse's anomaly index (reported, not the flag: docs/auditing.md)
# passes when budget="auto": a convolution's pass costs ~4x an MLP's (docs/auditing.md)
DEFAULT_BUDGETS = {"linear": 16_000, "conv": 6_000}
GLOBAL_STEPS = 200  # steps per class of the global search (docs/auditing.md)
SOURCE_STEPS = 300  # steps per source class of the per-source mask search (docs/auditing.md)


def _combine(model, parts, budget, meter, start) -> AuditResult:
    """The strongest tier any method reached; that method's trigger and evidence first."""
    rank = {t: i for i, t in enumerate(TIERS)}
    # on a tie, the method whose trigger is most specific: a mask, then the compared
    # pixels, then a whole-image pattern, then the unused-pixel region
    prefer = {m: i for i, m in enumerate(("cleanse", "source", "compare", "global", "weights"))}
    order = sorted(parts, key=lambda p: (rank[p.verdict], prefer[p.method]))
    best = _agreed(order)
    order.remove(best)
    order.insert(0, best)
    evidence = "; ".join(p.evidence for p in order) + _disagreement(order)
    # the mask search's raw masks and MAD index, and the compared pixels' z map, stay in the
    # result whichever method decided
    keep = {}
    for part in parts:
        if part.method == "cleanse":
            keep.update({k: getattr(part, k) for k in CLEANSE_FIELDS})
        if part.method == "compare":
            keep["weight_z"] = part.weight_z
    best, evidence = _localize(best, parts, evidence)
    best, evidence = _fewest_pixels(best, parts, evidence)
    return dataclasses.replace(
        best,
        model=model.name,
        method="all",
        forward_passes=meter.forwards,
        backward_passes=meter.backwards,
        examples=meter.examples,
        budget=budget,
        seconds=time.process_time() - start,
        evidence=evidence,
        parts=tuple(parts),
        **keep,
    )


def _agreed(order: list[AuditResult]) -> AuditResult:
    """The method that decides, from methods ranked strongest tier first: among those at the
    strongest tier, one naming the class most of them name; on a tie, the class most methods
    at any non-clean tier name; then the ranking. The mask search can flag a
    natural easy class (5) by a hair while the per-source search and the weight comparison
    both point at the planted one: two methods that agree outweigh one."""
    first = order[0]
    top = [p for p in order if p.verdict == first.verdict]
    if first.verdict == "clean" or len({p.target for p in top}) < 2:
        return first
    named = [p.target for p in order if p.verdict != "clean"]
    return max(top, key=lambda p: (sum(q.target == p.target for q in top), named.count(p.target)))


def _disagreement(order: list[AuditResult]) -> str:
    """A note on the evidence when the methods that are not clean name different classes."""
    named: dict[int, list[str]] = {}
    for p in order:
        if p.verdict != "clean":
            named.setdefault(p.target, []).append(p.method)
    if len(named) < 2:
        return ""
    said = "; ".join(f"class {c}: {', '.join(m)}" for c, m in named.items())
    return (
        f"; the methods name different classes ({said}): the verdict takes class "
        f"{order[0].target}, named by the most methods at its tier"
    )


def _localize(best: AuditResult, parts, evidence: str) -> tuple[AuditResult, str]:
    """When a whole-image method decides, the mask search's trigger for the same class, if
    that class leads the mask search too and its (grown) trigger works on >= 90% of held-out
    digits: the more specific finding, reported in its place (the verdict stays)."""
    local = next((p for p in parts if p.method == "cleanse"), None)
    c = best.target
    if best.method != "global" or best.norm != "mask" or local is None or c is None:
        return best, evidence
    if local.most_anomalous != c or float(local.success[c]) < LEAD_SUCCESS:
        return best, evidence
    note = (f"; the trigger shown is the mask search's for class {c}: {local.shapes[c]}, "
            f"works on {float(local.success[c]):.0%}")  # fmt: skip
    return _shown(best, local, c), evidence + note


def _shown(best: AuditResult, other: AuditResult, c: int) -> AuditResult:
    """``best`` with class ``c``'s trigger (mask, pattern, success, box, shape) taken from
    ``other``; the verdict and the evidence stay."""
    masks, patterns, success = best.masks.clone(), best.patterns.clone(), best.success.clone()
    masks[c], patterns[c], success[c] = other.masks[c], other.patterns[c], other.success[c]
    boxes, shapes = list(best.boxes), list(best.shapes)
    boxes[c], shapes[c] = other.boxes[c], other.shapes[c]
    return dataclasses.replace(best, masks=masks, patterns=patterns, success=success,
                               boxes=tuple(boxes), shapes=tuple(shapes))  # fmt: skip


def _fewest_pixels(best: AuditResult, parts, evidence: str) -> tuple[AuditResult, str]:
    """When the mask search and the weight comparison both point at the class shown, each
    with a trigger that works on >= 90% of held-out digits, the trigger with the fewest
    pixels is shown (the verdict stays): the smallest mask that works, as each method keeps
    within itself. An MLP's mask search often grows a compact trigger's pieces into a patch
    (a tee came back as "a 5x7 patch"), where the compared pixels are the tee's own."""
    c = best.target
    if c is None or best.norm != "mask":
        return best, evidence

    def pixels(mask: torch.Tensor) -> int:
        return int((mask >= 0.5 * float(mask.max())).sum()) if float(mask.max()) > 0 else 0

    offers = [
        p for p in parts
        if p.method in ("cleanse", "compare") and p.norm == "mask" and p.most_anomalous == c
        and float(p.success[c]) >= LEAD_SUCCESS and pixels(p.masks[c]) > 0
    ]  # fmt: skip
    if not offers:
        return best, evidence
    fewest = min(offers, key=lambda p: pixels(p.masks[c]))
    if fewest.method == best.method or pixels(fewest.masks[c]) >= pixels(best.masks[c]):
        return best, evidence
    note = (f"; the trigger shown is the {fewest.method} method's for class {c}: "
            f"{fewest.shapes[c]}, works on {float(fewest.success[c]):.0%} with the fewest "
            "pixels")  # fmt: skip
    return _shown(best, fewest, c), evidence + note


CLEANSE_FIELDS = (
    "mad_index",
    "mask_l1",
    "raw_masks",
    "raw_success",
    "raw_anomaly",
    "square_anomaly",
    "square_success",
)


@renamed_arguments(batch="batch_size", steps="n_steps")
def audit(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    method: str = "all",
    budget: int | str | None = "auto",
    references: Sequence[ModelHandle] = (),
    n_steps: int | None = None,
    norm: str = "blend",
    n_classes: int | None = None,
    batch_size: int = 32,
    n_eval: int = 100,
    seed: int = 0,
) -> AuditResult:
    """Search ``model`` for a trigger using clean held-out ``inputs [n, C, H, W]``.

    Args:
        method: ``"all"``, ``"cleanse"``, ``"source"``, ``"global"``, ``"stamp"``,
            ``"weights"`` or ``"compare"`` (see the module docstring).
        budget: forward passes (model calls) the audit may spend, split across methods and
            classes and spent; ``"auto"``: ``DEFAULT_BUDGETS`` (16,000 for a linear first
            layer, 6,000 for a convolution); None for no limit (then ``n_steps`` or 1,000
            steps per class).
        references: other models of the same architecture, for ``"compare"`` (and
            ``"all"``, which then compares too).
        n_steps: optimisation steps per class (default: as many as the budget buys for the
            mask search, ``GLOBAL_STEPS`` for the global one, ``SOURCE_STEPS`` per source
            class for the per-source one).
        norm: the global trigger's budget, ``"blend"`` or ``"linf"``.
        n_classes: output classes (default: the model's outputs).
        batch_size: images per optimisation step.
        n_eval: held-out images per class to measure a trigger's success.
        seed: picks the images.

    >>> from explorer.studies.auditing import make_mlp
    >>> import explorer
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> r = audit(m, torch.rand(64, 1, 28, 28), method="stamp", budget=2000)
    >>> r.forward_passes <= 2000, r.verdict in TIERS
    (True, True)
    """
    check_choice("method", method, METHODS)
    check_choice("norm", norm, tuple(search.GLOBAL_BUDGETS))
    linear = _linear_first(model)
    if budget == "auto":
        budget = DEFAULT_BUDGETS["linear" if linear else "conv"]
    if budget is not None:
        if isinstance(budget, str):
            raise ValueError(f"budget must be a number of passes, 'auto' or None, got {budget!r}")
        check_positive("budget", budget)
    if n_steps is not None:
        check_positive("n_steps", n_steps)
    check_positive("batch_size", batch_size)
    references = list(references)
    if method == "compare" and not references:
        raise ValueError(
            "method='compare' needs references=[other models of the same architecture]"
        )
    if method in ("weights", "compare") and not linear:
        first_layer_pixel_norms(model)  # raises "not applicable ...", before any pass
    inputs = check_tensor("inputs", model.check_images(inputs), ndim=4, integer=False)
    if len(inputs) < 16:
        raise ValueError(f"audit needs at least 16 held-out images, got {len(inputs)}")
    start = time.process_time()
    meter = Meter(budget, model)
    with torch.no_grad():
        base = model(inputs).argmax(-1)
    n_classes = n_classes or model.n_outputs or int(base.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(inputs), generator=gen)
    inputs, base = inputs[order], base[order]
    half = len(inputs) // 2
    split = (inputs[:half], base[:half], inputs[half:], base[half:])
    ctx = (budget, meter, start)
    args = (model, split, n_classes, batch_size, n_eval, meter)
    region_cost = n_classes * (REFIT_STEPS + 1)
    # the global search stops at GLOBAL_STEPS per class (unless n_steps says otherwise):
    # longer searches make clean classes attackable too; the cleanse search buys the rest
    global_cost = n_classes * ((n_steps or GLOBAL_STEPS) + 1)
    # each mask search also grows its leading class's mask (GROW_PASSES)
    cleanse_cost = n_classes * ((n_steps or 1000) + 2 * REFIT_STEPS + 2) + GROW_PASSES
    source_cost = n_classes * ((n_steps or SOURCE_STEPS) + 1) + GROW_PASSES
    if method == "stamp":
        masks, patterns, anomaly = search.stamp_scan(
            model, split[0], split[1], n_classes, meter, max(0, meter.left - n_classes)
        )
        success, _ = _evaluate(model, split[2], split[3], masks, patterns, n_eval, meter)
        flagged, suspicious, why = tiers(anomaly, success, 1e-6, lead=None)
        return _result(model, "stamp", ctx, masks, patterns, anomaly, success, 0.0,
                       flagged, suspicious, why)  # fmt: skip
    parts = []
    keep_source = 0
    if method == "weights" or (method == "all" and linear):
        parts.append(_weights(*args, min(meter.left, region_cost), ctx))
    if method == "compare" or (method == "all" and references and linear):
        compare_cost = region_cost + FILL_PASSES + SOURCE_PASSES + n_classes
        parts.append(_compare(*args, min(meter.left, compare_cost), ctx, references))
    if method in ("cleanse", "all"):
        # a small budget keeps most of itself for the mask search
        keep_source = min(source_cost, int(0.2 * meter.left)) if method == "all" else 0
        reserve = min(global_cost, int(0.3 * meter.left)) if method == "all" else 0
        passes = meter.left - reserve - keep_source if budget is not None else cleanse_cost
        parts.append(_cleanse(*args, max(passes, 2 * n_classes), n_steps, ctx))
    if method in ("global", "all"):
        passes = min(meter.left - keep_source, global_cost) if method == "all" else global_cost
        parts.append(_global(*args, min(meter.left, passes), n_steps, ctx, norm))
    if method in ("source", "all"):
        passes = meter.left if method == "source" and budget is not None else source_cost
        parts.append(_source(*args, min(meter.left, passes), n_steps, ctx))
    if method != "all":
        return parts[0]
    return _combine(model, parts, budget, meter, start)
