"""``LiveGrokkingProgress``: the progress table from the logits training computed, kept in
memory for the checkpoint steps, equal bit for bit to the replay of every checkpoint."""

from __future__ import annotations

import pytest
import torch

from explorer.studies.grokking import CI_SETTING, grokking_progress, train_grokking
from explorer.studies.grokking_live import LiveGrokkingProgress
from explorer.studies.grokking_table import MEASURES
from explorer.training.loop import train
from explorer.training.run import Run

SETTING = CI_SETTING.replace(p=7, steps=40, d_model=16, eval_every=5)


def _trained(folder, **kwargs) -> tuple[LiveGrokkingProgress, Run]:
    live = LiveGrokkingProgress(SETTING, **kwargs)
    return live, train(**live.recipe, run=live.watch(folder), progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[LiveGrokkingProgress, Run]:
    return _trained(tmp_path_factory.mktemp("live") / "r")


def test_the_kept_logits_give_the_replayed_table_bit_for_bit(trained, monkeypatch):
    live, run = trained
    assert set(live.kept) == set(run.steps)  # logged steps without a checkpoint are dropped
    reads = []
    for name in ("load_into", "load_model"):
        real = getattr(Run, name)
        monkeypatch.setattr(Run, name, lambda self, *a, real=real, name=name: (
            reads.append(name), real(self, *a))[1])  # fmt: skip
    kept = live.finish(run)
    assert reads == [] and live.reads == 0  # no checkpoint read, not even the last one
    monkeypatch.undo()
    replayed = grokking_progress(run, replay=True)
    assert torch.equal(kept.steps, replayed.steps) and kept.key == replayed.key
    for measure in MEASURES:
        assert torch.equal(getattr(kept, measure), getattr(replayed, measure)), measure
    # and what it wrote is what grokking_progress reads back
    assert torch.equal(grokking_progress(run).excluded_loss, kept.excluded_loss)


def test_checkpoints_not_kept_are_read_and_computed_the_same_way(trained, tmp_path):
    """Past the memory budget (or trained in an earlier session) a checkpoint is read from
    disk, its logits computed by the same loss and test evaluation: the same table."""
    live, run = trained
    none, run_none = _trained(tmp_path / "none", budget=0)
    assert none.kept == {}
    a, b = live.finish(run), none.finish(run_none)
    assert none.reads == len(run_none.steps) and live.reads == 0
    for measure in MEASURES:
        assert torch.equal(getattr(a, measure), getattr(b, measure)), measure


def test_the_live_recipe_trains_exactly_as_train_grokking(trained, tmp_path):
    _, run = trained
    plain = train_grokking(tmp_path / "plain", SETTING, progress=False)
    assert run.steps == plain.steps
    assert (run.path / "metrics.jsonl").read_bytes() == (plain.path / "metrics.jsonl").read_bytes()
