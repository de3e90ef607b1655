"""``trigger_place``: how far an audit's trigger can move and still work, so a box is read
as precisely as the model pins it (a CNN answers to its trigger moved by a pixel or two;
docs/auditing.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import explorer
from explorer.analysis import AuditResult, trigger_place

torch.set_num_threads(1)


def square_reader(bar: float) -> nn.Module:
    """Class 3's logit is the count of white pixels in the 3x3 square at (10, 10) less
    ``bar``; every other logit is 0. A trigger overlapping it by more than ``bar`` pixels
    sends an image to 3."""
    count, out = nn.Linear(784, 1, bias=False), nn.Linear(1, 10)
    with torch.no_grad():
        count.weight.copy_(square(10, 10).flatten()[None])
        out.weight.zero_()
        out.bias.zero_()
        out.weight[3, 0], out.bias[3] = 1.0, -bar
    return nn.Sequential(nn.Flatten(), count, nn.ReLU(), out)


def found(mask: torch.Tensor, norm: str = "mask") -> AuditResult:
    """An audit result whose class-3 trigger is ``mask`` stamped white."""
    masks, patterns = torch.zeros(10, 28, 28), torch.zeros(10, 1, 28, 28)
    masks[3], patterns[3, 0] = mask, mask
    return AuditResult(
        model="reader", method="cleanse", flagged=(3,), anomaly=torch.arange(10.0),
        masks=masks, patterns=patterns, success=torch.ones(10), boxes=((0, 0, 0, 0),) * 10,
        forward_passes=0, backward_passes=0, examples=0, budget=None, norm=norm,
    )  # fmt: skip


def square(top: int, left: int) -> torch.Tensor:
    m = torch.zeros(28, 28)
    m[top : top + 3, left : left + 3] = 1
    return m


@pytest.mark.parametrize(
    ("bar", "tolerance", "working"),
    # all 9 pixels needed: pinned; 4 of 9: one pixel each way (3 x 3 moves); any overlap: 2
    [(8.5, (0, 0), 1), (3.5, (1, 1), 9), (0.5, (2, 2), 25)],
)
def test_the_place_is_as_precise_as_the_model_pins_it(bar, tolerance, working):
    model = explorer.load(square_reader(bar), input_shape=(1, 28, 28), name="reader")
    images = torch.zeros(12, 1, 28, 28)
    place = trigger_place(model, images, result=found(square(10, 10)))
    assert place.tolerance == tolerance and int(place.works.sum()) == working
    assert place.forward_passes == 26 and place.n == 12 and place.cls == 3
    # the margin is the overlap less the bar: 9 where found, 6 one row off, 1 at (2, 2)
    assert place.margin[2, 2] == pytest.approx(9 - bar)
    assert place.margin[1, 2] == pytest.approx(6 - bar)
    assert place.margin[0, 0] == pytest.approx(1 - bar)
    words = repr(place)
    assert ("pinned to the pixel" in words) is (tolerance == (0, 0))
    assert len(place.to_dataframe()) == 25


def test_a_trigger_found_off_the_models_place_says_where_it_works():
    """Found one row up and two columns left of where the model reads: it works only moved
    back, and the table says by how much."""
    model = explorer.load(square_reader(8.5), input_shape=(1, 28, 28), name="reader")
    place = trigger_place(model, torch.zeros(4, 1, 28, 28), result=found(square(9, 8)))
    assert place.works.nonzero().tolist() == [[3, 4]]  # moved (+1, +2)
    assert place.tolerance == (1, 2)


def test_a_whole_image_trigger_or_a_bad_reach_is_refused():
    model = explorer.load(square_reader(0.5), input_shape=(1, 28, 28), name="reader")
    images = torch.zeros(4, 1, 28, 28)
    with pytest.raises(ValueError, match="whole-image blend perturbation: it has no place"):
        trigger_place(model, images, result=found(square(10, 10), norm="blend"))
    with pytest.raises(ValueError, match=r"reach must be 1\.\.8 pixels, got 9"):
        trigger_place(model, images, result=found(square(10, 10)), reach=9)
    with pytest.raises(ValueError, match="reach must be a positive integer, got 0"):
        trigger_place(model, images, result=found(square(10, 10)), reach=0)
    with pytest.raises(ValueError, match="every image is already predicted as class 3"):
        trigger_place(model, torch.ones(4, 1, 28, 28), result=found(square(10, 10)))
