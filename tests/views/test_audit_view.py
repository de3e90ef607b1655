"""AuditView without a browser: it encodes the AuditResult it is given, a class change stamps
that class's trigger on held-out images, and the budget meter follows the model's passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

import explorer
from explorer.analysis.backdoor_audit import AuditResult
from explorer.analysis.trigger_examples import stamped_examples
from explorer.studies.auditing import make_mlp
from explorer.views import AuditView

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return explorer.load(make_mlp(0), input_shape=(1, 28, 28), name="audited")


@pytest.fixture(scope="module")
def images():
    return torch.rand(80, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _result(flagged=(4,)):
    """An audit result by hand: class c's trigger is a c+2 square of value c/9 at (c, 2c)."""
    masks, patterns, boxes = torch.zeros(10, 28, 28), torch.zeros(10, 1, 28, 28), []
    for c in range(10):
        s = c + 2
        masks[c, c : c + s, 2 * c : 2 * c + s] = 1
        patterns[c, 0, c : c + s, 2 * c : 2 * c + s] = c / 9
        boxes.append((c, 2 * c, s, s))
    anomaly = torch.linspace(-1, 3, 10)
    return AuditResult(
        model="audited",
        method="cleanse",
        flagged=tuple(flagged),
        anomaly=anomaly,
        masks=masks,
        patterns=patterns,
        success=torch.linspace(0, 1, 10),
        boxes=tuple(boxes),
        forward_passes=1234,
        backward_passes=1200,
        examples=40_000,
        budget=5000,
        threshold=2.6,
    )


def test_the_view_encodes_every_class_of_the_result(model, images):
    result = _result()
    view = AuditView(result, model, images, n_examples=5)
    assert view.error == ""
    assert view.selected == 4  # the target first
    assert view.n_classes == 10 and view.flagged == [4] and view.threshold == pytest.approx(2.6)
    assert "reaches 2.6" in view.rule and "leads every other class by 1" in view.rule
    assert np.allclose(view.anomaly.numpy(), result.anomaly.numpy())
    assert np.allclose(view.success.numpy(), result.success.numpy())
    assert np.array_equal(view.masks.numpy(), result.masks.numpy())
    assert view.boxes == [list(b) for b in result.boxes]
    assert view.audit_spent == {
        "forward": 1234,
        "backward": 1200,
        "examples": 40_000,
        "budget": 5000,
    }


def test_clicking_a_class_shows_its_trigger_and_stamped_examples(model, images):
    result = _result()
    view = AuditView(result, model, images, n_examples=5)
    view.selected = 7
    assert view.error == ""
    assert np.allclose(view.pattern.numpy(), result.patterns[7, 0].numpy(), atol=1 / 255)
    expected = stamped_examples(model, result=result, inputs=images, target=7, n=5)
    assert view.before == expected.before.tolist() and view.after == expected.after.tolist()
    stamped = view.stamped.numpy()
    assert stamped.shape == (5, 28, 28)
    assert np.allclose(stamped, expected.stamped[:, 0].numpy(), atol=1 / 255)
    # the trigger of class 7 is in the stamped images, in its box, and nowhere else changed
    shown = view.images.numpy()
    assert np.allclose(stamped[:, 7:16, 14:23], 7 / 9, atol=1 / 255)
    outside = np.ones((28, 28), bool)
    outside[7:16, 14:23] = False
    assert np.allclose(stamped[:, outside], shown[:, outside], atol=1 / 255)
    assert view.stamped_success == pytest.approx(expected.success)
    assert all(b != 7 for b in view.before)  # only images not already in the class


def test_the_budget_meter_follows_the_models_passes(model, images):
    view = AuditView(_result(), model, images, n_examples=3)
    before = view.spent["forward"]
    assert before == model.spent.forward
    view.selected = 2  # two passes: predictions before and after the stamp
    assert view.spent["forward"] == before + 2 == model.spent.forward
    assert view.spent["examples"] > 0
    view.selected = 5
    view.selected = 2  # cached: no new pass
    assert view.spent["forward"] == model.spent.forward == before + 4


def test_how_far_the_trigger_can_move_is_measured_on_request(model, images):
    """The place is not measured until asked (26 passes), then it is the analysis's own
    ``trigger_place`` for the selected class, cached; another class starts unmeasured."""
    from explorer.analysis import trigger_place

    result = _result()
    view = AuditView(result, model, images, n_examples=3)
    assert view.movable and view.place == "" and view.place_success == []
    before = model.spent.forward
    view.measure_place()
    assert view.error == "" and model.spent.forward == before + 26
    expected = trigger_place(model, images, result=result, target=4)
    assert view.place == expected.description and view.place.startswith("class 4: ")
    assert view.place_success == expected.success.tolist()
    assert len(view.place_success) == 5 and all(len(row) == 5 for row in view.place_success)
    view.selected = 6
    assert view.place == "" and view.place_success == []
    view.selected = 4  # cached: shown again without a pass
    spent = model.spent.forward
    assert view.place == expected.description and model.spent.forward == spent


def test_a_whole_image_trigger_has_no_place_to_measure(model, images):
    import dataclasses

    view = AuditView(dataclasses.replace(_result(), norm="blend"), model, images)
    assert view.movable is False
    view.measure_place()
    assert "whole-image blend perturbation: it has no place" in view.error


def test_a_clean_result_starts_on_the_most_anomalous_class(model, images):
    view = AuditView(_result(flagged=()), model, images)
    assert view.flagged == [] and view.selected == 9


def test_bad_input_is_refused(model, images):
    view = AuditView(_result(), model, images)
    with pytest.raises(traitlets.TraitError, match=r"valid selecteds are 0..9"):
        view.selected = 10
    with pytest.raises(traitlets.TraitError, match="n_examples"):
        view.n_examples = 0
    with pytest.raises(TypeError, match="AuditResult"):
        AuditView({"flagged": [1]}, model, images)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 1, 28, 28\]"):
        AuditView(_result(), model, torch.rand(4, 784))


def test_stamping_when_every_image_is_already_in_the_class_is_reported(model):
    blank = torch.zeros(20, 1, 28, 28)
    with torch.no_grad():
        cls = int(model(blank[:1]).argmax())
    view = AuditView(_result(), model, blank)
    view.selected = cls
    assert f"already predicted as class {cls}" in view.error


def test_the_view_shows_the_tier_and_its_evidence(model, images):
    import dataclasses

    near = dataclasses.replace(
        _result(flagged=()),
        suspicious=(9,),
        verdict="suspicious",
        evidence="cleanse: class 9: a 3x3 patch, works on 87%, leads every other class by 3.9",
        shapes=tuple(f"a {c + 2}x{c + 2} patch" for c in range(10)),
    )
    assert near.verdict == "suspicious" and near.target == 9 and not near.clean
    view = AuditView(near, model, images, n_examples=3)
    assert view.verdict == "suspicious" and view.suspicious == [9] and view.flagged == []
    assert "87%" in view.evidence and view.shapes[9] == "a 11x11 patch"
    assert view.selected == 9 and "suspicious (amber)" in view.rule
    assert "suspicious class 9" in repr(near) and "87%" in repr(near)
    assert "suspicious" in near._repr_html_() and "87%" in near._repr_html_()
    with pytest.raises(ValueError, match="disagrees"):
        dataclasses.replace(near, verdict="clean")


def test_the_rule_under_the_chart_is_the_deciding_methods(model, images):
    # the weight comparison flags at z x success >= 9 with a trigger that works on >= 90%;
    # the caption said "reaches 10 ... works on >= 95%" (its result kept Z_THRESHOLD and the
    # view the mask search's 95%), so a reader could not tell why a class at 92% was red
    import dataclasses

    compare = dataclasses.replace(_result(), method="compare", threshold=9.0, min_success=0.9)
    view = AuditView(compare, model, images, n_examples=3)
    assert "reaches 9 and the trigger works on >= 90%" in view.rule, view.rule
    assert "works on 70%-90%" in view.rule and view.min_success == pytest.approx(0.9)
    view = AuditView(_result(), model, images, n_examples=3)  # the mask search's own
    assert "works on >= 95%" in view.rule and view.min_success == pytest.approx(0.95)


def test_a_one_source_trigger_says_whose_digits_it_was_measured_on(model, images):
    # a trigger for 7s only "works on 100%" of the 7s; the view said "of held-out images"
    import dataclasses

    sources = (None,) * 9 + (7,)
    view = AuditView(dataclasses.replace(_result(), sources=sources), model, images)
    assert view.sources == [-1] * 9 + [7]
    assert AuditView(_result(), model, images).sources == [-1] * 10
