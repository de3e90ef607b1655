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

The search stops within ``budget`` forward passes. The three searches are in
``_audit_search``. Written here, not wrapped from adversarial-robustness-toolbox (see
docs/auditing.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from explorer._checks import check_choice, check_positive, check_tensor
from explorer.analysis._audit_search import (
    MAX_STEPS,
    REFIT_STEPS,
    box,
    cleanse,
    stamp_scan,
    weights_search,
)
from explorer.analysis._display import clip, html_table, pandas
from explorer.analysis.audit_scores import mad_index, weight_anomaly
from explorer.models.handle import ModelHandle

__all__ = [  # named here too: mad_index, weight_anomaly (audit_scores), the step limits
    "MAD_THRESHOLD",
    "MAX_STEPS",
    "METHODS",
    "MIN_MARGIN",
    "MIN_SUCCESS",
    "REFIT_STEPS",
    "AuditResult",
    "Meter",
    "audit",
    "mad_index",
    "weight_anomaly",
]

METHODS = ("cleanse", "stamp", "weights")
MAD_THRESHOLD = 2.0
MIN_SUCCESS = 0.95  # a flagged class's reconstructed (compact) trigger must work this often
MIN_MARGIN = 2.6  # and lead the runner-up logit by this much per pixel of the trigger's side
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
    inputs: torch.Tensor,
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
    check_choice("method", method, METHODS)
    if budget is not None:
        check_positive("budget", budget)
    inputs = check_tensor("images", model.check_images(inputs), ndim=4, integer=False)
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
    fit_x, fit_y, eval_x, eval_y = inputs[:half], base[:half], inputs[half:], base[half:]
    if method == "cleanse":
        masks, patterns, anomaly = cleanse(model, fit_x, fit_y, n_classes, batch, n_eval, meter)
    elif method == "stamp":
        masks, patterns, anomaly = stamp_scan(model, fit_x, fit_y, n_classes, meter, n_eval)
    else:
        masks, patterns, anomaly = weights_search(
            model, fit_x, fit_y, n_classes, batch, n_eval, meter
        )
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
        side = torch.tensor([max(1, b[2] * b[3]) ** 0.5 for b in map(box, masks)])
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
        boxes=tuple(box(masks[c]) for c in range(n_classes)),
        forward_passes=meter.forwards,
        backward_passes=meter.backwards,
        examples=meter.examples,
        budget=budget,
        threshold=MIN_MARGIN if method == "cleanse" else 0.0,
        seconds=time.process_time() - start,
    )
