"""Audit an image classifier for a planted trigger (backdoor), within a budget of passes.

``audit(model, images, method=...)`` returns one frozen ``AuditResult`` per model: the flagged
target classes with an anomaly score, the reconstructed trigger (mask and pattern), its
location and size, its attack success rate on held-out images, and the forward and backward
passes spent (one model call, of a batch, is one pass; the examples are counted too). Methods:

- ``"cleanse"``: per class, the smallest mask-and-pattern that sends other digits to that
  class (Neural Cleanse, Wang et al. 2019), cut to its densest square and refitted there.
  A class is flagged when that compact trigger works on >= 95% of held-out images and wins
  by a wide logit margin per pixel of its side (``MIN_MARGIN``), or when that score leads
  every other class's by ``MIN_LEAD`` (and by twice the runner-up's) and the trigger works
  on >= 90% (a CNN's planted trigger wins by less in absolute terms, but stands as far
  apart from the other classes).
- ``"stamp"``: stamp simple patterns (white, black, checkerboards) at every position and size;
  a stamp that sends most digits to one class is flagged.
- ``"weights"``: first-layer weight magnitude on input pixels the data never uses, against
  the layer's typical scale; a cluster of such pixels is the trigger's location, and a short
  pattern fit inside it finds the target class.

The search stops within ``budget`` forward passes. Written here, not wrapped from
adversarial-robustness-toolbox (see docs/auditing.md). Over 400 lines because the three
searches share the pass meter, the result and the flag rules; they are one concept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from explorer._checks import check_choice, check_positive, check_tensor
from explorer.analysis._display import clip, html_table, pandas
from explorer.models.handle import ModelHandle

METHODS = ("cleanse", "stamp", "weights")
MAD_THRESHOLD = 2.0
MIN_SUCCESS = 0.95  # a flagged class's reconstructed (compact) trigger must work this often
MIN_MARGIN = 2.6  # and lead the runner-up logit by this much per pixel of the trigger's side
REFIT_STEPS = 30
MAX_STEPS = 1000  # optimisation steps per class for the mask search
# or: one class's anomaly leads every other class's by this much (and by twice the runner-up's)
# and its trigger works this often (models with smaller logits, such as the CNN, whose
# planted trigger wins by less)
MIN_LEAD = 1.0
LEAD_SUCCESS = 0.9


class Meter:
    """The passes a handle has run since the meter started (read from ``handle.spent``), and
    how many a budget has left.

    >>> from explorer.studies.auditing import make_mlp
    >>> import explorer
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> meter = Meter(10, m); _ = m(torch.zeros(4, 1, 28, 28)); meter.left, meter.examples
    (9, 4)
    """

    def __init__(self, budget: int | None, model: ModelHandle) -> None:
        self.budget = budget
        self.spent = model.spent
        self.start = model.spent.snapshot()

    @property
    def forwards(self) -> int:
        return self.spent.forward - self.start[0]

    @property
    def backwards(self) -> int:
        return self.spent.backward - self.start[1]

    @property
    def examples(self) -> int:
        return self.spent.examples - self.start[2]

    @property
    def left(self) -> int:
        return (self.budget - self.forwards) if self.budget is not None else 1 << 62


@dataclass(frozen=True)
class AuditResult:
    """What an audit found in one model.

    Per class ``c``: ``masks[c] [H, W]`` and ``patterns[c] [C, H, W]`` (the trigger that sends
    digits to ``c``; ``stamp(images, c)`` applies it), ``anomaly[c]`` (the method's score: MAD
    index of the mask size, or stamp success), ``success[c]`` (share of held-out digits sent
    to ``c``) and ``boxes[c] = (top, left, height, width)``. ``flagged`` lists suspicious
    classes, most anomalous first; empty means the audit calls the model clean. A class is
    flagged when its anomaly reaches ``threshold`` and its success reaches ``MIN_SUCCESS``.
    """

    model: str
    method: str
    flagged: tuple[int, ...]
    anomaly: torch.Tensor
    masks: torch.Tensor
    patterns: torch.Tensor
    success: torch.Tensor
    boxes: tuple[tuple[int, int, int, int], ...]
    forward_passes: int
    backward_passes: int
    examples: int
    budget: int | None
    threshold: float = 0.0
    seconds: float = field(default=0.0, compare=False)

    @property
    def clean(self) -> bool:
        return not self.flagged

    @property
    def target(self) -> int | None:
        """The most anomalous flagged class (None when clean)."""
        return self.flagged[0] if self.flagged else None

    @property
    def most_anomalous(self) -> int:
        """The class with the highest anomaly, flagged or not (what a view shows first)."""
        return int(self.anomaly.argmax())

    @property
    def location(self) -> tuple[int, int, int, int] | None:
        """``(top, left, height, width)`` of the target's trigger (None when clean)."""
        return self.boxes[self.target] if self.target is not None else None

    def stamp(self, images: torch.Tensor, cls: int | None = None) -> torch.Tensor:
        """``images`` with class ``cls``'s reconstructed trigger (default: the target's)."""
        cls = self.target if cls is None else cls
        if cls is None:
            raise ValueError(f"{self.model} was found clean: pass the class whose trigger to stamp")
        m = self.masks[cls].to(images)
        return (1 - m) * images + m * self.patterns[cls].to(images)

    def to_dataframe(self):
        pd = pandas()

        return pd.DataFrame(
            {
                "class": range(len(self.anomaly)),
                "anomaly": self.anomaly.tolist(),
                "mask_l1": self.masks.flatten(1).sum(1).tolist(),
                "success": self.success.tolist(),
                "box": list(self.boxes),
                "flagged": [c in self.flagged for c in range(len(self.anomaly))],
            }
        ).set_index("class")

    def __repr__(self) -> str:
        verdict = (
            "clean"
            if self.clean
            else f"flagged {list(self.flagged)} (target {self.target}, box {self.location}, "
            f"success {float(self.success[self.target]):.0%})"
        )
        return clip(
            f"AuditResult({self.model}, {self.method}: {verdict}; "
            f"{self.forward_passes} forward / {self.backward_passes} backward passes)"
        )

    def _repr_html_(self) -> str:
        rows = [
            (c, float(self.anomaly[c]), float(self.success[c]), str(self.boxes[c]))
            for c in (list(self.flagged) or [int(self.anomaly.argmax())])
        ]
        note = (
            f"{'clean' if self.clean else 'flagged'}; {self.forward_passes} forward, "
            f"{self.backward_passes} backward passes (budget {self.budget})"
        )
        return html_table(
            f"audit of {self.model} ({self.method})",
            ["class", "anomaly", "success", "box (top, left, h, w)"],
            rows,
            note,
        )


def audit(
    model: ModelHandle,
    images: torch.Tensor,
    *,
    method: str = "cleanse",
    budget: int | None = 20_000,
    n_classes: int | None = None,
    batch: int = 32,
    n_eval: int = 100,
    seed: int = 0,
) -> AuditResult:
    """Search ``model`` for a trigger using clean held-out ``images [n, C, H, W]``.

    Args:
        method: ``"cleanse"``, ``"stamp"`` or ``"weights"`` (see the module docstring).
        budget: forward passes (model calls) the audit may spend; None for no limit.
        n_classes: output classes (default: the model's outputs).
        batch: images per optimisation step.
        n_eval: held-out images per class to measure a trigger's success.
        seed: picks the images.

    >>> from explorer.studies.auditing import make_mlp
    >>> import explorer
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> r = audit(m, torch.rand(64, 1, 28, 28), method="stamp", budget=2000)
    >>> r.forward_passes <= 2000
    True
    """
    import time

    check_choice("method", method, METHODS)
    if budget is not None:
        check_positive("budget", budget)
    images = check_tensor("images", model.check_images(images), ndim=4, integer=False)
    if len(images) < 16:
        raise ValueError(f"audit needs at least 16 held-out images, got {len(images)}")
    start = time.process_time()
    meter = Meter(budget, model)
    with torch.no_grad():
        base = model(images).argmax(-1)
    n_classes = n_classes or model.n_outputs or int(base.max()) + 1
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    images, base = images[order], base[order]
    half = len(images) // 2
    fit_x, fit_y, eval_x, eval_y = images[:half], base[:half], images[half:], base[half:]
    if method == "cleanse":
        masks, patterns, anomaly = _cleanse(model, fit_x, fit_y, n_classes, batch, n_eval, meter)
    elif method == "stamp":
        masks, patterns, anomaly = _stamp_scan(model, fit_x, fit_y, n_classes, meter, n_eval)
    else:
        masks, patterns, anomaly = _weights(model, fit_x, fit_y, n_classes, batch, n_eval, meter)
    success, margin = torch.zeros(n_classes), torch.zeros(n_classes)
    for c in range(n_classes):
        x = eval_x[eval_y != c][:n_eval]
        if len(x) == 0 or meter.left < 1:
            continue
        m = masks[c]
        with torch.no_grad():
            logits = model((1 - m) * x + m * patterns[c])
        success[c] = (logits.argmax(-1) == c).float().mean()
        others = torch.cat([logits[:, :c], logits[:, c + 1 :]], 1).amax(1)
        margin[c] = (logits[:, c] - others).median()
    if method == "cleanse":
        # a planted trigger is compact, works on almost every digit and wins by a wide margin
        side = torch.tensor([max(1, b[2] * b[3]) ** 0.5 for b in map(_box, masks)])
        anomaly = margin / side
        suspicious = (anomaly >= MIN_MARGIN) & (success >= MIN_SUCCESS)
        first, second = torch.topk(anomaly, 2).indices.tolist()
        lead = float(anomaly[first] - anomaly[second])
        if lead >= max(MIN_LEAD, 2 * float(anomaly[second])) and success[first] >= LEAD_SUCCESS:
            suspicious[first] = True
    else:
        anomaly = anomaly * success if method == "weights" else anomaly
        suspicious = (anomaly > 0) & (success >= MIN_SUCCESS)
    flagged = tuple(
        int(c) for c in torch.argsort(anomaly, descending=True).tolist() if suspicious[c]
    )
    return AuditResult(
        model=model.name,
        method=method,
        flagged=flagged,
        anomaly=anomaly,
        masks=masks,
        patterns=patterns,
        success=success,
        boxes=tuple(_box(masks[c]) for c in range(n_classes)),
        forward_passes=meter.forwards,
        backward_passes=meter.backwards,
        examples=meter.examples,
        budget=budget,
        threshold=MIN_MARGIN if method == "cleanse" else 0.0,
        seconds=time.process_time() - start,
    )


def mad_index(values: torch.Tensor) -> torch.Tensor:
    """How far below the median each value lies, in robust standard deviations (1.4826 x
    the median absolute deviation); 0 above the median.

    >>> mad_index(torch.tensor([10.0, 11.0, 9.0, 10.5, 2.0])).round().tolist()
    [0.0, 0.0, 1.0, 0.0, 5.0]
    """
    med = values.median()
    mad = (values - med).abs().median().clamp_min(1e-6) * 1.4826
    return ((med - values) / mad).clamp_min(0)


def _box(
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


def _cleanse(model, fit_x, fit_y, n_classes, batch, n_eval, meter, steps=None, lam=1e-2):
    """Per class, the smallest mask and pattern sending other digits to it (Neural Cleanse),
    the mask's weight ``lam`` raised while the trigger works and lowered while it does not;
    keeps the smallest mask that worked on a whole batch (>= 90%)."""
    c_, h, w = fit_x.shape[1:]
    eval_cost = n_classes
    refit_cost = n_classes * REFIT_STEPS
    if steps is None:
        steps = max(1, min(MAX_STEPS, (meter.left - eval_cost - refit_cost) // n_classes))
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    gen = torch.Generator().manual_seed(0)
    for c in range(n_classes):
        pool = fit_x[fit_y != c]
        m_raw = torch.full((1, h, w), -4.0, requires_grad=True)
        p_raw = torch.zeros((c_, h, w), requires_grad=True)
        opt = torch.optim.Adam([m_raw, p_raw], lr=0.1)
        target = torch.full((batch,), c)
        weight, best = lam, float("inf")
        for step in range(steps):
            if meter.left - eval_cost - refit_cost < 1:
                break
            x = pool[torch.randint(len(pool), (batch,), generator=gen)]
            m, p = torch.sigmoid(m_raw), torch.sigmoid(p_raw)
            out = model((1 - m) * x + m * p)
            loss = F.cross_entropy(out, target) + weight * m.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            works = float((out.argmax(-1) == c).float().mean()) >= 0.9
            size = float(m.detach().sum())
            if works and size < best:
                best = size
                masks[c], patterns[c] = m.detach()[0], p.detach()
            if step % 5 == 4:
                weight = weight * 1.5 if works else weight / 1.5
        if best == float("inf"):  # never worked: keep the last attempt
            masks[c], patterns[c] = torch.sigmoid(m_raw.detach())[0], torch.sigmoid(p_raw.detach())
    size_index = mad_index(masks.flatten(1).sum(1))
    # a planted trigger is compact: keep only the mask's densest square and refit the pattern
    # there; natural (adversarial) masks are scattered and stop working when cut down
    windows = torch.zeros(n_classes, h, w)
    for c in range(n_classes):
        top, left, bh, bw = _box(masks[c])
        windows[c, top : top + bh, left : left + bw] = 1
    patterns = _fit_patterns(model, fit_x, fit_y, windows, patterns, batch, eval_cost, meter)
    return windows, patterns, size_index


def _fit_patterns(model, fit_x, fit_y, masks, init, batch, eval_cost, meter, steps=None):
    """Per class, the pattern inside the fixed ``masks[c]`` sending other digits to ``c``."""
    steps = REFIT_STEPS if steps is None else steps
    gen = torch.Generator().manual_seed(1)
    patterns = torch.zeros_like(init)
    for c in range(len(masks)):
        pool = fit_x[fit_y != c]
        m = masks[c]
        p_raw = torch.logit(init[c].clamp(0.05, 0.95)).requires_grad_(True)
        opt = torch.optim.Adam([p_raw], lr=0.2)
        for _ in range(steps):
            if meter.left - eval_cost < 1:
                break
            x = pool[torch.randint(len(pool), (batch,), generator=gen)]
            out = model((1 - m) * x + m * torch.sigmoid(p_raw))
            loss = F.cross_entropy(out, torch.full((batch,), c))
            opt.zero_grad()
            loss.backward()
            opt.step()
        patterns[c] = torch.sigmoid(p_raw.detach()) * m
    return patterns


def _patterns(size: int) -> list[torch.Tensor]:
    i = torch.arange(size)
    checker = ((i[:, None] + i[None, :]) % 2 == 0).float()
    return [torch.ones(size, size), torch.zeros(size, size), checker, 1 - checker]


def _stamp_scan(model, fit_x, fit_y, n_classes, meter, n_eval, sizes=(3, 4, 5), n=8, stride=1):
    """Stamp simple patterns at each position and size on ``n`` digits; per class the stamp
    sending most digits to it."""
    c_, h, w = fit_x.shape[1:]
    x = fit_x[:n]
    best = torch.zeros(n_classes)
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    eval_cost = n_classes
    for size in sizes:
        for pattern in _patterns(size):
            for top in range(0, h - size + 1, stride):
                for left in range(0, w - size + 1, stride):
                    if meter.left - eval_cost < 1:
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


def weight_anomaly(model: ModelHandle, images: torch.Tensor) -> torch.Tensor:
    """``[H, W]``: each input pixel's first-layer weight norm over the median norm of pixels
    the data uses, on pixels ``images`` never use (0 elsewhere).

    >>> from explorer.studies.auditing import make_mlp
    >>> import explorer
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> weight_anomaly(m, torch.rand(8, 1, 28, 28)).shape
    torch.Size([28, 28])
    """
    images = model.check_images(images)
    first = next(p for n, p in model.named_parameters() if n.endswith("weight"))
    w = first.detach()
    h, wd = images.shape[-2:]
    if w.ndim != 2 or w.shape[1] != images[0].numel():
        raise ValueError(
            f"weight_anomaly needs a first linear layer over the flat image ({images[0].numel()} "
            f"inputs), got a weight of shape {list(w.shape)}"
        )
    norms = w.norm(dim=0).reshape(-1, h, wd).amax(0)
    used = images.std(0).amax(0) > 1e-3
    if not used.any() or used.all():
        return torch.zeros(h, wd)
    return torch.where(used, torch.zeros_like(norms), norms / norms[used].median())


def _weights(model, fit_x, fit_y, n_classes, batch, n_eval, meter, ratio=1.0):
    """Pixels the data never uses whose weights outgrow the layer's typical scale, then a
    short pattern fit inside that region for every class."""
    c_, h, w = fit_x.shape[1:]
    score = weight_anomaly(model, fit_x)
    region = (score > ratio).float()
    masks = torch.zeros(n_classes, h, w)
    patterns = torch.zeros(n_classes, c_, h, w)
    if not region.any():
        return masks, patterns, torch.zeros(n_classes)
    eval_cost = n_classes
    steps = max(1, min(REFIT_STEPS, (meter.left - eval_cost) // n_classes))
    masks = region.expand(n_classes, h, w).clone()
    init = torch.full((n_classes, c_, h, w), 0.5)
    patterns = _fit_patterns(model, fit_x, fit_y, masks, init, batch, eval_cost, meter, steps)
    # every class shares the region: the anomaly is the region's weight score (times the
    # class's success, once measured)
    return masks, patterns, torch.full((n_classes,), float(score.max()))
