"""What an audit's reconstructed trigger does to real inputs: stamped examples, before and after.

``stamped_examples(model, inputs, *, result=, target=)`` stamps class ``target``'s reconstructed
trigger (``AuditResult.stamp``) onto the first ``n`` images not already predicted as it and
returns both versions with the model's predictions, and the share of the stamped ones sent
to ``cls``. The AuditView shows it for the class a user clicks; a notebook can check the
trigger on digits the audit never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explorer._checks import check_index, check_positive, check_tensor
from explorer._deprecate import renamed_arguments
from explorer._display import MAX_ROWS, Shown, pandas, png_data_url
from explorer.analysis.audit_result import AuditResult
from explorer.models.handle import ModelHandle

__all__ = [
    "StampedExamples",
    "stamped_examples",
]


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
    n_classes = len(result.anomaly)
    if target is None:
        target = result.target if result.target is not None else int(result.anomaly.argmax())
    cls = check_index("target", target, n_classes, f"(classes of {result.model})")
    inputs = check_tensor("images", model.check_images(inputs), ndim=4, integer=False)
    before_count = model.spent.forward
    with torch.no_grad():
        pred = model(inputs).argmax(-1)
        # a trigger found to fire on one source class only is stamped on that class's digits
        source = result.sources[cls] if cls < len(result.sources) else None
        keep = ((pred != cls) if source is None else (pred == source)).nonzero().flatten()[:n]
        if len(keep) == 0 and source is not None:
            raise ValueError(
                f"no image is predicted as class {source}, the source class of class {cls}'s "
                "trigger: nothing to stamp"
            )
        if len(keep) == 0:
            raise ValueError(f"every image is already predicted as class {cls}: nothing to stamp")
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
