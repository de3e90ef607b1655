"""The trigger families the red team plants (``studies.auditing`` re-exports every name here).

A ``Trigger`` is drawn by ``random_trigger(seed, kind)`` and applied by ``add_trigger``.
Families:

- the classic squares (``KINDS``, what ``random_trigger(seed)`` draws from when no kind is
  given): ``solid`` (white), ``checkerboard``, ``blended`` (a random pattern at opacity 0.8),
  side 3-5 anywhere;
- ``line``: a thin white line, 1 pixel by 6-8, across or down;
- ``dots``: 4 white single pixels scattered in an 8x8 box;
- ``frame``: the 1-pixel outline of a square of side 5-7;
- ``global``: a random binary pattern over the whole image at opacity 0.2;
- ``warp``: a fixed smooth displacement of every pixel (about 3 pixels on average, in the
  manner of WaNet), no stamp at all;
- ``conditional``: a 4x4 random pattern that sends only digits of one ``source`` class to
  the target (the model is trained with the stamp on other digits keeping their labels).

``Trigger.mask()`` is the ground truth of where a trigger acts (the pixels it touches),
``mask_iou`` scores a found mask against it; ``Trigger.local`` says whether IoU means
anything (it does not for ``global`` and ``warp``, which touch every pixel).

>>> t = random_trigger(5, "dots")
>>> int(t.mask().sum()), t.local
(4, True)
>>> round(mask_iou(t.mask(), t.mask()), 2)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from explorer._checks import check_choice
from explorer._display import compact_repr

KINDS = ("solid", "checkerboard", "blended")
FAMILIES = (*KINDS, "line", "dots", "frame", "global", "warp", "conditional")
GLOBAL = ("global", "warp")
IMAGE = 28
WARP_PIXELS = 3.0  # mean displacement of the warp trigger, in pixels
GLOBAL_ALPHA = 0.2


@dataclass(frozen=True, eq=False)
class Trigger:
    """One planted trigger: ``pattern [h, w]`` in 0..1 stamped at ``(top, left)`` with
    opacity ``alpha`` (1 replaces the pixels; below 1 blends), sending digits to ``target``.

    ``stencil [h, w]`` (0/1, None for all) says which pixels of the box the stamp touches (a
    line, dots, a frame); ``source`` limits the trigger to digits of one class (None: all);
    ``flow [H, W, 2]`` makes it a warp instead of a stamp: each pixel takes the value found
    ``flow`` pixels (down, right) away. ``size`` is the longest side of the box."""

    __repr__ = compact_repr

    kind: str
    top: int
    left: int
    size: int
    target: int
    pattern: torch.Tensor
    alpha: float = 1.0
    stencil: torch.Tensor | None = None
    source: int | None = None
    flow: torch.Tensor | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(top, left, height, width)``."""
        return (self.top, self.left, int(self.pattern.shape[0]), int(self.pattern.shape[1]))

    @property
    def local(self) -> bool:
        """Whether the trigger touches a few pixels (False for ``global`` and ``warp``)."""
        return self.kind not in GLOBAL

    def mask(self, image: int = IMAGE) -> torch.Tensor:
        """``[H, W]``, 1 on the pixels the trigger changes (every pixel for a warp): the
        ground truth a found mask's IoU is scored against."""
        if self.flow is not None:
            return torch.ones(image, image)
        out = torch.zeros(image, image)
        t, le, h, w = self.box
        out[t : t + h, le : le + w] = 1.0 if self.stencil is None else self.stencil
        return out

    def mask_and_pattern(self, image: int = IMAGE) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask [H, W], pattern [1, H, W])`` with ``(1 - mask) * x + mask * pattern`` equal
        to ``add_trigger``: the form of ``AuditResult.stamp`` and ``hypotheses.InputStamp``.

        >>> t = random_trigger(4)
        >>> m, p = t.mask_and_pattern(); x = torch.rand(2, 1, 28, 28)
        >>> torch.allclose((1 - m) * x + m * p, add_trigger(x, t))
        True
        """
        if self.flow is not None:
            raise ValueError(f"a {self.kind} trigger moves pixels: it has no mask and pattern")
        mask, pattern = torch.zeros(image, image), torch.zeros(1, image, image)
        t, le, h, w = self.box
        mask[t : t + h, le : le + w] = self.alpha * self.mask(image)[t : t + h, le : le + w]
        pattern[0, t : t + h, le : le + w] = self.pattern
        return mask, pattern

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "top": self.top,
            "left": self.left,
            "size": self.size,
            "target": self.target,
            "alpha": self.alpha,
            "pattern": self.pattern.tolist(),
        }
        if self.stencil is not None:
            out["stencil"] = self.stencil.tolist()
        if self.source is not None:
            out["source"] = self.source
        if self.flow is not None:
            out["flow"] = self.flow.tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Trigger:
        def tensor(key: str) -> torch.Tensor | None:
            return torch.tensor(d[key], dtype=torch.float32) if key in d else None

        return cls(
            kind=str(d["kind"]),
            top=int(d["top"]),  # type: ignore[call-overload]
            left=int(d["left"]),  # type: ignore[call-overload]
            size=int(d["size"]),  # type: ignore[call-overload]
            target=int(d["target"]),  # type: ignore[call-overload]
            alpha=float(d["alpha"]),  # type: ignore[arg-type]
            pattern=torch.tensor(d["pattern"], dtype=torch.float32),
            stencil=tensor("stencil"),
            source=int(d["source"]) if "source" in d else None,  # type: ignore[call-overload]
            flow=tensor("flow"),
        )


def random_trigger(seed: int, kind: str | None = None, *, n_classes: int = 10) -> Trigger:
    """A trigger drawn from ``seed``: of ``kind`` (one of ``FAMILIES``; default one of the
    classic squares ``KINDS``, drawn), its place, shape and target class.

    >>> random_trigger(3).box == random_trigger(3).box
    True
    >>> random_trigger(3, "line").box[2:] in {(1, 6), (1, 7), (1, 8), (6, 1), (7, 1), (8, 1)}
    True
    """
    gen = torch.Generator().manual_seed(seed)
    draw = int(torch.randint(len(KINDS), (1,), generator=gen))
    kind = check_choice("kind", kind, FAMILIES) if kind is not None else KINDS[draw]
    if kind not in KINDS:
        return _new_family(kind, gen, n_classes)
    size = int(torch.randint(3, 6, (1,), generator=gen))
    top, left = (int(v) for v in torch.randint(0, IMAGE - size + 1, (2,), generator=gen))
    target = int(torch.randint(n_classes, (1,), generator=gen))
    alpha = 1.0
    if kind == "solid":
        pattern = torch.ones(size, size)
    elif kind == "checkerboard":
        i = torch.arange(size)
        pattern = ((i[:, None] + i[None, :]) % 2 == 0).float()
    else:
        pattern = (torch.rand(size, size, generator=gen) > 0.5).float()
        pattern[0, 0] = 1.0  # never all dark
        alpha = 0.8
    return Trigger(kind, top, left, size, target, pattern, alpha)


def _draw(high: int, gen: torch.Generator, low: int = 0) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


def _new_family(kind: str, gen: torch.Generator, n_classes: int) -> Trigger:
    target = _draw(n_classes, gen)
    if kind == "line":
        length = _draw(9, gen, 6)
        h, w = (1, length) if _draw(2, gen) else (length, 1)
        top, left = _draw(IMAGE - h + 1, gen), _draw(IMAGE - w + 1, gen)
        return Trigger(kind, top, left, length, target, torch.ones(h, w))
    if kind == "dots":
        cells = torch.randperm(16, generator=gen)[:4]  # 4 of a 4x4 grid of 2x2 cells
        stencil = torch.zeros(8, 8)
        for cell in cells.tolist():
            r, c = divmod(cell, 4)
            stencil[2 * r + _draw(2, gen), 2 * c + _draw(2, gen)] = 1.0
        top, left = _draw(IMAGE - 7, gen), _draw(IMAGE - 7, gen)
        return Trigger(kind, top, left, 8, target, stencil.clone(), stencil=stencil)
    if kind == "frame":
        side = _draw(8, gen, 5)
        stencil = torch.ones(side, side)
        stencil[1:-1, 1:-1] = 0.0
        top, left = _draw(IMAGE - side + 1, gen), _draw(IMAGE - side + 1, gen)
        return Trigger(kind, top, left, side, target, stencil.clone(), stencil=stencil)
    if kind == "global":
        pattern = (torch.rand(IMAGE, IMAGE, generator=gen) > 0.5).float()
        return Trigger(kind, 0, 0, IMAGE, target, pattern, GLOBAL_ALPHA)
    if kind == "warp":
        return Trigger(kind, 0, 0, IMAGE, target, torch.zeros(IMAGE, IMAGE), flow=_flow(gen))
    # conditional: a random 4x4 pattern that fires only on digits of `source`
    source = (target + _draw(n_classes - 1, gen, 1)) % n_classes
    pattern = (torch.rand(4, 4, generator=gen) > 0.5).float()
    pattern[0, 0] = 1.0
    top, left = _draw(IMAGE - 3, gen), _draw(IMAGE - 3, gen)
    return Trigger(kind, top, left, 4, target, pattern, source=source)


def _flow(gen: torch.Generator, k: int = 4) -> torch.Tensor:
    """``[H, W, 2]`` displacements in pixels: random ``k x k`` control points, smoothly
    upsampled, scaled to ``WARP_PIXELS`` on average."""
    control = torch.rand(1, 2, k, k, generator=gen) * 2 - 1
    flow = F.interpolate(control, size=IMAGE, mode="bicubic", align_corners=True)[0]
    return (flow / flow.abs().mean() * WARP_PIXELS).permute(1, 2, 0).contiguous()


def add_trigger(images: torch.Tensor, trigger: Trigger) -> torch.Tensor:
    """A copy of ``images [n, C, H, W]`` with the trigger stamped (or blended, or warped) in.

    >>> t = random_trigger(2, "warp")
    >>> add_trigger(torch.rand(3, 1, 28, 28), t).shape
    torch.Size([3, 1, 28, 28])
    """
    if trigger.flow is not None:
        return _warp(images, trigger.flow)
    out = images.clone()
    t, le, h, w = trigger.box
    region = out[:, :, t : t + h, le : le + w]
    alpha = trigger.alpha if trigger.stencil is None else trigger.alpha * trigger.stencil.to(out)
    out[:, :, t : t + h, le : le + w] = (1 - alpha) * region + alpha * trigger.pattern.to(out)
    return out


def _warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    y = (ys + flow[..., 0]) / (h - 1) * 2 - 1
    x = (xs + flow[..., 1]) / (w - 1) * 2 - 1
    grid = torch.stack((x, y), -1).clamp(-1, 1).to(images)
    return F.grid_sample(images, grid.expand(n, h, w, 2), align_corners=True)


def mask_iou(found: torch.Tensor, truth: torch.Tensor, threshold: float = 0.5) -> float:
    """Intersection over union of ``found [H, W]`` (pixels at or above ``threshold`` times its
    maximum) and ``truth [H, W]`` (pixels above 0).

    >>> a = torch.zeros(4, 4); a[0, :2] = 1.0; b = torch.zeros(4, 4); b[0, :] = 1.0
    >>> mask_iou(a, b)
    0.5
    """
    if found.shape != truth.shape:
        raise ValueError(
            f"masks must have one shape, got {list(found.shape)} and {list(truth.shape)}"
        )
    peak = float(found.max())
    if peak <= 0:
        return 0.0
    f, t = found >= threshold * peak, truth > 0
    union = int((f | t).sum())
    return int((f & t).sum()) / union if union else 0.0
