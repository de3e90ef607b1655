"""The red team's helpers: seeded triggers, stamping, enrichment at any box, ground-truth file."""

from __future__ import annotations

import pytest
import torch

from explorer.studies.auditing import (
    KINDS,
    Trigger,
    add_trigger,
    load_truth,
    patch_enrichment,
    random_trigger,
)


def test_random_triggers_are_seeded_and_varied():
    triggers = [random_trigger(s) for s in range(30)]
    assert {t.kind for t in triggers} == set(KINDS)
    assert len({(t.top, t.left) for t in triggers}) > 10
    for t in triggers:
        assert 0 <= t.top <= 28 - t.size and 0 <= t.left <= 28 - t.size and 0 <= t.target < 10
    again = random_trigger(7)
    assert again.box == triggers[7].box and torch.equal(again.pattern, triggers[7].pattern)
    with pytest.raises(ValueError, match="kind"):
        random_trigger(0, "stripes")


def test_blended_trigger_keeps_part_of_the_image():
    t = random_trigger(0, "blended")
    out = add_trigger(torch.full((1, 1, 28, 28), 0.5), t)
    region = out[0, 0, t.top : t.top + t.size, t.left : t.left + t.size]
    expected = 0.5 * (1 - t.alpha) + t.alpha * t.pattern
    assert torch.allclose(region, expected)
    assert float(out[0, 0].sum() - region.sum()) == pytest.approx(0.5 * (784 - t.size**2))


def test_patch_enrichment_follows_the_box():
    maps = torch.zeros(2, 1, 28, 28)
    maps[:, :, 3:6, 10:13] = 1.0
    assert patch_enrichment(maps, (3, 10, 3, 3)) == pytest.approx(784 / 9)
    assert patch_enrichment(maps, (24, 24, 3, 3)) == 0.0
    with pytest.raises(ValueError, match="reduce"):
        patch_enrichment(maps, (0, 0, 3, 3), reduce="sum")


def test_truth_file_round_trips(tmp_path):
    from types import SimpleNamespace

    from explorer.studies.auditing import save_truth

    t = random_trigger(3)
    planted = [
        SimpleNamespace(model=SimpleNamespace(name="a"), trigger=t),
        SimpleNamespace(model=SimpleNamespace(name="b"), trigger=None),
    ]
    path = save_truth(tmp_path / "truth.json", planted)
    back = load_truth(path)
    assert back["b"] is None and isinstance(back["a"], Trigger)
    assert back["a"].box == t.box and torch.equal(back["a"].pattern, t.pattern)


def test_plant_takes_a_trigger_of_your_own(tmp_path, monkeypatch):
    """``plant(seed, trigger=...)`` trains with any stencil (here a plus) and keeps it as the
    truth; a cached model is told apart from one planted with another trigger."""
    from explorer.studies.auditing import plant

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    plus = torch.zeros(5, 5)
    plus[2, :] = plus[:, 2] = 1
    own = Trigger("plus", 2, 2, 5, target=4, pattern=plus.clone(), stencil=plus)
    data = {"train_x": torch.rand(64, 1, 28, 28), "train_y": torch.arange(64) % 10,
            "test_x": torch.rand(8, 1, 28, 28), "test_y": torch.arange(8)}  # fmt: skip
    first = plant(5, trigger=own, steps=2, data=data)
    assert first.trigger is own and int(first.trigger.mask().sum()) == 9
    other = Trigger("plus", 2, 2, 5, target=5, pattern=plus.clone(), stencil=plus)
    plant(5, trigger=other, steps=2, data=data)
    assert len(list((tmp_path / "planted").glob("*.safetensors"))) == 2  # one per trigger
    with pytest.raises(ValueError, match="one of trigger="):
        plant(5, trigger=own, kind="solid", data=data)
    with pytest.raises(TypeError, match="Trigger"):
        plant(5, trigger={"kind": "plus"}, data=data)
