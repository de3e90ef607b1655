"""The induction tutorial's shipped run: small, float16, openable at once, and reproducible
(its first training steps are replayed and compared with the losses the manifest kept)."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis.induction import induction_progress
from explorer.studies import induction_heads as ih
from explorer.training import Run


@pytest.fixture(scope="module")
def shipped():
    return Run.open(ih.SHIPPED_RUN)


def test_the_shipped_run_is_small_complete_and_in_float16(shipped):
    files = [f for f in ih.SHIPPED_RUN.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 1_000_000
    weights = [f for f in files if f.name == "model.safetensors"]
    assert len(weights) == len(shipped.steps) == ih.SHIPPED_CHECKPOINTS
    assert all(f.stat().st_size < 100_000 for f in weights)  # float16: ~92 KB each
    assert shipped.status == "complete" and shipped.training["steps"] == ih.SETTING["steps"]
    assert shipped.steps[0] == 0 and shipped.steps[-1] == ih.SETTING["steps"]
    assert not any(shipped.has_optimizer_state(s) for s in shipped.steps)
    logged = shipped.metrics().get("induction_max_induction_score")
    every = range(0, ih.SETTING["steps"] + 1, ih.SETTING["eval_every"])
    assert set(every) <= set(logged.steps.tolist())  # every logged metric ships


def test_the_final_model_measures_what_the_run_logged(shipped):
    model = shipped.load_model()
    with torch.no_grad():
        now = induction_progress(model, ih.eval_tokens()).as_dict()
    logged = shipped.metrics().last()
    for name in ("repeated_half_loss", "first_half_loss", "max_induction_score"):
        assert now[name] == pytest.approx(logged[f"induction_{name}"], abs=0.02), name
    assert now["max_induction_score"] > 0.4  # trained: the induction heads are there
    assert now["repeated_half_loss"] < 0.5 * now["first_half_loss"]


def test_the_checkpoints_bracket_the_rise_of_the_induction_score(shipped):
    from explorer.analysis.curves import detect_phase_change

    curve = shipped.metrics().get("induction_max_induction_score")
    rise = detect_phase_change(curve.steps, curve.values, direction="rise")
    inside = [s for s in shipped.steps if rise.start <= s <= rise.end]
    assert any(s < rise.start for s in shipped.steps) and len(inside) >= 2


def test_open_run_copies_it_once_and_training_then_finds_it_finished(tmp_path, shipped):
    folder = tmp_path / "run"
    run = ih.open_run(folder)
    assert run.steps == shipped.steps
    again = ih.train_induction(folder, progress=False)  # nothing left to train
    assert again.steps == shipped.steps and again.status == "complete"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no run"):
        ih.open_run(tmp_path / "busy")


def test_a_rebuild_reproduces_the_first_steps(tmp_path, shipped):
    """Train the recipe from scratch for the first steps only (not the whole run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the shipped run was trained
    try:
        run = ih.train_induction(tmp_path / "run", steps=ih.EARLY_STEPS - 1, progress=False)
    finally:
        torch.set_num_threads(threads)
    early = run.manifest["meta"]["early_train_loss"]
    shipped_early = shipped.manifest["meta"]["early_train_loss"]
    assert sorted(early, key=int) == sorted(shipped_early, key=int)
    assert sorted(early, key=int) == [str(s) for s in range(ih.EARLY_STEPS)]
    for step, value in shipped_early.items():
        assert early[step] == pytest.approx(value, abs=1e-4), step


def test_shipping_the_shipped_run_again_gives_the_same_run(tmp_path, shipped):
    again = ih.ship_run(shipped, tmp_path / "again")
    assert again.steps == shipped.steps and again.status == shipped.status
    assert again.training == shipped.training
    assert len(list(again.rows())) == len(list(shipped.rows()))
    copied = dict(again.load_model().named_parameters())
    for name, tensor in shipped.load_model().named_parameters():
        assert torch.equal(copied[name], tensor), name
