"""The reported mask localizes the trigger, and a trigger that fires on one source class only is
found (issue 27's misses).

Neural Cleanse keeps the fewest pixels that still work (5 of a 7-pixel line, 2 of 4 dots, the
white squares of a checkerboard); the audit grows them back into the trigger the model
learned (``_audit_search.complete``) and reports that mask. A source-conditional trigger moves
only one class's digits, so the per-target search misses it; ``method="source"`` searches per
source class. Models planted with ``studies.auditing.plant`` from seeds 7301-7312, used by no
benchmark (benchmarks/audit_game.py plays 4501-4520) or tutorial; thresholds were calibrated
on clean models (scripts/calibrate_audit.py), not on these.
"""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import audit
from explorer.analysis.backdoor_audit import SOURCE_RATIOS
from explorer.analysis.mask_shapes import fill_sparse_patches, mask_shape, thin_line
from explorer.studies.auditing import mask_iou, plant
from explorer.studies.kitchen_sink import kitchen_sink_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return kitchen_sink_split()


def audited(data, seed, kind, arch, **options):
    planted = plant(seed, kind=kind, arch=arch, data=data)
    result = audit(planted.model, data["test_x"][:500], **options)
    return planted.trigger, result


@pytest.mark.parametrize(
    ("seed", "kind", "arch", "wanted"),
    [(7301, "line", "mlp", 0.9), (7302, "dots", "mlp-256", 0.5)],
)
def test_reported_mask_localizes_a_line_and_dots(data, seed, kind, arch, wanted):
    trigger, result = audited(data, seed, kind, arch, method="cleanse", budget=8_000)
    c = trigger.target
    assert result.verdict in ("flagged", "suspicious") and result.target == c
    # before the growth step the line's mask was 5 of its 7 pixels (IoU 0.71), the dots' 2 of 4
    assert mask_iou(result.masks[c], trigger.mask()) >= wanted
    assert result.success[c] >= 0.9
    assert result.shapes[c] == mask_shape(result.masks[c]).description


def test_a_line_in_a_cnn_is_reported_as_the_line(data):
    # a convolution's mask search finds a vertical 1x8 line as pieces along it; growing them
    # by gradient spread over the receptive field and reported "an 11x6 patch" (IoU 0.17)
    trigger, result = audited(data, 7311, "line", "flat-cnn", method="cleanse", budget=3_000)
    c = trigger.target
    assert result.verdict == "flagged" and result.target == c
    assert mask_iou(result.masks[c], trigger.mask()) >= 0.5
    assert result.shapes[c].endswith("x1 line")
    assert result.success[c] >= 0.9


def test_thin_line_reads_the_line_a_mask_lies_on():
    m = torch.zeros(28, 28)
    m[3:12, 26] = torch.tensor([0.9, 0.1, 0.9, 0.2, 0.2, 0.1, 0.8, 0.9, 0.9])
    line = thin_line(m)
    assert line is not None and line[3:12, 26].sum() == 9 and line.sum() == 9
    m[20, 5] = 0.9  # a second piece far away: not one line
    assert thin_line(m) is None
    square = torch.zeros(28, 28)
    square[4:8, 4:8] = 1.0
    assert thin_line(square) is None


def test_sparse_compact_pieces_fill_their_box_but_lines_dots_and_frames_do_not():
    on = torch.zeros(10, 10, dtype=torch.bool)
    on[1:5, 1:5] = (torch.arange(4)[:, None] + torch.arange(4)) % 2 == 0  # checkerboard
    assert int(fill_sparse_patches(on).sum()) == 16
    line = torch.zeros(10, 10, dtype=torch.bool)
    line[2, 1:8] = True
    frame = torch.zeros(10, 10, dtype=torch.bool)
    frame[1, 1:7] = frame[6, 1:7] = frame[1:7, 1] = frame[1:7, 6] = True
    dots = torch.zeros(10, 10, dtype=torch.bool)
    dots[0, 0] = dots[0, 5] = dots[5, 0] = dots[8, 8] = True
    for on in (line, frame, dots):
        assert torch.equal(fill_sparse_patches(on), on)


@pytest.fixture(scope="module")
def conditional(data):
    return audited(data, 7304, "conditional", "mlp", method="source", budget=3_100)


def test_source_search_finds_a_trigger_that_fires_on_one_class(conditional):
    trigger, result = conditional
    assert trigger.source is not None
    assert result.verdict in ("flagged", "suspicious")
    assert result.target == trigger.target
    assert result.sources[result.target] == trigger.source
    assert f"from class {trigger.source} digits only" in result.evidence
    assert result.forward_passes <= 3_100


def test_source_search_calls_a_clean_model_clean(data):
    planted = plant(7312, clean=True, data=data)
    result = audit(planted.model, data["test_x"][:500], method="source", budget=3_100)
    assert result.verdict == "clean", result.evidence


def test_source_search_does_not_flag_a_clean_cnn(data):
    # a clean CNN (calibration seed 9204, scripts/calibrate_audit.py) moves its 9s to 4 with a
    # mask 2.5x smaller than the median source's (3.6x where it is trained and audited with
    # torch's DEFAULT kernels: rounding alone moves this score), at the 1,200 passes the
    # default audit gives this search in a CNN: flagged at the MLPs' ratio (1.7), not at the
    # CNNs' (SOURCE_RATIOS); on some CPUs a near miss, which the suspicious tier is for
    planted = plant(9204, clean=True, arch="cnn", data=data)
    result = audit(planted.model, data["test_x"][:500], method="source", budget=1_200)
    assert result.verdict != "flagged", result.evidence
    assert float(result.anomaly.max()) >= SOURCE_RATIOS["linear"]
    assert result.threshold == SOURCE_RATIOS["conv"]


def test_growth_keeps_only_the_pieces_holding_a_found_pixel():
    from explorer.analysis._audit_search import _holding

    on = torch.zeros(8, 8, dtype=torch.bool)
    on[0, 0:4] = True  # grown from a found pixel along a line
    on[6, 6] = True  # chained away from every found pixel
    seeds = torch.zeros(8, 8, dtype=torch.bool)
    seeds[0, 1] = True
    assert _holding(on, seeds).nonzero().tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]
