"""What shape a mask has, in words: its L1 size, bounding box and connected components.

A trigger need not be a square: Neural Cleanse's raw mask (``audit``) may be a thin line,
a few sparse dots, a frame round the image or a faint pattern over all of it.
``mask_shape(mask)`` reads the pixels above half the mask's peak, groups them into
8-connected components and names the shape ("a 1x7 line", "4 dots", "a frame", "a 3x3
patch", "a global pattern"), so a finding says what was found, not "a 6x6 stamp".

>>> m = torch.zeros(28, 28); m[3, 5:12] = 1
>>> mask_shape(m)
MaskShape(a 1x7 line at (3, 5); L1 7.0, 7 pixels, 1 component)
>>> m = torch.zeros(28, 28); m[2, 2] = m[2, 20] = m[20, 2] = m[20, 20] = 1
>>> mask_shape(m).description
'4 dots'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# helpers of the audit (AuditResult.shapes, WeightOutliers.shape describe masks with them)
__all__: list[str] = []

GLOBAL_SHARE = 0.25  # a mask over a quarter of the image or more is a global pattern
DOT_PIXELS = 2  # a component of at most this many pixels is a dot


@dataclass(frozen=True)
class MaskShape:
    """A mask's ``l1`` (sum of its values), ``pixels`` (how many reach half its peak), their
    bounding ``box = (top, left, height, width)``, the ``components`` (each a tuple of
    ``(row, col)`` pixels, largest first) and a ``description`` in words."""

    l1: float
    pixels: int
    box: tuple[int, int, int, int]
    components: tuple[tuple[tuple[int, int], ...], ...]
    description: str

    def __repr__(self) -> str:
        n = len(self.components)
        where = f" at {self.box[:2]}" if self.pixels else ""
        return (
            f"MaskShape({self.description}{where}; L1 {self.l1:.1f}, {self.pixels} pixels, "
            f"{n} component{'s' if n != 1 else ''})"
        )


def connected_components(on: torch.Tensor) -> list[list[tuple[int, int]]]:
    """The 8-connected components of the true pixels of ``on [H, W]``, largest first.

    >>> on = torch.zeros(4, 4, dtype=torch.bool); on[0, 0] = on[1, 1] = on[3, 3] = True
    >>> [len(c) for c in connected_components(on)]
    [2, 1]
    """
    h, w = on.shape
    todo = {(int(r), int(c)) for r, c in on.nonzero().tolist()}
    found = []
    while todo:
        stack = [todo.pop()]
        comp = []
        while stack:
            r, c = stack.pop()
            comp.append((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    nb = (r + dr, c + dc)
                    if nb in todo:
                        todo.remove(nb)
                        stack.append(nb)
        found.append(sorted(comp))
    return sorted(found, key=lambda comp: (-len(comp), comp[0]))


def _bbox(pixels: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    rows = [r for r, _ in pixels]
    cols = [c for _, c in pixels]
    return (min(rows), min(cols), max(rows) - min(rows) + 1, max(cols) - min(cols) + 1)


def _describe(comps: list[list[tuple[int, int]]], shape: tuple[int, int]) -> str:
    if not comps:
        return "empty"
    pixels = [p for comp in comps for p in comp]
    if len(pixels) >= GLOBAL_SHARE * shape[0] * shape[1]:
        return "a global pattern"
    if len(comps) >= 2 and all(len(comp) <= DOT_PIXELS for comp in comps):
        return f"{len(comps)} dots"
    top, left, h, w = _bbox(comps[0])
    main = len(comps[0])
    if min(h, w) <= 2 and max(h, w) >= 3 * min(h, w) and main >= 0.8 * h * w:
        kind = f"a {h}x{w} line"
    elif h >= 4 and w >= 4 and main <= 0.6 * h * w and _hollow(comps[0], (top, left, h, w)):
        kind = "a frame"
    elif main >= 0.6 * h * w:
        kind = f"a {h}x{w} patch"
    else:
        kind = f"a sparse {h}x{w} pattern"
    rest = len(comps) - 1
    return kind if rest == 0 else f"{kind} and {rest} more piece{'s' if rest > 1 else ''}"


def _hollow(comp: list[tuple[int, int]], box: tuple[int, int, int, int]) -> bool:
    """Every edge of the box is mostly covered and its inside mostly empty."""
    top, left, h, w = box
    pix = set(comp)
    edges = [
        [(top, c) for c in range(left, left + w)],
        [(top + h - 1, c) for c in range(left, left + w)],
        [(r, left) for r in range(top, top + h)],
        [(r, left + w - 1) for r in range(top, top + h)],
    ]
    covered = all(sum(p in pix for p in edge) >= 0.7 * len(edge) for edge in edges)
    inside = [(r, c) for r in range(top + 1, top + h - 1) for c in range(left + 1, left + w - 1)]
    return covered and sum(p in pix for p in inside) <= 0.3 * len(inside)


def linked(score: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """The pixels of ``score [H, W]`` at or above ``low`` that are 8-connected, through such
    pixels, to one at or above ``high`` (hysteresis thresholding, bool ``[H, W]``): the weak
    parts of a shape whose strong parts stand out, without the weak pixels elsewhere.

    >>> s = torch.zeros(5, 5); s[2, :] = torch.tensor([12.0, 6.0, 6.0, 0.0, 6.0])
    >>> linked(s, 9.0, 5.0)[2].tolist()
    [True, True, True, False, False]
    """
    out = torch.zeros(score.shape, dtype=torch.bool)
    for comp in connected_components(score >= low):
        rows, cols = zip(*comp)
        if bool((score[list(rows), list(cols)] >= high).any()):
            out[list(rows), list(cols)] = True
    return out


def fill_sparse_patches(on: torch.Tensor, largest: int = 8, density: float = 0.3) -> torch.Tensor:
    """``on [H, W]`` (bool) with each sparse, compact component filled to its bounding box: a
    checkerboard's or a random stamp's white pixels touch at the corners, and its black
    pixels, on a black background, change nothing a search can see; the box is where the
    stamp is. Lines (a side under 3), frames (hollow) and components with a side over
    ``largest`` or under ``density`` of their box stay as they are.

    >>> on = torch.zeros(6, 6, dtype=torch.bool); on[1:5, 1:5] = torch.eye(4, dtype=torch.bool) | torch.eye(4, dtype=torch.bool).flip(1)
    >>> int(fill_sparse_patches(on).sum())
    16
    """
    out = on.clone()
    for comp in connected_components(on):
        top, left, h, w = _bbox(comp)
        if min(h, w) < 3 or max(h, w) > largest or len(comp) < density * h * w:
            continue
        if len(comp) < h * w and not _hollow(comp, (top, left, h, w)):
            out[top : top + h, left : left + w] = True
    return out


def thin_line(mask: torch.Tensor, *, level: float = 0.5) -> torch.Tensor | None:
    """The pixels of ``mask [H, W]`` at or above ``level`` times its peak as one straight
    line, when their bounding box is thin (a side of at most 2, the other at least 3 and
    twice as long): the box's row (or column) holding most of the mask's mass, filled along
    the box (0/1 ``[H, W]``); None when the pixels are not thin. A convolution's mask search
    finds a line as scattered pieces along it (the gaps are what a convolution fills in);
    the line they lie on is the trigger's shape.

    >>> m = torch.zeros(12, 12); m[2, 3] = m[2, 6] = m[2, 8] = 1.0; m[3, 4] = 0.6
    >>> line = thin_line(m); int(line.sum()), line[2, 3:9].tolist() == [1.0] * 6
    (6, True)
    >>> m[6, 6] = 1.0; thin_line(m) is None
    True
    """
    mask = mask.detach().float()
    if float(mask.max()) <= 0:
        return None
    on = mask >= level * float(mask.max())
    top, left, h, w = _bbox([tuple(p) for p in on.nonzero().tolist()])
    if min(h, w) > 2 or max(h, w) < max(3, 2 * min(h, w)):
        return None
    inside = mask[top : top + h, left : left + w]
    out = torch.zeros_like(mask)
    if h <= w:  # a row
        r = top + int(inside.sum(1).argmax())
        out[r, left : left + w] = 1.0
    else:
        c = left + int(inside.sum(0).argmax())
        out[top : top + h, c] = 1.0
    return out


def mask_shape(mask: torch.Tensor, *, level: float = 0.5) -> MaskShape:
    """The shape of ``mask [H, W]`` (values in 0..1): pixels at or above ``level`` times its
    peak, their bounding box, components and description.

    >>> m = torch.zeros(28, 28); m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = 1
    >>> mask_shape(m).description, mask_shape(m).box
    ('a frame', (0, 0, 28, 28))
    """
    if mask.ndim != 2:
        raise ValueError(f"mask_shape needs a mask [H, W], got shape {list(mask.shape)}")
    mask = mask.detach().float()
    peak = float(mask.max()) if mask.numel() else 0.0
    l1 = float(mask.abs().sum())
    if peak <= 0:
        return MaskShape(l1, 0, (0, 0, 0, 0), (), "empty")
    comps = connected_components(mask >= level * peak)
    pixels = [p for comp in comps for p in comp]
    return MaskShape(
        l1=l1,
        pixels=len(pixels),
        box=_bbox(pixels),
        components=tuple(tuple(comp) for comp in comps),
        description=_describe(comps, tuple(mask.shape)),
    )
