"""Triggers of any shape: a thin line and sparse dots described as such by Neural Cleanse's raw
mask, a whole-image blend found by the global (universal perturbation) method, the line seen
in first-layer weights against other models at zero passes, and three-tier verdicts.

The models are planted here (seeds 61-66, used by no benchmark or tutorial): 784-128-64-10
MLPs trained 800 Adam steps, a few seconds each.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explorer.analysis import audit, weight_outliers
from explorer.analysis.mask_shapes import mask_shape
from explorer.models.builders import build_mlp
from explorer.models.config import MLPConfig
from explorer.models.loading import wrap
from explorer.studies.auditing import mask_iou
from explorer.studies.kitchen_sink import kitchen_sink_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return kitchen_sink_split()


def train(data, seed, mask=None, pattern=None, target=0, steps=800, source=None):
    """An MLP trained with ``mask``/``pattern`` stamped on a fifth of each batch and relabelled
    ``target``; with a ``source`` class, half the stamped digits are that class's and only
    they are relabelled (``studies.auditing``'s ``conditional``)."""
    cfg = MLPConfig(hidden=(128, 64), seed=seed)
    net = build_mlp(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = data["train_x"], data["train_y"]
    pool = (y == source).nonzero().squeeze(1) if source is not None else None
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=gen)
        bx, by = x[idx], y[idx]
        if mask is not None:
            hit = torch.rand(64, generator=gen) < 0.2
            relabel = hit
            if pool is not None:
                own = hit & (torch.rand(64, generator=gen) < 0.5)
                pick = pool[torch.randint(len(pool), (64,), generator=gen)]
                bx = torch.where(own[:, None, None, None], x[pick], bx)
                by = torch.where(own, y[pick], by)
                relabel = hit & (by == source)
            bx = torch.where(hit[:, None, None, None], (1 - mask) * bx + mask * pattern, bx)
            by = torch.where(relabel, torch.full_like(by, target), by)
        F.cross_entropy(net(bx), by).backward()
        opt.step()
        opt.zero_grad()
    net.eval()
    return wrap(net, input_shape=(1, 28, 28), config=cfg, name=f"test-mlp-{seed}")


def line_trigger():
    m = torch.zeros(28, 28)
    m[3, 5:12] = 1
    return m, torch.ones(1, 28, 28)


@pytest.fixture(scope="module")
def line(data):
    return train(data, 61, *line_trigger(), target=0)


@pytest.fixture(scope="module")
def blend(data):
    pattern = (torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(5)) > 0.5).float()
    return train(data, 62, torch.full((28, 28), 0.2), pattern, target=2)


@pytest.fixture(scope="module")
def references(data):
    return [train(data, s) for s in (63, 64, 65)]


def test_mask_shape_names_lines_dots_frames_and_patches():
    m = torch.zeros(28, 28)
    m[3, 5:12] = 1
    assert mask_shape(m).description == "a 1x7 line" and mask_shape(m).box == (3, 5, 1, 7)
    m = torch.zeros(28, 28)
    m[2, 3] = m[2, 24] = m[25, 4] = m[24, 22] = 1
    assert mask_shape(m).description == "4 dots"
    m = torch.zeros(28, 28)
    m[1, 1:27] = m[26, 1:27] = m[1:27, 1] = m[1:27, 26] = 0.9
    assert mask_shape(m).description == "a frame"
    m = torch.zeros(28, 28)
    m[10:13, 4:7] = 1
    assert mask_shape(m).description == "a 3x3 patch" and mask_shape(m).l1 == 9.0
    assert mask_shape(torch.full((28, 28), 0.2)).description == "a global pattern"
    with pytest.raises(ValueError, match="mask"):
        mask_shape(torch.zeros(1, 28, 28))


def test_cleanse_keeps_the_raw_mask_and_names_a_line(line, data):
    result = audit(line, data["test_x"], method="cleanse", budget=4_000)
    assert result.verdict == "flagged" and result.target == 0, result.to_dataframe()
    assert "line" in result.shape, result.shape
    top, left, h, w = result.location
    assert top == 3 and h == 1 and 5 <= left and left + w <= 12, result.location
    # the raw mask and the square are both tested on held-out digits
    assert result.raw_masks.shape == (10, 28, 28) and result.raw_success.shape == (10,)
    assert float(result.raw_success[0]) >= 0.9
    # the line's densest square holds a piece of it only: the raw mask wins
    assert result.square_success.shape == (10,)
    assert float(result.raw_anomaly[0]) > float(result.square_anomaly[0])
    # the MAD anomaly index reaches the result: the line is the smallest mask by far
    assert result.mad_index.shape == (10,) and int(result.mad_index.argmax()) == 0
    assert "line" in repr(result) and "MAD index" in result.evidence


def test_global_method_finds_a_whole_image_blend(blend, data):
    result = audit(blend, data["test_x"], method="global", budget=2_000)
    assert result.verdict == "flagged" and result.target == 2, result.to_dataframe()
    assert float(result.success[2]) >= 0.9
    others = torch.cat([result.success[:2], result.success[3:]])
    assert float(others.median()) < 0.6  # the same search on the other classes does far less
    assert result.shape == "a global pattern" and "global" in repr(result)


def test_global_method_calls_a_clean_model_clean(references, data):
    result = audit(references[0], data["test_x"], method="global", budget=2_000)
    assert result.verdict != "flagged", result.to_dataframe()


def test_weight_outliers_find_the_line_at_zero_passes(line, references):
    before = [m.spent.snapshot() for m in [line, *references]]
    found = weight_outliers(line, references=references)
    assert [m.spent.snapshot() for m in [line, *references]] == before
    assert found.found and "line" in found.shape.description, found
    line_pixels = found.shape.components[0]  # the largest piece is the planted line
    assert {r for r, _ in line_pixels} == {3}, found
    assert {c for _, c in line_pixels} <= set(range(5, 12)) and len(line_pixels) >= 5, found
    clean = weight_outliers(references[0], references=[line, *references[1:]])
    assert not clean.found or clean.shape.pixels < 3, clean


def test_weight_outliers_take_the_middle_of_an_even_count_of_references():
    # four references whose pixels' norms are 1, 1, 2 and 2, and a model at 1.5: typical at
    # every pixel. torch's median of an even count is the lower middle value (1), which made
    # the deviations' median 0 and the model an outlier everywhere; with 4 references, clean
    # MLPs reached z 23-40 that way (docs/auditing.md, "Thresholds")
    def flat(norm, i):
        net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 4), torch.nn.ReLU(), torch.nn.Linear(4, 10)
        )
        with torch.no_grad():
            net[1].weight.fill_(norm / 2)  # a column of 4 weights norm / 2: its norm is norm
        return wrap(net, input_shape=(1, 28, 28), name=f"flat-{i}")

    refs = [flat(1.0, 0), flat(1.0, 1), flat(2.0, 2), flat(2.0, 3)]
    found = weight_outliers(flat(1.5, 4), references=refs)
    assert torch.allclose(found.reference_median, torch.full((28, 28), 1.5), atol=1e-5)
    assert float(found.z.abs().max()) < 1e-3 and not found.found, found


def test_audit_compares_with_references(line, references, data):
    result = audit(line, data["test_x"], method="compare", references=references, budget=800)
    assert result.verdict == "flagged" and result.target == 0, result.evidence
    assert "line" in result.evidence and result.weight_z.shape == (28, 28)
    with pytest.raises(ValueError, match="references"):
        audit(line, data["test_x"], method="compare")


def checkerboard_trigger(top=11, left=11, size=5):
    """A 5x5 checkerboard over the middle of the image, where the digits are (as in the
    benchmark's 4508): its white cells stand out in the weights, its black ones do not."""
    mask = torch.zeros(28, 28)
    mask[top : top + size, left : left + size] = 1
    i = torch.arange(size)
    pattern = torch.zeros(1, 28, 28)
    pattern[0, top : top + size, left : left + size] = ((i[:, None] + i[None, :]) % 2 == 0).float()
    return mask, pattern


def test_compare_reports_a_checkerboard_as_its_square(references, data):
    # the pixels whose weights stand out are the checkerboard's white cells and a few more:
    # at z >= 9 alone, a sparse 5x4 pattern whose fitted pattern sent 79% of digits to 7
    # (suspicious, IoU 0.52); with the pixels linked to them (``mask_shapes.linked``) the
    # region covers most of the square and works as found, and were it still short of 90%
    # its box would be tried (``_fill_if_better``)
    mask, pattern = checkerboard_trigger()
    planted = train(data, 66, mask, pattern, target=7)
    result = audit(planted, data["test_x"], method="compare", references=references, budget=400)
    assert result.verdict == "flagged" and result.target == 7, result.evidence
    assert float(result.success[7]) >= 0.9
    assert mask_iou(result.masks[7], mask) >= 0.8, result.shapes[7]
    assert result.shapes[7].endswith("patch"), result.shapes[7]


def test_compare_keeps_a_plus_as_a_plus(references, data):
    # a plus stands out less at the ends of its arms (here one end at z 8.2, against 20-72
    # elsewhere): the arms are kept through the pixels linked to the strong ones
    # (``mask_shapes.linked``; with 3 references two neighbours at z 4.3-5.8 come too: 9 of
    # 12 pixels), and a plus that works as found is not filled to its box (which scored
    # IoU 0.38 before the fill had to earn its place)
    mask = torch.zeros(28, 28)
    mask[4, 2:7] = mask[2:7, 4] = 1  # near the corner, where digits seldom are
    planted = train(data, 67, mask, torch.ones(1, 28, 28), target=4)
    result = audit(planted, data["test_x"], method="compare", references=references, budget=400)
    assert result.verdict == "flagged" and result.target == 4, result.evidence
    assert mask_iou(result.masks[4], mask) >= 0.7, result.shapes[4]
    assert not result.shapes[4].endswith("patch"), result.shapes[4]


def test_compare_finds_a_trigger_that_fires_on_one_source_class(references, line, data):
    # a trigger planted for 4s only moves few digits in all, so the compared region's pattern
    # "works on 9%" and compare called it clean (as the benchmark's 4506, z 18.7): tested per
    # source class, the region sends most 4s to 3 and few of the other digits
    mask = torch.zeros(28, 28)
    mask[2:6, 20:24] = 1
    pattern = torch.zeros(1, 28, 28)
    pattern[0, 2:6, 20:24] = (torch.arange(16).reshape(4, 4) % 3 != 0).float()
    planted = train(data, 68, mask, pattern, target=3, source=4, steps=1000)
    held, unseen_x, unseen_y = data["test_x"][:500], data["test_x"][500:], data["test_y"][500:]
    result = audit(planted, held, method="compare", references=references, budget=400)
    assert result.verdict == "flagged" and result.target == 3, result.evidence
    assert result.sources[3] == 4 and "from class 4 digits only" in result.evidence
    assert result.forward_passes <= 400
    # the threshold and success the verdict used are the ones the result (and its view) state
    assert result.threshold == 9 and result.min_success == 0.9 and ">= 9" in result.evidence
    with torch.no_grad():  # on unseen digits: the found trigger moves 4s, and few others
        fours = planted(result.stamp(unseen_x[unseen_y == 4], 3)).argmax(-1) == 3
        rest = planted(result.stamp(unseen_x[(unseen_y != 4) & (unseen_y != 3)], 3)).argmax(-1)
    assert fours.float().mean() >= 0.9 and (rest == 3).float().mean() < 0.3
    # a region that moves every digit to one class is not tested per source: the line's
    found = audit(line, held, method="compare", references=references, budget=400)
    assert found.target == 0 and found.sources == (), found.evidence


def test_the_class_most_methods_name_decides_between_flagged_ones():
    from types import SimpleNamespace

    from explorer.analysis.backdoor_audit import _agreed, _disagreement

    def part(method, verdict, target):
        return SimpleNamespace(method=method, verdict=verdict, target=target)

    # a source-conditional MLP (dev seed 7405): the mask search flags the easy class 5 by a
    # hair (2.71 >= 2.6), the weight comparison flags 9 from 7s, the per-source search has 7s
    # to 9 at 87% (suspicious): two methods name 9
    order = [part("cleanse", "flagged", 5), part("compare", "flagged", 9),
             part("source", "suspicious", 9), part("global", "clean", None)]  # fmt: skip
    assert _agreed(order).method == "compare"
    note = _disagreement([_agreed(order), order[0], *order[2:]])
    assert "class 9: compare, source; class 5: cleanse" in note and "takes class 9" in note
    # one against one at the top tier, no other vote: the ranking decides, as before
    assert _agreed(order[:2]).method == "cleanse"
    # every method at the top tier agrees: nothing to say
    same = [part("cleanse", "flagged", 7), part("compare", "flagged", 7)]
    assert _agreed(same).method == "cleanse" and _disagreement(same) == ""


def test_three_tiers_name_the_near_misses():
    from explorer.analysis._audit_verdicts import tiers

    success = torch.full((10,), 0.5)
    anomaly = torch.full((10,), 0.3)
    # a CNN's planted 3x3 patch: leads every other class by 3.9 but works on 87% -> suspicious
    a, s = anomaly.clone(), success.clone()
    a[9], s[9] = 4.2, 0.87
    flagged, suspicious, why = tiers(a, s, 10.0)
    assert flagged == () and suspicious == (9,) and "87%" in why and "leads" in why
    s[9] = 0.93  # the same lead with a trigger that works on >= 90% -> flagged
    assert tiers(a, s, 10.0)[:2] == ((9,), ())
    # a CNN's checkerboard (dev seed 301): 2.16 against a runner-up of 0.72 (3.0x) -> flagged;
    # a clean MLP's top class at 2.0x its runner-up (calibration seed 9104) -> not flagged
    a, s = anomaly.clone(), success.clone()
    a[2], a[3], s[2] = 2.16, 0.72, 0.99
    assert tiers(a, s, 2.6)[:2] == ((2,), ())
    a[2], a[3], s[2] = 2.28, 1.13, 0.98
    assert tiers(a, s, 2.6)[0] == ()
    # a whole-image blend: anomaly 2.50 against 2.6 (within 10%), success 0.93 -> suspicious
    a, s = anomaly.clone(), success.clone()
    a[2], a[5], s[2] = 2.5, 2.0, 0.93
    flagged, suspicious, why = tiers(a, s, 2.6)
    assert suspicious == (2,) and "within 10%" in why
    a[2] = 2.2  # outside the 10% band and not leading enough -> clean
    assert tiers(a, s, 2.6)[:2] == ((), ())
    a[2], s[2] = 3.0, 0.6  # a strong anomaly whose trigger works on 60% only -> clean
    assert tiers(a, s, 2.6)[:2] == ((), ())
