"""The audit methods that read the first layer's weights (MLPs): ``weights`` (pixels the
digits never use) and ``compare`` (each pixel against other models of the architecture,
``weight_outliers``), each with a pattern fitted in the region found and tested on held-out
digits, as one ``AuditResult`` (``_audit_methods`` has the searches by passes). A compared
region that moves few digits of any class is also tested per source class: a trigger planted
to fire on one class's digits only moves few in all (``_one_source``).

>>> FILL_PASSES, MIN_SOURCE_DIGITS
(31, 10)
"""

from __future__ import annotations

import torch

from explorer.analysis import _audit_search as search
from explorer.analysis._audit_methods import _evaluate, _refit, _result
from explorer.analysis._audit_search import REFIT_STEPS
from explorer.analysis._audit_verdicts import LEAD_SUCCESS, NEAR_SUCCESS, tiers
from explorer.analysis.audit_result import apply_trigger
from explorer.analysis.audit_scores import weight_anomaly
from explorer.analysis.mask_shapes import fill_sparse_patches, linked, mask_shape
from explorer.analysis.weight_outliers import Z_THRESHOLD, weight_outliers

FILL_PASSES = REFIT_STEPS + 1  # the compared region filled: its refit and 1 evaluation
LINKED_Z = 4.0  # the compared region's weak pixels: linked to a strong one (docs/auditing.md)
MIN_SOURCE_DIGITS = 10  # held-out digits of a source class needed to state its share
ONE_SOURCE_REST = 0.25  # a one-source trigger's median share of the other sources' digits
ONE_SOURCE_PAIRS = 3  # (source, class) pairs refitted on their source, most moved first
SOURCE_PASSES = ONE_SOURCE_PAIRS * (REFIT_STEPS + 1)  # their refits (and 1 pass a class)


def _region_fit(model, split, n_classes, batch_size, n_eval, meter, passes, region):
    """Fit a pattern per class inside one region; per class its success on held-out digits."""
    fit_x, fit_y, eval_x, eval_y = split
    c_, h, w = fit_x.shape[1:]
    masks = region.expand(n_classes, h, w).clone()
    init = torch.full((n_classes, c_, h, w), 0.5)
    stop = meter.forwards + passes - n_classes
    steps = search.steps_for(passes - n_classes, n_classes, REFIT_STEPS)
    patterns = search.fit_patterns(model, fit_x, fit_y, masks, init, batch_size, meter, stop, steps)
    success, _ = _evaluate(model, eval_x, eval_y, masks, patterns, n_eval, meter)
    return masks, patterns, success


def _weights(model, split, n_classes, batch_size, n_eval, meter, passes, ctx):
    score = weight_anomaly(model, split[0])
    region = (score > 1.0).float()
    if not region.any():
        z = torch.zeros(n_classes)
        empty = torch.zeros(n_classes, *split[0].shape[2:])
        pats = torch.zeros(n_classes, *split[0].shape[1:])
        why = (
            f"no unused pixel's weights outgrow the used ones' (max ratio {float(score.max()):.2f})"
        )
        return _result(model, "weights", ctx, empty, pats, z, z, 0.0, (), (), why)
    masks, patterns, success = _region_fit(
        model, split, n_classes, batch_size, n_eval, meter, passes, region
    )
    anomaly = float(score.max()) * success
    flagged, suspicious, why = tiers(anomaly, success, 1e-6, lead=None)
    why = f"unused pixels ({mask_shape(region).description}) with weights {float(score.max()):.1f}x the used ones', {why}"
    return _result(
        model,
        "weights",
        ctx,
        masks,
        patterns,
        anomaly,
        success,
        0.0,
        flagged,
        suspicious,
        why,
    )


def _compare(model, split, n_classes, batch_size, n_eval, meter, passes, ctx, references):
    found = weight_outliers(model, references=references)
    # the pixels at or above 0.9 x the threshold, with every pixel linked to them through
    # pixels at or above LINKED_Z (hysteresis, as an edge detector keeps the weak parts of a
    # strong edge): a plus stands out strongly at its centre and less on its arms, a diamond
    # spread over 12 pixels at z 4-9. The clean models' pixels stay under 0.9 x the threshold
    # (docs/auditing.md), so no clean verdict moves.
    near = linked(found.z, 0.9 * Z_THRESHOLD, LINKED_Z).float()
    top = float(found.z.max())
    if not near.any():
        z = torch.zeros(n_classes)
        empty = torch.zeros(n_classes, *split[0].shape[2:])
        pats = torch.zeros(n_classes, *split[0].shape[1:])
        why = f"no pixel's first-layer weights stand out against {len(references)} models (max z {top:.1f} < {Z_THRESHOLD:g})"
        return _result(
            model,
            "compare",
            ctx,
            empty,
            pats,
            z,
            z,
            Z_THRESHOLD * LEAD_SUCCESS,
            (),
            (),
            why,
            weight_z=found.z,
            min_success=LEAD_SUCCESS,
        )
    masks, patterns, success = _region_fit(
        model,
        split,
        n_classes,
        batch_size,
        n_eval,
        meter,
        max(passes - FILL_PASSES - SOURCE_PASSES - n_classes, 2 * n_classes),
        near,
    )
    masks, patterns, success = _fill_if_better(
        model, split, masks, patterns, success, batch_size, n_eval, meter
    )
    patterns, success, sources = _one_source(model, split, masks, patterns, success, batch_size,
                                             meter)  # fmt: skip
    anomaly = top * success
    flagged, suspicious, why = tiers(
        anomaly, success, Z_THRESHOLD * LEAD_SUCCESS, min_success=LEAD_SUCCESS, lead=None
    )
    c = int(anomaly.argmax())
    shape = mask_shape(masks[c])
    where = f"{shape.description} at {shape.box[:2]} in the first-layer weights (max z {top:.1f})"
    if sources[c] is not None:
        where += (
            f", from class {sources[c]} digits only: sends {float(success[c]):.0%} of them to {c}"
        )
    why = f"{where}, {why}"
    return _result(
        model,
        "compare",
        ctx,
        masks,
        patterns,
        anomaly,
        success,
        Z_THRESHOLD * LEAD_SUCCESS,
        flagged,
        suspicious,
        why,
        weight_z=found.z,
        sources=sources if any(v is not None for v in sources) else (),
        min_success=LEAD_SUCCESS,
    )


def _one_source(model, split, masks, patterns, success, batch_size, meter):
    """``(patterns, success, sources)``: when the region's trigger moves fewer than
    ``NEAR_SUCCESS`` of held-out digits for every class, the ``ONE_SOURCE_PAIRS`` (source,
    class) pairs whose digits it moves most (sources with at least ``MIN_SOURCE_DIGITS``
    held-out digits), each pattern refitted on its source's digits alone
    (``_refit_on_source``), and the one whose source's share most exceeds the others' kept:
    then ``success[c]`` is that share and ``sources[c]`` the source (None elsewhere). A
    trigger planted to fire on one class's digits only (``studies.auditing``'s
    ``conditional``) stands out in the weights as any other and moves few digits in all;
    a natural pair (8s to 5) that a clean model's region moves with half the other digits
    too is not one, and of a planted pair (5s to 3) and a natural one in the same region
    (3s to 5), the planted one leaves the others alone more. One pass per class and
    ``SOURCE_PASSES``. A region that works on all digits for some class is left as it is."""
    _, _, eval_x, eval_y = split
    sources: list[int | None] = [None] * len(masks)
    if float(success.max()) >= NEAR_SUCCESS:
        return patterns, success, tuple(sources)
    pairs = []
    for c in range(len(masks)):
        if meter.left < 1 or float(masks[c].max()) == 0:
            continue
        shares = _shares(model, eval_x, eval_y, masks[c], patterns[c], c)
        pairs += [(share, c, s) for s, share in shares.items() if share >= NEAR_SUCCESS]
    best = None
    for _, c, s in sorted(pairs, reverse=True)[:ONE_SOURCE_PAIRS]:
        if meter.left <= REFIT_STEPS:
            break
        found = _refit_on_source(model, split, masks, patterns, c, s, batch_size, meter)
        if found is not None and (best is None or found[0] > best[0]):
            best = (*found, c, s)
    if best is None:
        return patterns, success, tuple(sources)
    _, own, pattern, c, s = best
    patterns, success = patterns.clone(), success.clone()
    patterns[c], success[c], sources[c] = pattern, own, s
    return patterns, success, tuple(sources)


def _refit_on_source(model, split, masks, patterns, c, source, batch_size, meter):
    """Class ``c``'s pattern refitted on ``source`` digits alone: ``(own share minus the
    other sources' median share, own share, pattern)`` when it moves at least
    ``NEAR_SUCCESS`` of the source's held-out digits and the others' median share is at
    most ``ONE_SOURCE_REST``, else None."""
    fit_x, fit_y, eval_x, eval_y = split
    new = _refit(model, fit_x, fit_y, masks[c], torch.full_like(patterns[c], 0.5), c,
                 batch_size, meter, source)  # fmt: skip
    shares = _shares(model, eval_x, eval_y, masks[c], new, c)
    own = shares.pop(source, 0.0)
    rest = float(torch.tensor(list(shares.values())).quantile(0.5)) if shares else 0.0
    if own < NEAR_SUCCESS or rest > ONE_SOURCE_REST:
        return None
    return own - rest, own, new


def _shares(model, eval_x, eval_y, mask, pattern, c) -> dict[int, float]:
    """Per source class with at least ``MIN_SOURCE_DIGITS`` held-out digits (not ``c``): the
    share of them the trigger sends to ``c``. One pass."""
    others = eval_y != c
    if not others.any():
        return {}
    with torch.no_grad():
        hit = model(apply_trigger(eval_x[others], mask, pattern, "mask")).argmax(-1) == c
    labels = eval_y[others]
    return {
        int(s): float(hit[labels == s].float().mean())
        for s in labels.unique().tolist()
        if int((labels == s).sum()) >= MIN_SOURCE_DIGITS
    }


def _fill_if_better(model, split, masks, patterns, success, batch_size, n_eval, meter):
    """The leading class's region with each sparse compact piece filled to its box
    (``fill_sparse_patches``), its pattern refitted there, kept only when the region as
    found works on fewer than ``LEAD_SUCCESS`` of held-out digits and the box on more: the
    fewest pixels that work, as the mask search keeps. A stamp's pixels that stand out are
    its white ones (its black ones, on the digits' black background, leave the weights
    alone), and a checkerboard's white cells alone may not reproduce it; a plus, an X or a
    tee that works as found keeps its shape."""
    fit_x, fit_y, eval_x, eval_y = split
    c = int(success.argmax())
    filled = fill_sparse_patches(masks[c] > 0).float()
    if float(success[c]) >= LEAD_SUCCESS or torch.equal(filled, masks[c]):
        return masks, patterns, success
    if meter.left < FILL_PASSES:
        return masks, patterns, success
    new_p = _refit(model, fit_x, fit_y, filled, torch.full_like(patterns[c], 0.5), c,
                   batch_size, meter)  # fmt: skip
    x = eval_x[eval_y != c][:n_eval]
    with torch.no_grad():
        works = model(apply_trigger(x, filled, new_p, "mask")).argmax(-1) == c
    s_new = float(works.float().mean())
    if s_new <= float(success[c]):
        return masks, patterns, success
    masks, patterns, success = masks.clone(), patterns.clone(), success.clone()
    masks[c], patterns[c], success[c] = filled, new_p, s_new
    return masks, patterns, success
