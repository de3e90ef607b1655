"""The grokking tutorial's shipped run: small, float16, with the progress table of the full run.

A rebuild is checked by replaying the first epochs of the recipe against the logged metrics;
the table (precomputed from every checkpoint of the full run) is checked by recomputing the
measures on the checkpoints that ship; the final model is re-measured against its last row.
"""

from __future__ import annotations

import json

import pytest
import torch
from recipe_check import early_differences, trained_early

from explorer.studies import grokking_shipped as gs
from explorer.studies.grokking import (
    DEFAULT_SETTING,
    grokking_data,
    grokking_progress,
    grokking_summary,
    train_grokking,
)
from explorer.studies.grokking_table import PROGRESS_FILE, read_progress_table
from explorer.training import Run


@pytest.fixture(scope="module")
def shipped():
    return Run.open(gs.SHIPPED_RUN)


@pytest.fixture(scope="module")
def table(shipped):
    return grokking_progress(shipped)


def test_the_shipped_run_is_small_complete_and_in_float16(shipped):
    files = [f for f in gs.SHIPPED_RUN.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 1_500_000
    weights = [f for f in files if f.name == "model.safetensors"]
    assert len(weights) == len(shipped.steps) == gs.SHIPPED_CHECKPOINTS
    assert all(f.stat().st_size < 150_000 for f in weights)  # float16
    assert shipped.status in ("complete", "stopped")
    assert shipped.training["steps"] == DEFAULT_SETTING.steps
    assert not any(shipped.has_optimizer_state(s) for s in shipped.steps)
    logged = shipped.metrics().get("test_acc")
    every = range(0, shipped.last_step + 1, DEFAULT_SETTING.eval_every)
    assert set(every) <= set(logged.steps.tolist())  # every logged metric ships
    summary = grokking_summary(shipped)  # it grokked: late, and fully
    assert summary["test_95"] > 10 * summary["train_99"]
    assert summary["final_test_acc"] > 0.99


def test_analysis_reads_the_precomputed_table_labelled_as_such(shipped, table):
    assert table.precomputed is not None and "precomputed from all" in table.precomputed
    assert "precomputed" in repr(table)
    assert len(table.steps) > 4 * len(shipped.steps)  # the full run's checkpoints
    assert set(shipped.steps) <= set(table.steps.tolist())
    assert int(table.steps[-1]) == shipped.last_step
    phases = table.phases
    assert phases.grokked
    logged = set(shipped.metrics().get("train_acc").steps.tolist())
    for boundary in (phases.memorized, phases.circuit_start, phases.cleanup_start):
        assert boundary in logged  # a logged epoch of the full run (its metrics ship whole)
    # the notebook judges its circuit-first claim on the last checkpoint before cleanup
    assert any(s < phases.cleanup_start for s in shipped.steps[1:])


def test_recomputing_on_the_shipped_checkpoints_matches_the_table(shipped, table):
    replayed = grokking_progress(shipped, key=table.key, replay=True)
    assert replayed.precomputed is None
    assert replayed.steps.tolist() == list(shipped.steps)
    for i, step in enumerate(shipped.steps):
        stored = table.at(step)
        assert stored["step"] == step
        for name in ("train_acc", "test_acc"):  # float16 weights: no prediction changed
            assert float(getattr(replayed, name)[i]) == pytest.approx(stored[name], abs=1e-3)
        for name in ("train_loss", "test_loss", "restricted_loss", "excluded_loss"):
            got = float(getattr(replayed, name)[i])  # measured: at most 6e-4 relative
            assert got == pytest.approx(stored[name], rel=5e-3, abs=1e-3), (step, name)
        for name in ("gini", "weight_norm"):
            got = float(getattr(replayed, name)[i])  # measured: at most 2e-5 relative
            assert got == pytest.approx(stored[name], rel=1e-4), (step, name)


def test_the_final_model_measures_what_the_run_logged(shipped):
    data = grokking_data(shipped)
    model = shipped.load_model()
    with torch.no_grad():
        logits = model(data.test_tokens)[:, -1]
    accuracy = float((logits.argmax(-1) == data.test_labels).float().mean())
    assert accuracy == pytest.approx(shipped.metrics().last()["test_acc"], abs=0.01)


def test_open_run_copies_it_once_and_training_then_finds_it_finished(tmp_path, shipped):
    folder = tmp_path / "run"
    run = gs.open_run(folder)
    assert run.steps == shipped.steps and (folder / PROGRESS_FILE).is_file()
    again = train_grokking(folder, DEFAULT_SETTING, progress=False)  # nothing left to train
    assert again.steps == shipped.steps and again.last_step == shipped.last_step
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no run"):
        gs.open_run(tmp_path / "busy")


def test_a_broken_table_is_refused_with_what_it_lacks(tmp_path):
    table = json.loads((gs.SHIPPED_RUN / PROGRESS_FILE).read_text())
    del table["measures"]["excluded_loss"]
    (tmp_path / "t.json").write_text(json.dumps(table))
    with pytest.raises(ValueError, match="excluded_loss"):
        read_progress_table(tmp_path / "t.json")


def test_a_rebuild_reproduces_the_first_epochs(tmp_path, shipped):
    """Train the recipe from scratch for the first epochs only (not the whole run), and
    compare them as tests/recipe_check.py says (epochs 0-3, to 1e-3: another CPU's
    rounding grows after them)."""
    assert early_differences(trained_early(tmp_path / "run", DEFAULT_SETTING), shipped) == {}


def test_a_recipe_two_percent_off_in_learning_rate_is_told_apart(tmp_path, shipped):
    off = DEFAULT_SETTING.replace(lr=DEFAULT_SETTING.lr * 1.02)
    assert early_differences(trained_early(tmp_path / "run", off), shipped)
