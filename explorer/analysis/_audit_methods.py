"""Each audit method run and judged: a search from ``_audit_search`` under a share of the
budget, its triggers tested on held-out digits, and its per-class scores turned into a tier
with evidence (``_audit_verdicts``), as one ``AuditResult``. The methods that read the first
layer's weights are in ``_audit_weight_methods``.

>>> _evaluate.__name__
'_evaluate'
"""

from __future__ import annotations

import time

import torch

from explorer.analysis import _audit_search as search
from explorer.analysis._audit_search import REFIT_STEPS, box
from explorer.analysis._audit_verdicts import (
    GLOBAL_LEAD,
    LEAD_SUCCESS,
    MIN_MARGIN,
    RAW_MARGIN,
    SOURCE_RATIOS,
    lead_over_others,
    tiers,
)
from explorer.analysis.audit_result import AuditResult, apply_trigger
from explorer.analysis.audit_scores import margin_over_runner_up
from explorer.analysis.mask_shapes import mask_shape, thin_line
from explorer.analysis.weight_outliers import first_layer_pixel_norms

GROW_PASSES = REFIT_STEPS + 4  # the growth's 3 gradient passes, its refit and 1 evaluation


def _evaluate(model, eval_x, eval_y, masks, patterns, n_eval, meter, norm="mask"):
    """Per class: share of held-out digits (not already the class) the trigger sends to it,
    and the median logit margin over the runner-up. One pass per class."""
    n = len(masks)
    success, margin = torch.zeros(n), torch.zeros(n)
    for c in range(n):
        x = eval_x[eval_y != c][:n_eval]
        if len(x) == 0 or meter.left < 1:
            continue
        with torch.no_grad():
            logits = model(apply_trigger(x, masks[c], patterns[c], norm))
        success[c] = (logits.argmax(-1) == c).float().mean()
        margin[c] = margin_over_runner_up(logits, c).median()
    return success, margin


def _result(
    model,
    method,
    ctx,
    masks,
    patterns,
    anomaly,
    success,
    threshold,
    flagged,
    suspicious,
    why,
    **extra,
) -> AuditResult:
    budget, meter, start = ctx
    verdict = "flagged" if flagged else "suspicious" if suspicious else "clean"
    shapes = tuple(mask_shape(m).description for m in masks)
    target = (flagged or suspicious or (None,))[0]
    if target is not None:
        why = f"class {target}: {why}"
    return AuditResult(
        model=model.name, method=method, flagged=flagged, anomaly=anomaly, masks=masks,
        patterns=patterns, success=success, boxes=tuple(_box(m) for m in masks),
        forward_passes=meter.forwards, backward_passes=meter.backwards, examples=meter.examples,
        budget=budget, threshold=threshold, seconds=time.process_time() - start,
        verdict=verdict, suspicious=suspicious, evidence=f"{method}: {why}", shapes=shapes,
        **extra,
    )  # fmt: skip


def _box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """The bounding box of the mask's pixels at half its peak (a square's box is itself)."""
    return mask_shape(mask).box


def _linear_first(model) -> bool:
    """Whether the first layer is linear over the pixels (zero passes)."""
    try:
        first_layer_pixel_norms(model)
    except ValueError:
        return False
    return True


def _cleanse(model, split, n_classes, batch_size, n_eval, meter, passes, n_steps, ctx):
    fit_x, fit_y, eval_x, eval_y = split
    conv = not _linear_first(model)
    # held back: two evaluation passes per class, and the leading class's growth and refit
    # (a convolution's twice: its line completion is tried first)
    spend = max(passes - 2 * n_classes - (2 if conv else 1) * GROW_PASSES, n_classes)
    raw, raw_p, squares, square_p, size_index = search.cleanse(
        model, fit_x, fit_y, n_classes, batch_size, meter, spend, n_steps
    )
    s_sq, m_sq = _evaluate(model, eval_x, eval_y, squares, square_p, n_eval, meter)
    s_raw, m_raw = _evaluate(model, eval_x, eval_y, raw, raw_p, n_eval, meter)
    l1 = raw.flatten(1).sum(1)
    side_sq = torch.tensor([max(1, b[2] * b[3]) ** 0.5 for b in map(box, raw)])
    # a square scores its margin per pixel of its side; a raw mask (any shape) its margin per
    # unit of mask mass, in the square's units (RAW_MARGIN per unit of mass = MIN_MARGIN)
    a_sq, a_raw = m_sq / side_sq, m_raw / l1.clamp_min(1) * (MIN_MARGIN / RAW_MARGIN)
    use_raw = a_raw > a_sq
    anomaly = torch.where(use_raw, a_raw, a_sq)
    success = torch.where(use_raw, s_raw, s_sq)
    masks = torch.where(use_raw[:, None, None], raw, squares)
    patterns = torch.where(use_raw[:, None, None, None], raw_p, square_p)
    flagged, suspicious, why = tiers(anomaly, success, MIN_MARGIN)
    c = (flagged or suspicious or (int(anomaly.argmax()),))[0]
    # in a convolution the gradient that grows a mask spreads over the receptive field; a raw
    # mask in scattered pieces along a line is completed to that line instead (kept when it
    # works as well as the mask found)
    line = thin_line(raw[c]) if conv else None
    grown = (masks, patterns, success)
    if line is not None:
        at_c = patterns.clone()
        at_c[c] = raw_p[c]
        grown = _grow(model, split, masks, at_c, success, c, batch_size, n_eval, meter,
                      grown=line)  # fmt: skip
    if grown[0] is masks:  # no line, or the line works less well: grow the mask found
        grown = _grow(model, split, masks, patterns, success, c, batch_size, n_eval, meter)
    masks, patterns, success = grown
    c = (flagged or suspicious or (None,))[0]
    if c is not None:
        kind = "raw mask" if use_raw[c] else "square"
        why = (f"{mask_shape(masks[c]).description} ({kind}, L1 {float(masks[c].sum()):.1f}), "
               f"works on {float(success[c]):.0%}, {why}; MAD index {float(size_index[c]):.1f}")  # fmt: skip
    return _result(
        model, "cleanse", ctx, masks, patterns, anomaly, success, MIN_MARGIN, flagged,
        suspicious, why, mad_index=size_index, mask_l1=l1, raw_masks=raw,
        raw_success=s_raw,
        raw_anomaly=a_raw,
        square_anomaly=a_sq,
        square_success=s_sq,
    )  # fmt: skip


def _grow(
    model,
    split,
    masks,
    patterns,
    success,
    c,
    batch_size,
    n_eval,
    meter,
    source=None,
    at=None,
    grown=None,
):
    """Class ``c``'s trigger (``masks[at]``, default ``at = c``) grown from the fewest pixels
    that work to the whole trigger (``search.complete``; or the mask ``grown`` when given),
    its pattern refitted there, kept when it works at least as well on held-out digits (of
    ``source``, when given). Returns ``(masks, patterns, success)``, the same tensors when
    the grown trigger is not kept."""
    fit_x, fit_y, eval_x, eval_y = split
    i = c if at is None else at
    if meter.left < GROW_PASSES or float(masks[i].max()) <= 0:
        return masks, patterns, success
    if grown is None:
        grown = search.complete(model, fit_x, fit_y, masks[i], patterns[i], c, meter,
                                source=source)  # fmt: skip
    new_p = _refit(model, fit_x, fit_y, grown, patterns[i], c, batch_size, meter, source)
    x = eval_x[eval_y == source] if source is not None else eval_x[eval_y != c]
    if len(x) == 0 or meter.left < 1:
        return masks, patterns, success
    with torch.no_grad():
        works = model(apply_trigger(x[:n_eval], grown, new_p, "mask")).argmax(-1) == c
    s_new = float(works.float().mean())
    if s_new < float(success[i]) - 0.02:
        return masks, patterns, success
    masks, patterns, success = masks.clone(), patterns.clone(), success.clone()
    masks[i], patterns[i], success[i] = grown, new_p, s_new
    return masks, patterns, success


def _refit(model, fit_x, fit_y, mask, init, c, batch_size, meter, source=None):
    """Class ``c``'s pattern ``[C, H, W]`` fitted inside the fixed ``mask`` from ``init``
    (``REFIT_STEPS`` passes), sending other digits (digits of ``source``, when given) to
    ``c``: the refit the grown, the filled and the one-source triggers share."""
    masks, inits = torch.zeros(c + 1, *mask.shape), torch.zeros(c + 1, *init.shape)
    masks[c], inits[c] = mask, init
    stop = meter.forwards + REFIT_STEPS
    return search.fit_patterns(model, fit_x, fit_y, masks, inits, batch_size, meter, stop,
                               classes=[c], source=source)[c]  # fmt: skip


def _global(model, split, n_classes, batch_size, n_eval, meter, passes, n_steps, ctx, norm):
    fit_x, fit_y, eval_x, eval_y = split
    masks, patterns = search.universal(
        model, fit_x, fit_y, n_classes, batch_size, meter, passes - n_classes, n_steps, norm
    )
    form = "linf" if norm == "linf" else "mask"
    success, _ = _evaluate(model, eval_x, eval_y, masks, patterns, n_eval, meter, form)
    anomaly = lead_over_others(success)
    flagged, suspicious, why = tiers(
        anomaly, success, GLOBAL_LEAD, min_success=LEAD_SUCCESS, lead=None
    )
    c = (flagged or suspicious or (None,))[0]
    if c is not None:
        others = torch.cat([success[:c], success[c + 1 :]])
        why = (f"a global {norm} pattern works on {float(success[c]):.0%} against a median "
               f"{float(others.median()):.0%} for the other classes, {why}")  # fmt: skip
    return _result(
        model, "global", ctx, masks, patterns, anomaly, success, GLOBAL_LEAD, flagged,
        suspicious, why, norm=form, min_success=LEAD_SUCCESS,
    )  # fmt: skip


def _source(model, split, n_classes, batch_size, n_eval, meter, passes, n_steps, ctx):
    """Per source class, the smallest trigger moving its digits elsewhere; the verdict on
    per-source scores, reported per target class (``sources[t]``: the source it fires on)."""
    fit_x, fit_y, eval_x, eval_y = split
    # held back: one evaluation pass per source and the leading source's growth and refit
    spend = passes - n_classes - GROW_PASSES
    masks, patterns, targets = search.source_cleanse(
        model, fit_x, fit_y, n_classes, batch_size, meter, max(spend, n_classes), n_steps
    )
    success = torch.zeros(n_classes)
    for s in range(n_classes):
        x, t = eval_x[eval_y == s][:n_eval], int(targets[s])
        if len(x) == 0 or t < 0 or meter.left < 1:
            continue
        with torch.no_grad():
            logits = model(apply_trigger(x, masks[s], patterns[s], "mask"))
        success[s] = (logits.argmax(-1) == t).float().mean()
    l1 = masks.flatten(1).sum(1)
    # how many times smaller than the typical source's mask (natural easy pairs, 3 -> 5, need
    # about the typical size; a trigger planted for one source far less)
    used = l1[targets >= 0]
    per_source = torch.where(targets >= 0, used.median() / l1.clamp_min(0.5), torch.zeros(()))
    s = int(per_source.argmax())
    if int(targets[s]) >= 0:  # the leading source's trigger grown, refitted to its target
        masks, patterns, success = _grow(model, split, masks, patterns, success,
                                         int(targets[s]), batch_size, n_eval, meter, source=s,
                                         at=s)  # fmt: skip
    ratio = SOURCE_RATIOS["linear" if _linear_first(model) else "conv"]
    hit, near, why = tiers(per_source, success, ratio, lead=None)
    # per target class: the source whose trigger scores highest for it
    anomaly, succ = torch.zeros(n_classes), torch.zeros(n_classes)
    out_m, out_p = torch.zeros_like(masks), torch.zeros_like(patterns)
    sources: list[int | None] = [None] * n_classes
    for s in torch.argsort(per_source).tolist():  # the best source last, so it stays
        t = int(targets[s])
        if t >= 0:
            anomaly[t], succ[t], out_m[t], out_p[t] = (
                per_source[s],
                success[s],
                masks[s],
                patterns[s],
            )
            sources[t] = s
    flagged = tuple(int(targets[s]) for s in hit)
    suspicious = tuple(int(targets[s]) for s in near)
    if hit or near:
        s = (hit or near)[0]
        why = (f"from class {s} digits only: {mask_shape(masks[s]).description} (L1 "
               f"{float(l1[s]):.1f}, {float(per_source[s]):.1f}x smaller than the median "
               f"source's) sends {float(success[s]):.0%} of them to {int(targets[s])}")  # fmt: skip
    else:
        why = why.replace("top class", "top source class").replace("anomaly", "size ratio")
    return _result(
        model, "source", ctx, out_m, out_p, anomaly, succ, ratio, flagged, suspicious,
        why, sources=tuple(sources),
    )  # fmt: skip
