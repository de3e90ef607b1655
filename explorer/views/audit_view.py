"""``AuditView``: an audit's per-class masks and anomaly scores, and the trigger of one class.

The view encodes an ``AuditResult`` (``analysis.audit``, in ``analysis.backdoor_audit``): one mask image per class beside
the anomaly bar chart (flagged classes in red, the flag threshold drawn), and below them the
selected class's reconstructed trigger (mask and pattern), its box and success rate, and
stamped examples (``analysis.trigger_examples``) with the model's prediction before and after
the stamp. A click on a mask or a bar sets ``selected``; the kernel stamps that class's
trigger on held-out images and sends them back. "How far can it move?" measures the
selected trigger's place (``analysis.trigger_place``, 26 passes, on request): where the
trigger still works moved by up to 2 pixels, so a CNN's box reads as the neighbourhood it
is. The budget meter shows the passes the audit
spent against its budget; under it, as under every view, the passes the model has run so
far (``ModelHandle.spent``, the base widget's ``spent``), updated after each click.
"""

from __future__ import annotations

from typing import Any

import torch
import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.backdoor_audit import (
    LEAD_RATIO,
    LEAD_SUCCESS,
    MIN_LEAD,
    MIN_MARGIN,
    MIN_SUCCESS,
    NEAR_SUCCESS,
    AuditResult,
)
from explorer.analysis.trigger_examples import (
    StampedExamples,
    TriggerPlace,
    stamped_examples,
    trigger_place,
)
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget, check_range
from explorer.views._reporting import page_request, reports_errors
from explorer.views.serialize import Tensor, esm, images_for_display


class AuditView(ExplorerWidget):
    """Browse an audit: which classes look planted, and what each class's trigger does.

    Args:
        result: an ``AuditResult`` of ``audit(model, ...)``.
        model: the audited handle (runs the stamped examples).
        inputs: held-out images ``[n, C, H, W]`` to stamp (clean images, not the audit's).
        n_examples: stamped examples shown.

    >>> import torch, explorer
    >>> from explorer.analysis.backdoor_audit import audit
    >>> from explorer.studies.auditing import make_mlp
    >>> m = explorer.load(make_mlp(0), input_shape=(1, 28, 28))
    >>> x = torch.rand(64, 1, 28, 28)
    >>> view = AuditView(audit(m, x, method="stamp", budget=300), m, x, n_examples=4)
    >>> view.selected = 7
    >>> view.masks["shape"], view.stamped["shape"], len(view.after)
    ([10, 28, 28], [4, 28, 28], 4)
    """

    _esm = esm("audit_view.js")
    # a new class stamps its trigger and runs the model on the examples: on the worker
    # thread, with Cancel

    selected = traitlets.Int(0, help="class whose trigger is shown").tag(sync=True)
    n_examples = traitlets.Int(6, help="stamped examples shown").tag(sync=True)

    model_name = traitlets.Unicode("", help="the audited model").tag(sync=True)
    method = traitlets.Unicode("", help="audit method: cleanse, stamp or weights").tag(sync=True)
    n_classes = traitlets.Int(0, help="output classes").tag(sync=True)
    flagged = traitlets.List(traitlets.Int(), help="flagged classes, most anomalous first").tag(
        sync=True
    )
    verdict = traitlets.Unicode(
        "clean", help="the audit's verdict: flagged, suspicious (a near miss) or clean"
    ).tag(sync=True)
    evidence = traitlets.Unicode("", help="why, in words, per method").tag(sync=True)
    suspicious = traitlets.List(
        traitlets.Int(), help="near-miss classes (suspicious, not flagged)"
    ).tag(sync=True)
    shapes = traitlets.List(
        traitlets.Unicode(), help="per class the mask's shape in words (a 1x7 line, 4 dots)"
    ).tag(sync=True)
    threshold = traitlets.Float(0.0, help="anomaly a class must reach to be flagged").tag(sync=True)
    min_success = traitlets.Float(MIN_SUCCESS, help="success a flagged trigger must reach").tag(
        sync=True
    )
    rule = traitlets.Unicode("", help="when the method flags a class, in words").tag(sync=True)
    sources = traitlets.List(
        traitlets.Int(),
        help="per class, the one source class whose digits its trigger moves (-1: any class)",
    ).tag(sync=True)
    anomaly = Tensor("float32", help="payload [class]: the method's anomaly score").tag(sync=True)
    success = Tensor(
        "float32", help="payload [class]: share of held-out images the trigger sends to the class"
    ).tag(sync=True)
    masks = Tensor(
        "uint8", lo=0.0, hi=1.0, help="payload [class, H, W]: reconstructed mask per class"
    ).tag(sync=True)
    boxes = traitlets.List(
        traitlets.List(traitlets.Int()), help="per class (top, left, height, width)"
    ).tag(sync=True)
    pattern = Tensor(
        "uint8",
        lo=0.0,
        hi=1.0,
        help="payload [H, W]: the selected class's trigger pattern (drawn where its mask is)",
    ).tag(sync=True)
    images = Tensor("uint8", lo=0.0, hi=1.0, help="payload [n, H, W]: clean held-out images").tag(
        sync=True
    )
    stamped = Tensor(
        "uint8", lo=0.0, hi=1.0, help="payload [n, H, W]: the same, trigger stamped"
    ).tag(sync=True)
    before = traitlets.List(traitlets.Int(), help="prediction on each clean image").tag(sync=True)
    after = traitlets.List(traitlets.Int(), help="prediction on each stamped image").tag(sync=True)
    stamped_success = traitlets.Float(
        0.0, help="share of the shown stamped images sent to the selected class"
    ).tag(sync=True)
    movable = traitlets.Bool(
        True, help="whether the trigger is a mask with a place (False: a whole-image pattern)"
    ).tag(sync=True)
    place = traitlets.Unicode(
        "", help="the selected trigger's place in words once measured ('' until then)"
    ).tag(sync=True)
    place_success = traitlets.List(
        traitlets.List(traitlets.Float()),
        help="[rows moved][columns moved]: share sent to the class, the trigger moved by "
        "-2..2 pixels (centre: where found); empty until measured",
    ).tag(sync=True)
    audit_spent = traitlets.Dict(
        help="{forward, backward, examples, budget}: what the audit spent (budget -1: none)"
    ).tag(sync=True)

    @renamed_arguments(images="inputs")
    def __init__(
        self,
        result: AuditResult,
        model: ModelHandle,
        inputs: torch.Tensor,
        *,
        n_examples: int = 6,
        **kwargs: Any,
    ) -> None:
        if not isinstance(result, AuditResult):
            raise TypeError(f"AuditView shows an AuditResult, got {type(result).__name__}")
        self.result = result
        self.model = model
        self.inputs = model.check_images(inputs)
        self._examples: dict[tuple[int, int], StampedExamples] = {}
        self._places: dict[int, TriggerPlace] = {}
        n = len(result.anomaly)
        first = result.target if result.target is not None else result.most_anomalous
        super().__init__(
            selected=first,
            n_examples=n_examples,
            model_name=result.model,
            method=result.method,
            n_classes=n,
            flagged=list(result.flagged),
            verdict=result.verdict,
            evidence=result.evidence,
            suspicious=list(result.suspicious),
            shapes=list(result.shapes),
            threshold=float(result.threshold),
            min_success=float(result.min_success),
            sources=[-1 if s is None else int(s) for s in (result.sources or (None,) * n)],
            rule=_rule(result),
            anomaly=result.anomaly,
            success=result.success,
            masks=result.masks,
            boxes=[list(b) for b in result.boxes],
            audit_spent={
                "forward": result.forward_passes,
                "backward": result.backward_passes,
                "examples": result.examples,
                "budget": -1 if result.budget is None else result.budget,
            },
            pattern=None,
            images=None,
            stamped=None,
            movable=result.norm == "mask",
            **kwargs,
        )
        self._show()

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> int:
        return check_range("selected", proposal["value"], len(self.result.anomaly), "(classes)")

    @traitlets.validate("n_examples")
    def _valid_n(self, proposal: dict[str, Any]) -> int:
        if not 1 <= proposal["value"] <= 32:
            raise traitlets.TraitError(f"n_examples must be 1..32, got {proposal['value']}")
        return proposal["value"]

    def examples(self, cls: int) -> StampedExamples:
        """The stamped examples of class ``cls`` (cached)."""
        key = (cls, self.n_examples)
        if key not in self._examples:
            self._examples[key] = stamped_examples(
                self.model, result=self.result, inputs=self.inputs, target=cls, n=self.n_examples
            )
        return self._examples[key]

    @traitlets.observe("selected", "n_examples")
    @reports_errors
    def _show(self, change: dict[str, Any] | None = None) -> None:
        cls = self.selected
        ex = self.examples(cls)
        with self.hold_sync():
            self.pattern = images_for_display(self.result.patterns[cls])
            self.images = images_for_display(ex.images)
            self.stamped = images_for_display(ex.stamped)
            self.before = [int(v) for v in ex.before]
            self.after = [int(v) for v in ex.after]
            self.stamped_success = ex.success
            self._show_place(self._places.get(cls))

    def _show_place(self, place: TriggerPlace | None) -> None:
        self.place = "" if place is None else place.description
        self.place_success = [] if place is None else place.success.tolist()

    @reports_errors
    def measure_place(self) -> TriggerPlace:
        """How far the selected class's trigger can move and still work
        (``analysis.trigger_place`` on the view's images, cached per class)."""
        cls = self.selected
        if cls not in self._places:
            self._places[cls] = trigger_place(
                self.model, self.inputs, result=self.result, target=cls
            )
        with self.hold_sync():
            self._show_place(self._places[cls])
        return self._places[cls]

    @page_request(background=True)
    def _page_place(self) -> None:
        self.measure_place()


def _rule(result: AuditResult) -> str:
    # the success a flag needs is the deciding method's (the global search and the weight
    # comparison ask 90%, the mask searches 95%), as is the threshold the chart draws
    works = f"the trigger works on >= {result.min_success:.0%} of held-out images"
    near = (
        f"; suspicious (amber): a near miss, the leading class's trigger works on "
        f"{NEAR_SUCCESS:.0%}-{result.min_success:.0%} or its anomaly is within 10% of the "
        "threshold"
    )
    # the lead rule belongs to the mask search (cleanse, or "all" when cleanse decided)
    if result.method not in ("cleanse", "all") or result.threshold != MIN_MARGIN:
        return f"flagged (red) when the anomaly reaches {result.threshold:g} and {works}" + near
    return (
        f"flagged (red) when the anomaly reaches {result.threshold:g} (dashed) and {works}, "
        f"or when it leads every other class by {MIN_LEAD:g} (and is {LEAD_RATIO:g}x the runner-up) "
        f"with a trigger that works on >= {LEAD_SUCCESS:.0%}" + near
    )
