"""Measures of claims about inputs, not units: "stamping this patch sends 90% of digits to 7".

``InputStamp(mask, pattern, target)`` is a transform stored as data: two arrays, no code.
It stamps each held-out image, ``(1 - mask) * x + mask * pattern`` (the form
``AuditResult.stamp`` uses, so an audit's reconstructed trigger becomes a hypothesis
directly), and measures per image whether the model now says ``target`` (``"success"``) or
the target's softmax probability (``"probability"``). Images already of the target class
(by label, else by the model's clean prediction) are left out: a trigger's success is on the
others. The hypothesis names no units; its baseline is the same stamp moved to other
places (``n_baseline`` seeded placements clear of the original), so "supported, baseline
0.1" says the location matters, not merely a bright patch anywhere.

>>> import torch
>>> mask = torch.zeros(4, 4); mask[:2, :2] = 1.0
>>> s = InputStamp(mask=mask, pattern=torch.ones(1, 4, 4), target=1)
>>> s.describe(), s.box
('share of inputs sent to class 1 by a 2x2 stamp at (0, 0)', (0, 0, 2, 2))
>>> InputStamp.from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from explorer._checks import check_choice
from explorer._display import compact_repr
from explorer.hypotheses.bootstrap import Evidence
from explorer.hypotheses.examples import Examples
from explorer.hypotheses.measures import BUILT_INS, _Base
from explorer.models.handle import ModelHandle

STAMP_SCORES = ("success", "probability")


def _array(name: str, value: Any) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float32).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return t


@dataclass(frozen=True, eq=False)
class InputStamp(_Base):
    """A stamp on the inputs and the class it should send them to.

    Args:
        mask: ``[H, W]`` in 0..1: how much of each pixel the pattern replaces.
        pattern: ``[C, H, W]`` (or ``[H, W]``, all channels alike) pixel values stamped.
        target: the class the stamp is claimed to send inputs to.
        score: ``"success"`` (1 if the model says ``target``, per image) or
            ``"probability"`` (the target's softmax probability).
    """

    __repr__ = compact_repr

    mask: torch.Tensor
    pattern: torch.Tensor
    target: int
    score: str = "success"
    kind: ClassVar[str] = "input_transform"
    unit_types: ClassVar[tuple[type, ...]] = ()

    def __post_init__(self) -> None:
        mask, pattern = _array("mask", self.mask), _array("pattern", self.pattern)
        if mask.ndim != 2:
            raise ValueError(f"mask must be [H, W], got shape {list(mask.shape)}")
        if pattern.ndim == 2:
            pattern = pattern.unsqueeze(0)
        if pattern.ndim != 3 or tuple(pattern.shape[1:]) != tuple(mask.shape):
            raise ValueError(
                f"pattern must be [C, H, W] with H, W of the mask {list(mask.shape)}, got "
                f"shape {list(pattern.shape)}"
            )
        if float(mask.min()) < 0 or float(mask.max()) > 1 or not bool((mask > 0).any()):
            raise ValueError("mask values must lie in 0..1, some above 0 (the stamped pixels)")
        if isinstance(self.target, bool) or not isinstance(self.target, int) or self.target < 0:
            raise ValueError(f"target must be a class index >= 0, got {self.target!r}")
        check_choice("score", self.score, STAMP_SCORES)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "pattern", pattern)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, InputStamp)
            and (self.target, self.score) == (other.target, other.score)
            and torch.equal(self.mask, other.mask)
            and torch.equal(self.pattern, other.pattern)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of the stamped pixels."""
        rows, cols = (self.mask > 0).nonzero(as_tuple=True)
        top, left = int(rows.min()), int(cols.min())
        return top, left, int(rows.max()) - top + 1, int(cols.max()) - left + 1

    def describe(self) -> str:
        top, left, h, w = self.box
        what = "share of inputs sent to" if self.score == "success" else "probability of"
        return f"{what} class {self.target} by a {h}x{w} stamp at ({top}, {left})"

    def check_units(self, units: Any) -> None:
        if units:
            raise ValueError(
                f"{self.describe()} is a claim about inputs: give no units, got "
                f"{', '.join(map(str, units))}"
            )

    def stamp(self, images: torch.Tensor) -> torch.Tensor:
        """``images [n, C, H, W]`` with the stamp applied."""
        m = self.mask.to(images)
        return (1 - m) * images + m * self.pattern.to(images)

    def evaluate(self, model: ModelHandle, examples: Examples, units: Any = ()) -> Evidence:
        self.check_units(units)
        return self._measure(self, model, examples)

    @staticmethod
    def _measure(stamp: InputStamp, model: ModelHandle, examples: Examples) -> Evidence:
        images = model.check_images(examples.inputs)
        if tuple(images.shape[-2:]) != tuple(stamp.mask.shape):
            raise ValueError(
                f"the stamp is {list(stamp.mask.shape)} but {model.name}'s images are "
                f"{list(images.shape[-2:])}"
            )
        n_out = model.n_outputs
        if n_out is not None and stamp.target >= n_out:
            raise ValueError(
                f"target {stamp.target} out of range: {model.name} has {n_out} classes"
            )
        with torch.no_grad():
            clean = model(images).argmax(-1)
            known = examples.labels if examples.labels is not None else clean
            keep = known != stamp.target
            if not bool(keep.any()):
                raise ValueError(
                    f"every held-out input is already of class {stamp.target}: the stamp has "
                    "nothing to send"
                )
            logits = model(stamp.stamp(images[keep]))
        sent = logits.argmax(-1) == stamp.target
        values = sent.double() if stamp.score == "success" else logits.softmax(-1)[:, stamp.target]
        details = {
            "scored_inputs": float(keep.sum()),
            "clean_share_of_target": float((clean[keep] == stamp.target).double().mean()),
        }
        return Evidence(values.double(), details=details)

    def moved(self, top: int, left: int) -> InputStamp:
        """The same stamp with its box moved to ``(top, left)``."""
        t, le, _, _ = self.box
        shift = (top - t, left - le)
        return InputStamp(
            mask=torch.roll(self.mask, shift, dims=(0, 1)),
            pattern=torch.roll(self.pattern, shift, dims=(1, 2)),
            target=self.target,
            score=self.score,
        )

    def placements(self, n: int, seed: int) -> list[tuple[int, int]]:
        """Up to ``n`` seeded ``(top, left)`` for the box, inside the image and clear of it."""
        top, left, h, w = self.box
        height, width = self.mask.shape
        spots = [
            (t, le)
            for t in range(height - h + 1)
            for le in range(width - w + 1)
            if t + h <= top or t >= top + h or le + w <= left or le >= left + w
        ]
        random.Random(seed).shuffle(spots)
        return spots[:n]

    def baseline_evidence(
        self, model: ModelHandle, examples: Examples, n: int, seed: int
    ) -> tuple[str, tuple[tuple[str, ...], ...], list[Evidence]]:
        """The same stamp at ``n`` other places: ``(source, names, evidence per place)``."""
        spots = self.placements(n, seed)
        evidences = [self._measure(self.moved(t, le), model, examples) for t, le in spots]
        names = tuple((f"stamp at ({t}, {le})",) for t, le in spots)
        return f"{len(spots)} placements of the same stamp elsewhere", names, evidences

    def evaluate_many(
        self, model: ModelHandle, examples: Examples, unit_sets: Any
    ) -> list[Evidence]:
        return [self.evaluate(model, examples, units) for units in unit_sets]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mask": self.mask.tolist(),
            "pattern": self.pattern.tolist(),
            "target": self.target,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputStamp:
        """From ``to_dict`` output: numbers only, nothing run."""
        data = {k: v for k, v in data.items() if k != "kind"}
        return cls(**data)


def unit_free(measure: Any) -> bool:
    """Whether ``measure`` is about inputs and takes no units."""
    return getattr(measure, "unit_types", None) == ()


BUILT_INS[InputStamp.kind] = InputStamp
