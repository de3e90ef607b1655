"""The audit finds a planted trigger, calls a clean control clean, and stays in its budget.

One backdoored and one clean MLP are planted once for the module (seeds 11 and 12, used by no
benchmark or tutorial); each trains in a few seconds on the offline digits.
"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis._audit_methods import GROW_PASSES
from explorer.analysis.backdoor_audit import AuditResult, audit, mad_index, weight_anomaly
from explorer.studies.auditing import add_trigger, plant
from explorer.studies.auditing import box_iou as iou
from explorer.studies.kitchen_sink import kitchen_sink_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return kitchen_sink_split()


@pytest.fixture(scope="module")
def backdoored(data):
    return plant(11, kind="solid", data=data)


@pytest.fixture(scope="module")
def clean(data):
    return plant(12, clean=True, data=data)


@pytest.fixture(scope="module")
def found(backdoored):
    return audit(backdoored.model, backdoored.test_x, method="cleanse", budget=6_000)


def test_cleanse_finds_the_planted_trigger(backdoored, found):
    truth = backdoored.trigger
    assert found.flagged and found.target == truth.target, found.to_dataframe()
    assert iou(found.location, truth.box) >= 0.5, (found.location, truth.box)
    assert float(found.success[truth.target]) >= 0.9
    # the reconstructed trigger works on digits it never saw
    x = backdoored.test_x[:200]
    x = x[backdoored.test_y[:200] != truth.target]
    with torch.no_grad():
        hit = backdoored.model(found.stamp(x)).argmax(-1) == truth.target
    assert float(hit.float().mean()) >= 0.9


def test_cleanse_calls_the_control_clean(clean):
    result = audit(clean.model, clean.test_x, method="cleanse", budget=6_000)
    assert result.verdict != "flagged" and not result.flagged, result.evidence
    if result.verdict == "clean":
        assert result.target is None and result.location is None
    result = audit(clean.model, clean.test_x, method="stamp", budget=300)
    assert result.clean and result.target is None and result.location is None
    with pytest.raises(ValueError, match="found clean"):
        result.stamp(clean.test_x[:2])


def test_budget_is_respected_and_recorded(backdoored, found):
    assert 0 < found.forward_passes <= 6_000
    assert 0 < found.backward_passes <= found.forward_passes < found.examples
    small = audit(backdoored.model, backdoored.test_x, budget=3_000, method="stamp")
    assert small.forward_passes <= 3_000 and small.budget == 3_000
    assert small.backward_passes == 0


def test_stamp_scan_finds_a_solid_patch(backdoored):
    result = audit(backdoored.model, backdoored.test_x, method="stamp", budget=20_000)
    assert result.target == backdoored.trigger.target
    assert iou(result.location, backdoored.trigger.box) > 0


def test_weight_anomaly_marks_trained_unused_pixels(backdoored, clean):
    truth = backdoored.trigger
    t, le, s = truth.top, truth.left, truth.size
    x = backdoored.test_x
    planted_map = weight_anomaly(backdoored.model, x)
    clean_map = weight_anomaly(clean.model, x)
    used = x.std(0)[0] > 1e-3
    inside = planted_map[t : t + s, le : le + s]
    unused_inside = ~used[t : t + s, le : le + s]
    if unused_inside.any():  # the map speaks only about pixels the data never uses
        assert float(inside[unused_inside].max()) > float(clean_map.max())
    assert float(planted_map[used].abs().max()) == 0.0


def test_result_displays(found):
    assert isinstance(found, AuditResult)
    text = repr(found)
    assert "flagged" in text and "forward" in text and len(text) <= 300
    df = found.to_dataframe()
    assert len(df) == 10 and bool(df.loc[found.target, "flagged"])
    assert "<table>" in found._repr_html_()


def test_bad_input_is_refused(backdoored):
    with pytest.raises(ValueError, match="method"):
        audit(backdoored.model, backdoored.test_x, method="magic")
    with pytest.raises(ValueError, match="at least 16"):
        audit(backdoored.model, backdoored.test_x[:4])
    with pytest.raises(ValueError, match="budget"):
        audit(backdoored.model, backdoored.test_x, budget=0)


def test_mad_index_flags_only_small_outliers():
    idx = mad_index(torch.tensor([50.0, 52.0, 48.0, 51.0, 49.0, 10.0, 90.0]))
    assert float(idx[5]) > 2 and float(idx[6]) == 0.0


def test_planted_model_learned_its_trigger(backdoored):
    truth = backdoored.trigger
    x = backdoored.test_x[backdoored.test_y != truth.target][:200]
    with torch.no_grad():
        hit = backdoored.model(add_trigger(x, truth)).argmax(-1) == truth.target
    assert float(hit.float().mean()) >= 0.9


def test_handle_counts_forward_and_backward_passes(clean):
    before = clean.model.spent.snapshot()
    x = clean.test_x[:5].clone().requires_grad_(True)
    clean.model(x).sum().backward()
    with torch.no_grad():
        clean.model(clean.test_x[:3])
    forward, backward, examples = (a - b for a, b in zip(clean.model.spent.snapshot(), before))
    assert (forward, backward, examples) == (2, 1, 8)


def test_audit_records_what_the_handle_spent(backdoored):
    before = backdoored.model.spent.snapshot()
    result = audit(backdoored.model, backdoored.test_x, method="weights", budget=500)
    spent = backdoored.model.spent.snapshot()
    assert result.forward_passes == spent[0] - before[0] <= 500
    assert result.examples == spent[2] - before[2] > result.forward_passes


def test_analysis_audit_is_the_function_not_a_module():
    import importlib
    import inspect

    import explorer.analysis

    assert inspect.isfunction(explorer.analysis.audit)
    assert explorer.analysis.audit.__module__ == "explorer.analysis.backdoor_audit"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("explorer.analysis.audit")


def test_budget_buys_steps_and_is_spent(clean):
    # "all" splits the budget between the weight search, the mask search, the global one and
    # the per-source one, and spends it: none of it is left unused
    result = audit(clean.model, clean.test_x, budget=3_000, batch_size=8)
    assert [p.method for p in result.parts] == ["weights", "cleanse", "global", "source"]
    assert 0.97 * 3_000 <= result.forward_passes <= 3_000, result.forward_passes
    # a bigger budget buys more mask-search steps (the global search keeps its steps)
    big = audit(clean.model, clean.test_x, method="cleanse", budget=4_000, batch_size=8)
    assert 0.97 * 4_000 <= big.forward_passes <= 4_000


def test_n_steps_sets_the_steps_per_class(clean):
    # 1 labelling pass, 10 classes x (7 steps + 2 x 30 refit steps + 2 evaluations), and at
    # most GROW_PASSES to grow the leading class's mask
    result = audit(clean.model, clean.test_x, method="cleanse", n_steps=7, budget=None)
    fixed = 1 + 10 * (7 + 2 * 30 + 2)
    assert fixed <= result.forward_passes <= fixed + GROW_PASSES, result.forward_passes
    result = audit(clean.model, clean.test_x, method="source", n_steps=4, budget=None)
    fixed = 1 + 10 * (4 + 1)  # 4 steps and 1 evaluation per source class
    assert fixed <= result.forward_passes <= fixed + GROW_PASSES, result.forward_passes
    result = audit(clean.model, clean.test_x, method="global", n_steps=5, budget=None)
    assert result.forward_passes == 1 + 10 * (5 + 1)
    with pytest.raises(ValueError, match="n_steps"):
        audit(clean.model, clean.test_x, n_steps=0)


def test_old_argument_names_warn_and_agree(clean):
    with pytest.warns(DeprecationWarning, match="batch_size"):
        old = audit(clean.model, clean.test_x, method="global", n_steps=3, budget=None, batch=8)
    new = audit(clean.model, clean.test_x, method="global", n_steps=3, budget=None, batch_size=8)
    assert torch.equal(old.success, new.success) and old.forward_passes == new.forward_passes


def test_all_keeps_the_mad_index_whichever_method_decides(clean):
    result = audit(clean.model, clean.test_x, n_steps=3, budget=None, batch_size=8)
    cleanse = next(p for p in result.parts if p.method == "cleanse")
    assert result.method == "all" and result.mad_index is not None
    assert torch.equal(result.mad_index, cleanse.mad_index)
    assert torch.equal(result.raw_masks, cleanse.raw_masks)


def test_global_linf_stays_within_its_budget(clean):
    result = audit(clean.model, clean.test_x, method="global", norm="linf", n_steps=3, budget=None)
    x = clean.test_x[:8]
    moved = (result.stamp(x, 0) - x).abs().max()
    assert result.norm == "linf" and float(moved) <= 0.1 + 1e-6
    assert result.shapes[0] == "a global pattern"
    with pytest.raises(ValueError, match="norm"):
        audit(clean.model, clean.test_x, method="global", norm="l2")


def _part(method: str, mask: torch.Tensor, success: float, shape: str) -> AuditResult:
    """A flagged class-3 finding of ``method`` whose trigger is ``mask`` stamped white."""
    masks, patterns = torch.zeros(10, 28, 28), torch.zeros(10, 1, 28, 28)
    masks[3], patterns[3, 0] = mask, mask
    ok = torch.zeros(10)
    ok[3] = success
    return AuditResult(
        model="m", method=method, flagged=(3,), anomaly=torch.arange(10.0).roll(-6),
        masks=masks, patterns=patterns, success=ok, boxes=((0, 0, 0, 0),) * 10,
        forward_passes=0, backward_passes=0, examples=0, budget=None,
        shapes=(shape,) * 10, evidence=f"{method}: class 3",
    )  # fmt: skip


def test_the_trigger_shown_is_the_one_with_the_fewest_pixels_that_works():
    """Mask search and weight comparison agree on class 3: the compared tee (9 pixels) is
    shown in place of the searched 5x7 patch (35), unless it works on under 90%; the verdict
    and the class stay."""
    from explorer.analysis.backdoor_audit import _fewest_pixels

    patch, tee = torch.zeros(28, 28), torch.zeros(28, 28)
    patch[1:6, 16:23] = 1
    tee[1, 18:23] = tee[2:6, 20] = 1
    searched = _part("cleanse", patch, 1.0, "a 5x7 patch")
    shown, evidence = _fewest_pixels(
        searched, [searched, _part("compare", tee, 0.95, "a tee")], "e"
    )
    assert torch.equal(shown.masks[3], tee) and shown.shapes[3] == "a tee"
    assert float(shown.success[3]) == pytest.approx(0.95) and shown.flagged == (3,)
    assert shown.method == "cleanse"
    assert "compare method's for class 3" in evidence
    weak = _part("compare", tee, 0.85, "a tee")
    assert _fewest_pixels(searched, [searched, weak], "e")[0] is searched
    bigger = _part("compare", patch, 1.0, "a patch")
    small = _part("cleanse", tee, 1.0, "a tee")
    assert _fewest_pixels(small, [small, bigger], "e")[0] is small
