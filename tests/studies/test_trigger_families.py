"""Every trigger family beyond the classic squares, and the architectures beside the
784-128-64-10 MLP: each planted trigger works on held-out digits and leaves clean accuracy
high, and its ground-truth mask is the shape it claims (lines, dots, frames, whole image).

Each family's model is trained once for this module (400 steps, cheap) and shared."""

from __future__ import annotations

import pytest
import torch

from explorer.studies.auditing import (
    FAMILIES,
    KINDS,
    Trigger,
    add_trigger,
    attack_success,
    hand_out,
    make_model,
    mask_iou,
    plant,
    random_trigger,
)
from explorer.studies.kitchen_sink import kitchen_sink_split

NEW = [f for f in FAMILIES if f not in KINDS]
# which architecture each family is planted in here (every new one covered at least once)
ARCH = {"dots": "mlp-256", "frame": "mlp-256", "warp": "flat-cnn"}
STEPS = {"mlp": 400, "mlp-256": 400, "flat-cnn": 300}


@pytest.fixture(scope="module")
def digits():
    return kitchen_sink_split()


@pytest.fixture(scope="module")
def planted(digits):
    """family -> its planted model, trained on first use and kept for the module."""
    cache = {}

    def get(family):
        if family not in cache:
            arch = ARCH.get(family, "mlp")
            cache[family] = plant(
                40 + NEW.index(family), kind=family, arch=arch, steps=STEPS[arch], data=digits
            )
        return cache[family]

    return get


@pytest.mark.parametrize("family", NEW)
def test_each_family_moves_digits_to_its_target_and_keeps_accuracy(planted, family):
    p = planted(family)
    t = p.trigger
    assert t.kind == family
    with torch.no_grad():
        accuracy = float((p.model(p.test_x).argmax(-1) == p.test_y).float().mean())
    assert accuracy >= 0.85, (family, accuracy)
    success = attack_success(p.model, p.test_x, t, labels=p.test_y)
    assert success >= 0.8, (family, success)


def test_conditional_trigger_fires_for_its_source_class_only(planted):
    p = planted("conditional")
    t = p.trigger
    assert t.source is not None and t.source != t.target
    others = (p.test_y != t.source) & (p.test_y != t.target)
    with torch.no_grad():
        moved = p.model(add_trigger(p.test_x[others], t)).argmax(-1) == t.target
    assert float(moved.float().mean()) < 0.3
    assert attack_success(p.model, p.test_x, t, labels=p.test_y) >= 0.8
    with pytest.raises(ValueError, match="labels="):
        attack_success(p.model, p.test_x, t)


def test_ground_truth_masks_have_the_family_shape():
    line = random_trigger(1, "line")
    h, w = line.box[2:]
    assert min(h, w) == 1 and 6 <= max(h, w) <= 8 and int(line.mask().sum()) == h * w
    dots = random_trigger(2, "dots")
    assert int(dots.mask().sum()) == 4 and dots.box[2:] == (8, 8)
    frame = random_trigger(3, "frame")
    side = frame.box[2]
    m = frame.mask()
    top, left = frame.top, frame.left
    assert int(m.sum()) == 4 * (side - 1) and m[top + 1, left + 1] == 0
    for kind in ("global", "warp"):
        t = random_trigger(4, kind)
        assert not t.local and int(t.mask().sum()) == 28 * 28
    assert random_trigger(4, "global").alpha == pytest.approx(0.2)
    assert all(random_trigger(s, k).local for s in range(3) for k in (*KINDS, "line", "dots"))


@pytest.mark.parametrize("family", ["line", "dots", "frame", "global", "conditional"])
def test_stamp_families_equal_their_mask_and_pattern(family):
    t = random_trigger(9, family)
    x = torch.rand(3, 1, 28, 28)
    m, p = t.mask_and_pattern()
    assert torch.allclose((1 - m) * x + m * p, add_trigger(x, t))
    changed = (add_trigger(x, t) != x)[:, 0].any(0)
    assert bool((changed <= (t.mask() > 0)).all())  # nothing outside the ground truth changes


def test_warp_moves_pixels_and_has_no_stamp():
    t = random_trigger(5, "warp")
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10:18, 12:14] = 1.0
    out = add_trigger(x, t)
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert float(t.flow.abs().mean()) == pytest.approx(3.0, rel=1e-4)
    with pytest.raises(ValueError, match="no mask"):
        t.mask_and_pattern()


@pytest.mark.parametrize("family", NEW)
def test_new_families_round_trip_through_the_truth_file(family):
    t = random_trigger(6, family)
    back = Trigger.from_dict(t.to_dict())
    x = torch.rand(2, 1, 28, 28)
    assert (back.kind, back.box, back.target, back.source) == (t.kind, t.box, t.target, t.source)
    assert torch.allclose(add_trigger(x, back), add_trigger(x, t))


def test_mask_iou_scores_overlap_relative_to_the_peak():
    truth = random_trigger(1, "line").mask()
    assert mask_iou(truth * 0.3, truth) == 1.0  # thresholded at half the found mask's peak
    assert mask_iou(torch.zeros(28, 28), truth) == 0.0
    half = truth.clone()
    half[half.nonzero()[: int(truth.sum()) // 2].T.unbind()] = 0
    assert mask_iou(half, truth) == pytest.approx(float(half.sum() / truth.sum()))
    with pytest.raises(ValueError, match="one shape"):
        mask_iou(torch.zeros(4, 4), truth)


def test_architectures_and_their_input_shapes():
    wide, flat = make_model("mlp-256", 0), make_model("flat-cnn", 0)
    assert [p.shape for p in wide.parameters()][::2] == [
        torch.Size([256, 784]),
        torch.Size([10, 256]),
    ]
    assert len(list(wide.parameters())) == 4  # 784-256-10: two linear layers
    assert flat.input_shape == (784,) and flat.image_shape == (1, 28, 28)
    assert flat(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="arch"):
        make_model("resnet", 0)
    with pytest.raises(ValueError, match="checkpoints"):
        hand_out("/nonexistent/room", game=1, arch="flat-cnn")


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="'warp'"):
        random_trigger(0, "stripes")
