"""What an audit's reconstructed trigger does to real inputs: stamped examples, before and after.

``stamped_examples(model, inputs, *, result=, target=)`` stamps class ``target``'s reconstructed
trigger (``AuditResult.stamp``) onto the first ``n`` images not already predicted as it and
returns both versions with the model's predictions, and the share of the stamped ones sent
to ``cls``. The AuditView shows it for the class a user clicks; a notebook can check the
trigger on digits the audit never saw.

``trigger_place(model, inputs, *, result=, target=)`` says how sure the audit can be of the
trigger's *place*: it stamps the trigger moved by up to ``reach`` pixels each way and reports
the share sent to the class at each move. An MLP's trigger works only where it was found
(its place is pinned to the pixel); a CNN's max-pooling makes it work moved by a pixel or
two, so a mask's box is then known only to within that many pixels (docs/auditing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explorer._checks import check_index, check_positive, check_tensor
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas, png_data_url
from explorer.analysis.audit_result import AuditResult, apply_trigger
from explorer.analysis.audit_scores import margin_over_runner_up
from explorer.models.handle import ModelHandle

__all__ = [
    "StampedExamples",
    "TriggerPlace",
    "stamped_examples",
    "trigger_place",
]

WORKS_SHARE = 0.9  # a moved trigger "works" when it sends at least this share to its class
MAX_REACH = 8  # pixels: trigger_place costs (2 reach + 1)^2 passes


@dataclass(frozen=True, repr=False)
class StampedExamples(Shown):
    """``images [n, C, H, W]`` and ``stamped`` (the same with the trigger of ``cls``), the
    model's predictions on each (``before``, ``after``), and ``success``: the share of the
    stamped images predicted as ``cls``. ``forward_passes`` counts the passes run here."""

    cls: int
    images: torch.Tensor
    stamped: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor
    success: float
    forward_passes: int

    def to_dataframe(self) -> Any:
        """One row per ``image``: the prediction ``before`` and ``after`` stamping, and
        whether the stamped one went to ``cls`` (``sent``)."""
        return pandas().DataFrame(
            {
                "image": range(len(self.images)),
                "before": self.before.tolist(),
                "after": self.after.tolist(),
                "sent": (self.after == self.cls).tolist(),
            }
        )

    def _summary(self) -> str:
        return f"class {self.cls}: {len(self.images)} images, {self.success:.0%} sent to {self.cls}"

    def _table(self) -> tuple:
        rows = [
            (f"image {i}", int(self.before[i]), int(self.after[i]))
            for i in range(min(len(self.images), MAX_ROWS))
        ]
        return (
            f"Trigger of class {self.cls}: {self.success:.0%} of stamped images sent to it",
            ("image", "predicted", "predicted when stamped"),
            rows,
            "each image, then the same image stamped",
        )

    def _repr_html_(self) -> str:
        """The table, then each image beside its stamped twin."""
        pictures = "".join(
            f"<img src='{png_data_url(self.images[i])}' style='margin:2px'>"
            f"<img src='{png_data_url(self.stamped[i])}' style='margin:2px 8px 2px 2px'>"
            for i in range(min(len(self.images), 6))
        )
        return super()._repr_html_() + f"<div>{pictures}</div>"


@dataclass(frozen=True, repr=False)
class TriggerPlace(Shown):
    """Class ``cls``'s reconstructed trigger moved by ``(rows, columns)`` of up to ``reach``
    pixels: ``success [2 reach + 1, 2 reach + 1]`` is the share of the ``n`` images sent to
    ``cls`` at each move (centre: where the audit found it; pixels moved off the image are
    dropped) and ``margin`` the median logit margin of ``cls`` over the runner-up.
    ``tolerance`` is how far, in rows and in columns, it can move and still work (on >= 90%):
    ``(0, 0)`` when its place is pinned to the pixel. ``forward_passes`` counts the passes
    run here."""

    cls: int
    reach: int
    n: int
    success: torch.Tensor
    margin: torch.Tensor
    forward_passes: int

    @property
    def works(self) -> torch.Tensor:
        """``[2 reach + 1, 2 reach + 1]`` bool: the moves at which the trigger still works."""
        return self.success >= WORKS_SHARE

    @property
    def tolerance(self) -> tuple[int, int] | None:
        """``(rows, columns)``: the farthest working moves along each axis, ``(0, 0)`` when
        the place is pinned to the pixel; None when it does not work even where found."""
        rows, cols = self.works.nonzero(as_tuple=True)
        if len(rows) == 0:
            return None
        return int((rows - self.reach).abs().max()), int((cols - self.reach).abs().max())

    def to_dataframe(self) -> Any:
        """One row per move: ``rows`` and ``columns`` moved, ``success``, ``margin`` and
        whether it ``works``."""
        moves = range(-self.reach, self.reach + 1)
        return pandas().DataFrame(
            [
                {
                    "rows": dr,
                    "columns": dc,
                    "success": float(self.success[i, j]),
                    "margin": float(self.margin[i, j]),
                    "works": bool(self.works[i, j]),
                }
                for i, dr in enumerate(moves)
                for j, dc in enumerate(moves)
            ]
        )

    def _summary(self) -> str:
        return self.description

    @property
    def description(self) -> str:
        """The place in words: pinned to the pixel, or how far it can move and still work."""
        moves = f"{int(self.works.sum())} of {self.works.numel()} moves"
        if self.tolerance is None:
            return (
                f"class {self.cls}: works on under {WORKS_SHARE:.0%} of {self.n} images, even "
                "where found"
            )
        if self.tolerance == (0, 0):
            return (
                f"class {self.cls}: works only where found ({moves}): its place is pinned to "
                "the pixel"
            )
        rows, cols = self.tolerance
        return (
            f"class {self.cls}: works on >= {WORKS_SHARE:.0%} of {self.n} images moved by up to "
            f"{rows} row{'s' if rows != 1 else ''} and {cols} column{'s' if cols != 1 else ''} "
            f"({moves}): its box is known to within that, not to the pixel"
        )

    def _table(self) -> tuple:
        moves = range(-self.reach, self.reach + 1)
        rows = [
            (f"{dr:+d}", *(f"{float(v):.0%}" for v in self.success[i]))
            for i, dr in enumerate(moves)
        ]
        return (
            f"Trigger of class {self.cls} moved: share of {self.n} images sent to it",
            ("rows moved", *(f"columns {dc:+d}" for dc in moves)),
            rows,
            self._summary(),
        )


def _moved(t: torch.Tensor, dr: int, dc: int) -> torch.Tensor:
    """``t [..., H, W]`` moved ``dr`` rows down and ``dc`` columns right, zeros coming in
    (what moves off the image is dropped, not wrapped round).

    >>> t = torch.zeros(4, 4); t[0, 0] = 1
    >>> _moved(t, -1, 0).sum().item(), _moved(t, 1, 1)[1, 1].item()
    (0.0, 1.0)
    """
    h, w = t.shape[-2:]
    out = torch.zeros_like(t)
    out[..., max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = t[
        ..., max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
    ]
    return out


def _images_to_stamp(model, inputs, result, cls, n) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, predictions)``: the first ``n`` images the model does not already put in
    ``cls`` (of those it puts in the trigger's source class, when the audit found it fires on
    one), and the model's predictions on every image."""
    with torch.no_grad():
        pred = model(inputs).argmax(-1)
    source = result.sources[cls] if cls < len(result.sources) else None
    keep = ((pred != cls) if source is None else (pred == source)).nonzero().flatten()[:n]
    if len(keep) == 0 and source is not None:
        raise ValueError(
            f"no image is predicted as class {source}, the source class of class {cls}'s "
            "trigger: nothing to stamp"
        )
    if len(keep) == 0:
        raise ValueError(f"every image is already predicted as class {cls}: nothing to stamp")
    return keep, pred


def _audit_class(result: AuditResult, target: int | None) -> int:
    if target is None:
        target = result.target if result.target is not None else int(result.anomaly.argmax())
    return check_index("target", target, len(result.anomaly), f"(classes of {result.model})")


def trigger_place(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    result: AuditResult,
    target: int | None = None,
    reach: int = 2,
    n: int = 100,
) -> TriggerPlace:
    """Stamp ``result``'s trigger for class ``target`` (default: the audit's target, else
    the most anomalous class) moved by every ``(rows, columns)`` of up to ``reach`` pixels on
    the first ``n`` of ``inputs [m, C, H, W]`` not already in that class: how precisely the
    model pins the trigger's place. ``(2 reach + 1)^2 + 1`` forward passes.

    >>> import explorer
    >>> from explorer.analysis.backdoor_audit import audit
    >>> from explorer.studies.auditing import make_mlp
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> x = torch.rand(64, 1, 28, 28)
    >>> r = audit(m, x, method="stamp", budget=300)
    >>> place = trigger_place(m, x, result=r, target=3, reach=1)
    >>> place.success.shape, place.forward_passes
    (torch.Size([3, 3]), 10)
    """
    check_positive("n", n)
    if check_positive("reach", reach) > MAX_REACH:
        raise ValueError(
            f"reach must be 1..{MAX_REACH} pixels, got {reach}: a reach of r costs "
            "(2 r + 1)^2 forward passes"
        )
    if result.norm != "mask":
        raise ValueError(
            f"the audit's trigger is a whole-image {result.norm} perturbation: it has no place "
            "to move (trigger_place takes a mask trigger: method='cleanse', 'source', "
            "'compare', 'stamp' or 'weights')"
        )
    cls = _audit_class(result, target)
    inputs = check_tensor("images", model.check_images(inputs), ndim=4, integer=False)
    before_count = model.spent.forward
    x = inputs[_images_to_stamp(model, inputs, result, cls, n)[0]]
    mask, pattern = result.masks[cls], result.patterns[cls]
    size = 2 * reach + 1
    success, margin = torch.zeros(size, size), torch.zeros(size, size)
    with torch.no_grad():
        for i, dr in enumerate(range(-reach, reach + 1)):
            for j, dc in enumerate(range(-reach, reach + 1)):
                m, p = _moved(mask, dr, dc), _moved(pattern, dr, dc)
                out = model(apply_trigger(x, m, p, "mask"))
                success[i, j] = (out.argmax(-1) == cls).float().mean()
                margin[i, j] = margin_over_runner_up(out, cls).median()
    return TriggerPlace(
        cls=int(cls),
        reach=reach,
        n=len(x),
        success=success,
        margin=margin,
        forward_passes=model.spent.forward - before_count,
    )


@renamed_arguments(cls="target")
def stamped_examples(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    result: AuditResult,
    target: int | None = None,
    n: int = 8,
) -> StampedExamples:
    """Stamp ``result``'s trigger for class ``target`` (default: the audit's target, else the
    most anomalous class) on the first ``n`` of ``inputs [m, C, H, W]`` the model does not
    already put in that class (of those it puts in the trigger's source class, when the audit
    found it fires on one: ``result.sources``).

    >>> import explorer
    >>> from explorer.analysis.backdoor_audit import audit
    >>> from explorer.studies.auditing import make_mlp
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> x = torch.rand(64, 1, 28, 28)
    >>> r = audit(m, x, method="stamp", budget=300)
    >>> ex = stamped_examples(m, result=r, inputs=x, target=3, n=4)
    >>> ex.stamped.shape, ex.after.shape, 0.0 <= ex.success <= 1.0
    (torch.Size([4, 1, 28, 28]), torch.Size([4]), True)
    """
    check_positive("n", n)
    cls = _audit_class(result, target)
    inputs = check_tensor("images", model.check_images(inputs), ndim=4, integer=False)
    before_count = model.spent.forward
    # a trigger found to fire on one source class only is stamped on that class's digits
    keep, pred = _images_to_stamp(model, inputs, result, cls, n)
    with torch.no_grad():
        clean, before = inputs[keep], pred[keep]
        stamped = result.stamp(clean, cls)
        after = model(stamped).argmax(-1)
    return StampedExamples(
        cls=int(cls),
        images=clean,
        stamped=stamped,
        before=before,
        after=after,
        success=float((after == cls).float().mean()),
        forward_passes=model.spent.forward - before_count,
    )
