"""What an audit's reconstructed trigger does to real inputs: stamped examples, before and after.

``stamped_examples(model, inputs, *, result=, cls=)`` stamps class ``cls``'s reconstructed trigger
(``AuditResult.stamp``) onto the first ``n`` images not already predicted as ``cls`` and
returns both versions with the model's predictions, and the share of the stamped ones sent
to ``cls``. The AuditView shows it for the class a user clicks; a notebook can check the
trigger on digits the audit never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explorer._checks import check_index, check_positive, check_tensor
from explorer.analysis._display import MAX_ROWS, html_table, png_data_url
from explorer.analysis.backdoor_audit import AuditResult
from explorer.models.handle import ModelHandle


@dataclass(frozen=True)
class StampedExamples:
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

    def __repr__(self) -> str:
        return (
            f"StampedExamples(class {self.cls}: {len(self.images)} images, "
            f"{self.success:.0%} sent to {self.cls})"
        )

    def _repr_html_(self) -> str:
        """Each image beside its stamped twin, with the model's prediction on both."""
        rows = [
            (f"image {i}", int(self.before[i]), int(self.after[i]))
            for i in range(min(len(self.images), MAX_ROWS))
        ]
        pictures = "".join(
            f"<img src='{png_data_url(self.images[i])}' style='margin:2px'>"
            f"<img src='{png_data_url(self.stamped[i])}' style='margin:2px 8px 2px 2px'>"
            for i in range(min(len(self.images), 6))
        )
        table = html_table(
            f"Trigger of class {self.cls}: {self.success:.0%} of stamped images sent to it",
            ("image", "predicted", "predicted when stamped"),
            rows,
            "each image, then the same image stamped",
        )
        return table + f"<div>{pictures}</div>"


def stamped_examples(
    model: ModelHandle,
    inputs: torch.Tensor,
    *,
    result: AuditResult,
    cls: int | None = None,
    n: int = 8,
) -> StampedExamples:
    """Stamp ``result``'s trigger for ``cls`` (default: its target, else the most anomalous
    class) on the first ``n`` of ``images [m, C, H, W]`` the model does not already put in
    ``cls``.

    >>> import explorer
    >>> from explorer.analysis.backdoor_audit import audit
    >>> from explorer.studies.auditing import make_mlp
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> x = torch.rand(64, 1, 28, 28)
    >>> r = audit(m, x, method="stamp", budget=300)
    >>> ex = stamped_examples(m, result=r, inputs=x, cls=3, n=4)
    >>> ex.stamped.shape, ex.after.shape, 0.0 <= ex.success <= 1.0
    (torch.Size([4, 1, 28, 28]), torch.Size([4]), True)
    """
    check_positive("n", n)
    n_classes = len(result.anomaly)
    if cls is None:
        cls = result.target if result.target is not None else int(result.anomaly.argmax())
    cls = check_index("cls", cls, n_classes, f"(classes of {result.model})")
    inputs = check_tensor("images", model.check_images(inputs), ndim=4, integer=False)
    before_count = model.spent.forward
    with torch.no_grad():
        pred = model(inputs).argmax(-1)
        keep = (pred != cls).nonzero().flatten()[:n]
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
