"""The searches behind ``audit``: Neural Cleanse's mask fit (raw and squared), the universal
(global) perturbation, the stamp scan and the first-layer weight search, each spending at
most the passes it is handed (``passes``) from the audit's ``Meter`` (``backdoor_audit``).

>>> stamp_patterns(2)[0].shape
torch.Size([2, 2])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from explorer.analysis.audit_scores import mad_index, margin_over_runner_up, weight_anomaly
from explorer.analysis.mask_shapes import connected_components, fill_sparse_patches

REFIT_STEPS = 30
WORKS = 0.97  # a mask "works" when it sends this share of a batch to the class
GLOBAL_BUDGETS = {"blend": 0.1, "linf": 0.1}  # the global trigger's opacity / L-inf radius


class Adam:
    """Adam (torch's default update, no weight decay) on a few tensors, stepped by
    ``step(loss)``, which takes the gradients of ``loss`` for these tensors only
    (``torch.autograd.grad``): the model's weight gradients are never computed, and
    ``torch.optim``'s per-step overhead is skipped (the audit takes thousands of small steps;
    scripts/calibrate_audit.py and docs/auditing.md have the profile).

    >>> x = torch.tensor([2.0], requires_grad=True); opt = Adam([x], lr=0.5)
    >>> for _ in range(50): opt.step((x**2).sum())
    >>> abs(float(x.detach())) < 0.1
    True
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params)
        b1, b2 = self.betas
        self.t += 1
        size = self.lr / (1 - b1**self.t)
        root = math.sqrt(1 - b2**self.t)
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, (v.sqrt() / root).add_(self.eps), value=-size)


def box(
    mask: torch.Tensor, sizes: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
) -> tuple[int, int, int, int]:
    """The smallest square window holding >= 70% of what the largest window can hold of the
    mask, as ``(top, left, height, width)``."""
    if float(mask.max()) <= 0:
        return (0, 0, 0, 0)
    found = []
    for s in sizes:
        sums = F.avg_pool2d(mask[None, None], s, stride=1)[0, 0] * s * s
        i = int(sums.argmax())
        found.append((float(sums.max()), s, divmod(i, sums.shape[1])))
    top_mass = found[-1][0]
    mass, s, (top, left) = next(f for f in found if f[0] >= 0.7 * top_mass)
    return (top, left, s, s)


def steps_for(passes: int, n_classes: int, n_steps: int | None, fixed: int = 0) -> int:
    """Optimisation steps per class that ``passes`` buy after ``fixed`` per-class passes
    (``n_steps`` caps them when given)."""
    steps = max(1, passes // n_classes - fixed)
    return steps if n_steps is None else max(1, min(n_steps, steps))


def cleanse(model, fit_x, fit_y, n_classes, batch_size, meter, passes, n_steps=None, lam=1e-2):
    """Per class, the smallest mask and pattern sending other digits to it (Neural Cleanse),
    the mask's weight ``lam`` raised while the trigger works and lowered while it does not;
    keeps the smallest mask that worked on a whole batch (>= 90%).

    Returns ``(raw masks, raw patterns, squares, square patterns, MAD index of the raw
    masks' L1 sizes)``: the raw mask as found (any shape), and its densest square with the
    pattern refitted there (a compact trigger's best summary). Both patterns are refitted
    inside their masks for ``REFIT_STEPS``.
    """
    c_, h, w = fit_x.shape[1:]
    stop = meter.forwards + passes
    steps = steps_for(passes, n_classes, n_steps, fixed=2 * REFIT_STEPS)
    refit_reserve = 2 * REFIT_STEPS * n_classes
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    gen = torch.Generator().manual_seed(0)
    for c in range(n_classes):
        pool = fit_x[fit_y != c]
        if len(pool) == 0:  # every digit is already this class: nothing to move
            continue
        m_raw = torch.full((1, h, w), -4.0, requires_grad=True)
        p_raw = torch.zeros((c_, h, w), requires_grad=True)
        opt = Adam([m_raw, p_raw], lr=0.1)
        target = torch.full((batch_size,), c)
        weight, best = lam, float("inf")
        for step in range(steps):
            if stop - meter.forwards - refit_reserve < 1 or meter.left < 1:
                break
            x = pool[torch.randint(len(pool), (batch_size,), generator=gen)]
            m, p = torch.sigmoid(m_raw), torch.sigmoid(p_raw)
            out = model((1 - m) * x + m * p)
            loss = F.cross_entropy(out, target) + weight * m.sum()
            opt.step(loss)
            works = float((out.argmax(-1) == c).float().mean()) >= WORKS
            size = float(m.detach().sum())
            if works and size < best:
                best = size
                masks[c], patterns[c] = m.detach()[0], p.detach()
            if step % 5 == 4:
                weight = weight * 1.5 if works else weight / 1.5
        if best == float("inf"):  # never worked: keep the last attempt
            masks[c], patterns[c] = torch.sigmoid(m_raw.detach())[0], torch.sigmoid(p_raw.detach())
    size_index = mad_index(masks.flatten(1).sum(1))
    # a planted trigger is often compact: cut the mask to its densest square and refit the
    # pattern there; natural (adversarial) masks are scattered and stop working when cut
    squares = torch.zeros(n_classes, h, w)
    for c in range(n_classes):
        top, left, bh, bw = box(masks[c])
        squares[c, top : top + bh, left : left + bw] = 1
    square_patterns = fit_patterns(model, fit_x, fit_y, squares, patterns, batch_size, meter, stop)
    raw_patterns = fit_patterns(model, fit_x, fit_y, masks, patterns, batch_size, meter, stop)
    return masks, raw_patterns, squares, square_patterns, size_index


def source_cleanse(
    model, fit_x, fit_y, n_classes, batch_size, meter, passes, n_steps=None, lam=1e-2
):
    """Per source class ``s``, the smallest mask and pattern sending digits *of s* to any
    other class (Neural Cleanse untargeted, on one class's digits): a trigger planted for one
    source class moves only that class's digits, so the per-target search over every digit
    misses it. Keeps the smallest mask that moved a whole batch (>= ``WORKS``).

    Returns ``(masks [S, H, W], patterns [S, C, H, W], targets [S])``: ``targets[s]`` is the
    class most of the stamped digits of ``s`` go to (-1 where ``s`` has no digits)."""
    c_, h, w = fit_x.shape[1:]
    stop = meter.forwards + passes
    steps = steps_for(passes, n_classes, n_steps)
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    targets = torch.full((n_classes,), -1)
    gen = torch.Generator().manual_seed(3)
    for s in range(n_classes):
        pool = fit_x[fit_y == s]
        if len(pool) == 0:
            continue
        m_raw = torch.full((1, h, w), -4.0, requires_grad=True)
        p_raw = torch.zeros((c_, h, w), requires_grad=True)
        opt = Adam([m_raw, p_raw], lr=0.1)
        weight, best, moved, pred = lam, float("inf"), None, None
        for step in range(steps):
            if meter.forwards >= stop or meter.left < 1:
                break
            x = pool[torch.randint(len(pool), (batch_size,), generator=gen)]
            m, p = torch.sigmoid(m_raw), torch.sigmoid(p_raw)
            out = model((1 - m) * x + m * p)
            others = torch.cat([out[:, :s], out[:, s + 1 :]], 1)
            # -log(1 - p_s): away from the source, to whichever class is easiest
            away = (torch.logsumexp(out, 1) - torch.logsumexp(others, 1)).mean()
            opt.step(away + weight * m.sum())
            pred = out.argmax(-1)
            works = float((pred != s).float().mean()) >= WORKS
            size = float(m.detach().sum())
            if works and size < best:
                best, moved = size, pred
                masks[s], patterns[s] = m.detach()[0], p.detach()
            if step % 5 == 4:
                weight = weight * 1.5 if works else weight / 1.5
        if pred is None:  # no pass left for this class
            continue
        if moved is None:  # never worked: keep the last attempt
            masks[s], patterns[s] = torch.sigmoid(m_raw.detach())[0], torch.sigmoid(p_raw.detach())
            moved = pred
        away = moved[moved != s]
        targets[s] = int(torch.bincount(away, minlength=n_classes).argmax()) if len(away) else -1
    return masks, patterns, targets


def fit_patterns(
    model,
    fit_x,
    fit_y,
    masks,
    init,
    batch_size,
    meter,
    stop,
    steps=REFIT_STEPS,
    classes=None,
    source=None,
):
    """Per class (of ``classes``, default all), the pattern inside the fixed ``masks[c]``
    sending other digits (digits of ``source``, when given) to ``c``, spending passes only
    while the meter is under ``stop``."""
    gen = torch.Generator().manual_seed(1)
    patterns = torch.zeros_like(init)
    for c in range(len(masks)) if classes is None else classes:
        pool = fit_x[fit_y != c] if source is None else fit_x[fit_y == source]
        if len(pool) == 0:  # every digit is already this class: nothing to move
            continue
        m = masks[c]
        p_raw = torch.logit(init[c].clamp(0.05, 0.95)).requires_grad_(True)
        opt = Adam([p_raw], lr=0.2)
        for _ in range(steps):
            if meter.forwards >= stop or meter.left < 1:
                break
            x = pool[torch.randint(len(pool), (batch_size,), generator=gen)]
            out = model((1 - m) * x + m * torch.sigmoid(p_raw))
            loss = F.cross_entropy(out, torch.full((batch_size,), c))
            opt.step(loss)
        patterns[c] = torch.sigmoid(p_raw.detach()) * (m > 0)
    return patterns


def complete(
    model,
    fit_x,
    fit_y,
    mask,
    pattern,
    c,
    meter,
    *,
    source=None,
    rounds=3,
    radius=2,
    share=0.5,
    n=64,
):
    """Grow a minimal mask (``mask [H, W]``, class ``c``'s) into the trigger it is part of.

    Neural Cleanse keeps the fewest pixels that still work: a piece of a line, 2 of 4 dots,
    the white squares of a checkerboard. Each round stamps the found pixels on ``n`` digits
    (of ``source`` only, when given), takes the gradient of class ``c``'s logit margin over
    the runner-up (one forward and one backward pass), and adds the pixels within ``radius``
    of the found ones whose best change (to white or to black) gains at least ``share`` of
    the found pixels' median gradient: the rest of the trigger the model learned. Sparse
    compact pieces (a checkerboard) are then filled to their box (``fill_sparse_patches``).
    Returns the grown mask, 0/1 ``[H, W]``.
    """
    on, weak, ref = mask >= 0.5 * mask.max(), mask >= 0.1 * mask.max(), None
    seeds = weak.clone()
    if not bool(on.any()):
        return on.float()
    pool = fit_x[fit_y == source] if source is not None else fit_x[fit_y != c]
    pool = pool[:n]
    for _ in range(rounds):
        if len(pool) == 0 or meter.left < 1:
            break
        m = on.float()
        z = ((1 - m) * pool + m * pattern).detach().requires_grad_(True)
        out = model(z)
        (g,) = torch.autograd.grad(margin_over_runner_up(out, c).sum(), z)
        g = g.mean(0).amax(0) if g.shape[1] == 1 else g.mean(0).abs().amax(0)
        zm = z.detach().mean(0).amax(0)
        gain = torch.maximum(g * (1 - zm), -g * zm)
        ref = float(g.abs()[on].median()) if ref is None else ref
        near = F.max_pool2d(m[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0
        add = (near | weak) & ~on & (gain >= share * ref)
        if ref <= 0 or not bool(add.any()):
            break
        on = on | add
    return fill_sparse_patches(_holding(on, seeds)).float()


def _holding(on: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """The 8-connected components of ``on`` that hold a pixel of ``seeds``: growth that
    chained away from every found pixel is not part of the trigger found."""
    out = torch.zeros_like(on)
    for comp in connected_components(on):
        rows, cols = zip(*comp)
        if bool(seeds[list(rows), list(cols)].any()):
            out[list(rows), list(cols)] = True
    return out


def universal(
    model, fit_x, fit_y, n_classes, batch_size, meter, passes, n_steps=None, norm="blend"
):
    """Per class, one perturbation of the whole image that sends other digits to it under
    a fixed budget (a universal adversarial perturbation, Moosavi-Dezfooli et al. 2017):
    ``norm="blend"`` blends a pattern in at opacity ``GLOBAL_BUDGETS["blend"]``;
    ``"linf"`` adds a perturbation of at most ``GLOBAL_BUDGETS["linf"]`` per pixel.

    Returns ``(masks, patterns)`` in the form ``(1 - m) x + m p`` for the blend; for L-inf
    the mask is all ones and the pattern holds the perturbation (``stamp`` of the result
    adds it: see ``audit_result.apply_trigger``).
    """
    c_, h, w = fit_x.shape[1:]
    size = GLOBAL_BUDGETS[norm]
    stop = meter.forwards + passes
    steps = steps_for(passes, n_classes, n_steps)
    gen = torch.Generator().manual_seed(2)
    masks = torch.full((n_classes, h, w), size if norm == "blend" else 1.0)
    patterns = torch.zeros(n_classes, c_, h, w)
    for c in range(n_classes):
        pool = fit_x[fit_y != c]
        if len(pool) == 0:  # every digit is already this class: nothing to move
            continue
        raw = torch.zeros((c_, h, w), requires_grad=True)
        opt = Adam([raw], lr=0.1)
        target = torch.full((batch_size,), c)
        for _ in range(steps):
            if meter.forwards >= stop or meter.left < 1:
                break
            x = pool[torch.randint(len(pool), (batch_size,), generator=gen)]
            out = model(perturb(x, raw, norm))
            loss = F.cross_entropy(out, target)
            opt.step(loss)
        patterns[c] = global_pattern(raw.detach(), norm)
    return masks, patterns


def global_pattern(raw: torch.Tensor, norm: str) -> torch.Tensor:
    return torch.sigmoid(raw) if norm == "blend" else GLOBAL_BUDGETS["linf"] * torch.tanh(raw)


def perturb(x: torch.Tensor, raw: torch.Tensor, norm: str) -> torch.Tensor:
    p = global_pattern(raw, norm)
    if norm == "blend":
        a = GLOBAL_BUDGETS["blend"]
        return (1 - a) * x + a * p
    return (x + p).clamp(0, 1)


def stamp_patterns(size: int) -> list[torch.Tensor]:
    i = torch.arange(size)
    checker = ((i[:, None] + i[None, :]) % 2 == 0).float()
    return [torch.ones(size, size), torch.zeros(size, size), checker, 1 - checker]


def stamp_scan(model, fit_x, fit_y, n_classes, meter, passes, sizes=(3, 4, 5), n=8, stride=1):
    """Stamp simple patterns at each position and size on ``n`` digits; per class the stamp
    sending most digits to it."""
    c_, h, w = fit_x.shape[1:]
    x = fit_x[:n]
    best = torch.zeros(n_classes)
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    stop = meter.forwards + passes
    for size in sizes:
        for pattern in stamp_patterns(size):
            for top in range(0, h - size + 1, stride):
                for left in range(0, w - size + 1, stride):
                    if meter.forwards >= stop or meter.left < 1:
                        break
                    stamped = x.clone()
                    stamped[:, :, top : top + size, left : left + size] = pattern
                    with torch.no_grad():
                        pred = model(stamped).argmax(-1)
                    for c in pred.unique().tolist():
                        rate = float(((pred == c) & (fit_y[:n] != c)).float().mean())
                        if rate > best[c]:
                            best[c] = rate
                            masks[c].zero_()
                            masks[c, top : top + size, left : left + size] = 1
                            patterns[c].zero_()
                            patterns[c, :, top : top + size, left : left + size] = pattern
    # a stamp counts as a trigger when it moves most digits; score = success above 0.5
    return masks, patterns, (best - 0.5).clamp_min(0)


def weights_search(model, fit_x, fit_y, n_classes, batch_size, meter, passes, ratio=1.0):
    """Pixels the data never uses whose weights outgrow the layer's typical scale, then a
    short pattern fit inside that region for every class. ``weight_anomaly`` raises (before
    any pass) when the first layer is not a linear layer over the pixels."""
    c_, h, w = fit_x.shape[1:]
    score = weight_anomaly(model, fit_x)
    region = (score > ratio).float()
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    if not region.any():
        return masks, patterns, torch.zeros(n_classes)
    steps = steps_for(passes, n_classes, REFIT_STEPS)
    masks = region.expand(n_classes, h, w).clone()
    init = torch.full((n_classes, c_, h, w), 0.5)
    stop = meter.forwards + passes
    patterns = fit_patterns(model, fit_x, fit_y, masks, init, batch_size, meter, stop, steps)
    # every class shares the region: the anomaly is the region's weight score (times the
    # class's success, once measured)
    return masks, patterns, torch.full((n_classes,), float(score.max()))
