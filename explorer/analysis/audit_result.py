"""What an audit returns: ``AuditResult`` (a three-tier verdict, its evidence and the
reconstructed triggers), how a trigger is applied (``apply_trigger``), and the pass ``Meter`` an
audit spends its budget through. ``audit`` (``backdoor_audit``) builds them.

>>> m, p = torch.zeros(2, 2), torch.ones(1, 2, 2); m[0, 0] = 1
>>> apply_trigger(torch.zeros(1, 1, 2, 2), m, p, "mask")[0, 0].tolist()
[[1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from explorer._deprecate import renamed_arguments
from explorer._display import Shown, pandas
from explorer.models.handle import ModelHandle

__all__ = ["AuditResult", "Meter"]


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


@dataclass(frozen=True, repr=False)
class AuditResult(Shown):
    """What an audit found in one model.

    ``verdict`` is ``"flagged"``, ``"suspicious"`` or ``"clean"``, ``evidence`` says why in
    words. Per class ``c``: ``masks[c] [H, W]`` and ``patterns[c] [C, H, W]`` (the trigger
    that sends digits to ``c``; ``stamp(images, c)`` applies it), ``shapes[c]`` (the mask's
    shape in words, e.g. "a 1x7 line"), ``anomaly[c]`` (the method's score), ``success[c]``
    (share of held-out digits sent to ``c``) and ``boxes[c] = (top, left, height, width)``.
    ``flagged`` and ``suspicious`` list classes, most anomalous first. ``cleanse`` also keeps
    the raw masks (``raw_masks``, ``raw_success``, ``mask_l1``, ``raw_anomaly``), the
    squares' ``square_anomaly`` and ``square_success``, and the raw masks' MAD anomaly
    index (``mad_index``); ``compare`` the pixels' z-score map (``weight_z``); ``source``
    names, per target class, the one source class whose digits its trigger moves
    (``sources[c]``, None where it found none; ``stamped_examples`` stamps only those), and
    so does ``compare`` for a region that moves one source's digits only; ``"all"`` keeps
    those whichever method decided, and each method's own result in ``parts``.
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
    min_success: float = 0.95  # a flagged class's trigger works at least this often
    seconds: float = field(default=0.0, compare=False)
    verdict: str = ""  # empty: follows flagged and suspicious
    suspicious: tuple[int, ...] = ()
    evidence: str = ""
    shapes: tuple[str, ...] = ()
    mad_index: torch.Tensor | None = None
    mask_l1: torch.Tensor | None = None
    raw_masks: torch.Tensor | None = None
    raw_success: torch.Tensor | None = None
    raw_anomaly: torch.Tensor | None = None
    square_success: torch.Tensor | None = None
    square_anomaly: torch.Tensor | None = None
    weight_z: torch.Tensor | None = None
    norm: str = "mask"
    sources: tuple[int | None, ...] = ()
    parts: tuple[AuditResult, ...] = ()

    def __post_init__(self) -> None:
        tier = "flagged" if self.flagged else "suspicious" if self.suspicious else "clean"
        if not self.verdict:
            object.__setattr__(self, "verdict", tier)
        elif self.verdict != tier:
            raise ValueError(
                f"verdict {self.verdict!r} disagrees with flagged={self.flagged} and "
                f"suspicious={self.suspicious} (which make it {tier!r})"
            )

    @property
    def clean(self) -> bool:
        return self.verdict == "clean"

    @property
    def target(self) -> int | None:
        """The most anomalous flagged class, else the suspicious one (None when clean)."""
        found = self.flagged or self.suspicious
        return found[0] if found else None

    @property
    def most_anomalous(self) -> int:
        """The class with the highest anomaly, flagged or not (what a view shows first)."""
        return int(self.anomaly.argmax())

    @property
    def location(self) -> tuple[int, int, int, int] | None:
        """``(top, left, height, width)`` of the target's trigger (None when clean)."""
        return self.boxes[self.target] if self.target is not None else None

    @property
    def shape(self) -> str | None:
        """The target's trigger shape in words (None when clean)."""
        return self.shapes[self.target] if self.target is not None and self.shapes else None

    @renamed_arguments(images="inputs", cls="target")
    def stamp(self, inputs: torch.Tensor, target: int | None = None) -> torch.Tensor:
        """``inputs`` (images) with class ``target``'s reconstructed trigger (default: the
        audit's target)."""
        cls = self.target if target is None else target
        if cls is None:
            raise ValueError(f"{self.model} was found clean: pass the class whose trigger to stamp")
        return apply_trigger(inputs, self.masks[cls], self.patterns[cls], self.norm)

    def to_dataframe(self) -> Any:
        """One row per ``class``: its ``anomaly``, mask size (``mask_l1``), attack
        ``success``, ``box``, ``shape``, ``tier`` and whether it is ``flagged``."""
        pd = pandas()
        n = len(self.anomaly)
        return pd.DataFrame(
            {
                "class": range(n),
                "anomaly": self.anomaly.tolist(),
                "mask_l1": self.masks.flatten(1).sum(1).tolist(),
                "success": self.success.tolist(),
                "box": list(self.boxes),
                "shape": list(self.shapes) if self.shapes else [""] * n,
                "tier": [self.tier(c) for c in range(n)],
                "flagged": [c in self.flagged for c in range(n)],
            }
        )

    def tier(self, class_index: int) -> str:
        """``"flagged"``, ``"suspicious"`` or ``"clean"`` for one class."""
        if class_index in self.flagged:
            return "flagged"
        return "suspicious" if class_index in self.suspicious else "clean"

    def _summary(self) -> str:
        what = self.verdict
        if self.target is not None:
            shape = f"{self.shape}, " if self.shape else ""
            what += (
                f" class {self.target} ({shape}box {self.location}, "
                f"success {float(self.success[self.target]):.0%})"
            )
        return (
            f"{self.model}, {self.method}: {what}; {self.forward_passes} forward / "
            f"{self.backward_passes} backward passes; {self.evidence}"
        )

    def _table(self) -> tuple:
        rows = [
            (
                c,
                self.tier(c),
                float(self.anomaly[c]),
                float(self.success[c]),
                str(self.boxes[c]),
                self.shapes[c] if self.shapes else "",
            )
            for c in (list(self.flagged + self.suspicious) or [self.most_anomalous])
        ]
        note = (
            f"{self.verdict}: {self.evidence}; {self.forward_passes} forward, "
            f"{self.backward_passes} backward passes (budget {self.budget})"
        )
        return (
            f"audit of {self.model} ({self.method})",
            ["class", "tier", "anomaly", "success", "box (top, left, h, w)", "shape"],
            rows,
            note,
        )


def apply_trigger(
    x: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor, norm: str
) -> torch.Tensor:
    """A trigger on ``x``: ``(1 - mask) x + mask pattern``, or for an L-infinity global
    trigger (``norm="linf"``) ``x + pattern`` clamped to 0..1."""
    if norm == "linf":
        return (x + pattern.to(x)).clamp(0, 1)
    m = mask.to(x)
    return (1 - m) * x + m * pattern.to(x)
