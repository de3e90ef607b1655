"""The grokking study in its CI setting: one run per test session, shared by these tests.

The run is trained once into the session's temporary folder; a second request for it
(here or in tests/browser/test_grokking_notebook.py) reopens the finished run instead of training.
"""

from __future__ import annotations

import pytest
import torch

import explorer
from explorer.analysis.fourier import fourier_spectrum
from explorer.analysis.fourier_accuracy import accuracy_without_frequencies, restricted_accuracy
from explorer.studies.grokking import (
    CI_SETTING,
    DEFAULT_SETTING,
    PAPER_SETTING,
    _StopAfterCleanup,
    grokking_data,
    grokking_progress,
    grokking_summary,
    train_grokking,
)
from explorer.views.scrubber import TrainingScrubber


@pytest.fixture(scope="session")
def grokking_run(tmp_path_factory):
    torch.set_num_threads(1)
    return train_grokking(
        tmp_path_factory.getbasetemp() / "grokking-ci", CI_SETTING, progress=False
    )


@pytest.fixture(scope="session")
def progress(grokking_run):
    return grokking_progress(grokking_run)


@pytest.mark.slow
def test_the_run_groks_long_after_memorising(grokking_run):
    summary = grokking_summary(grokking_run)
    assert summary["final_test_acc"] > 0.95
    assert summary["train_99"] is not None and summary["test_95"] is not None
    assert summary["test_95"] >= 3 * summary["train_99"], summary


@pytest.mark.slow
def test_training_runs_on_until_the_embedding_is_sparse(grokking_run):
    # stopped by the rule (not the budget), after generalising, with at most 8 key
    # frequencies left or their count unchanged for plateau_epochs
    m = grokking_run.metrics()
    n_key, test_acc = m.get("embedding_key_frequencies"), m.get("test_acc")
    assert grokking_run.status == "stopped" and grokking_run.last_step < CI_SETTING.steps
    assert float(test_acc.values[-1]) >= 0.99
    fewest = float(n_key.values.min())
    first_fewest = int(n_key.steps[n_key.values == fewest][0])
    assert n_key.values[-1] <= CI_SETTING.stop_key_frequencies or (
        grokking_run.last_step - first_fewest >= CI_SETTING.plateau_epochs
    )
    assert float(n_key.values[0]) > 2 * CI_SETTING.stop_key_frequencies  # spread out at init


def test_the_stop_rule_waits_for_generalisation_then_sparsity():
    stop = _StopAfterCleanup(max_key=8, plateau=100)
    rows = [(0, 0.01, 40), (100, 0.02, 9), (200, 0.5, 9), (300, 0.995, 10), (350, 0.995, 9)]
    assert not any(
        stop({"step": s, "test_acc": a, "embedding_key_frequencies": k}) for s, a, k in rows
    )  # fmt: skip  (9 key frequencies: not yet sparse)
    assert stop({"step": 360, "test_acc": 0.995, "embedding_key_frequencies": 8})
    plateau = _StopAfterCleanup(max_key=8, plateau=100)
    assert not plateau({"step": 0, "test_acc": 1.0, "embedding_key_frequencies": 12})
    assert not plateau({"step": 90, "test_acc": 1.0, "embedding_key_frequencies": 12})
    assert plateau({"step": 100, "test_acc": 1.0, "embedding_key_frequencies": 12})
    late = _StopAfterCleanup(max_key=8, plateau=100)  # fewest before generalising: clock restarts
    assert not late({"step": 0, "test_acc": 0.1, "embedding_key_frequencies": 12})
    assert not late({"step": 500, "test_acc": 1.0, "embedding_key_frequencies": 12})
    assert late({"step": 600, "test_acc": 1.0, "embedding_key_frequencies": 12})
    sparse_early = _StopAfterCleanup(max_key=8, plateau=100)  # sparse but not generalised
    assert not sparse_early({"step": 500, "test_acc": 0.3, "embedding_key_frequencies": 5})


@pytest.mark.slow
def test_a_few_key_frequencies_carry_the_embedding(progress, grokking_run):
    key = progress.key
    assert 1 <= len(key) <= 8
    assert key.fraction >= 0.8
    first = fourier_spectrum(grokking_run.load_model(0).weight("W_E")[: CI_SETTING.p])
    assert first.fraction(key.frequencies) < 0.5  # at init the same frequencies carry little


@pytest.mark.slow
def test_progress_measures_move_as_in_nanda_et_al(progress):
    phases = progress.phases
    assert 0 < phases.memorized <= phases.circuit_start < phases.cleanup_start
    assert phases.cleanup_start < phases.cleanup_end <= phases.last_step
    mem, circuit = progress.at(phases.memorized), progress.at(phases.circuit_start)
    cleanup, end_cleanup = progress.at(phases.cleanup_start), progress.at(phases.cleanup_end)
    end = progress.at(int(progress.steps[-1]))
    # circuit formation: the restricted loss falls ahead of the test loss (in this fast
    # setting test accuracy is already ~45% when memorisation ends and passes 50% soon
    # after, so circuit formation is short: cleanup holds the whole rise of test accuracy)
    assert cleanup["restricted_loss"] < circuit["restricted_loss"] < mem["restricted_loss"]
    assert cleanup["restricted_loss"] < 0.5 * cleanup["test_loss"]  # the circuit before the test
    # cleanup: the excluded loss rises while the test loss falls
    in_cleanup = (progress.steps >= phases.cleanup_start) & (progress.steps < phases.cleanup_end)
    assert float(progress.excluded_loss[in_cleanup].max()) > 1.1 * mem["excluded_loss"]
    assert end_cleanup["excluded_loss"] > cleanup["excluded_loss"]
    assert end_cleanup["test_loss"] < 0.5 * cleanup["test_loss"]
    assert end["restricted_loss"] < 0.1 * mem["test_loss"]
    assert end["gini"] > mem["gini"]
    assert end["weight_norm"] < float(progress.weight_norm.max())


@pytest.mark.slow
def test_removing_the_key_frequencies_destroys_the_answer(progress, grokking_run):
    data = grokking_data(grokking_run)
    model = grokking_run.load_model()
    tokens, labels = data.test_tokens, data.test_labels
    key = progress.key.frequencies

    def without(frequencies):
        return float(
            accuracy_without_frequencies(
                model, tokens, labels=labels, frequencies=frequencies
            ).mean()
        )

    assert without(()) > 0.95
    assert without(key) < 0.1
    spectrum = fourier_spectrum(model.weight("W_E")[: data.p])
    weakest = [int(k) + 1 for k in torch.argsort(spectrum.frequency_norms[1:])[: len(key)]]
    assert without(tuple(weakest)) > 0.9
    kept = restricted_accuracy(model, tokens, labels=labels, frequencies=key)
    assert float(kept.mean()) > 0.95


@pytest.mark.slow
def test_the_run_reopens_and_loads(grokking_run):
    again = train_grokking(grokking_run.path, CI_SETTING, progress=False)  # nothing to train
    assert again.steps == grokking_run.steps
    model = explorer.load(grokking_run.path)
    assert model.name.endswith(f"@{grokking_run.steps[-1]}")
    mid = grokking_run.steps[len(grokking_run.steps) // 2]
    assert not torch.equal(
        explorer.load(grokking_run.path, step=mid).weight("W_E"), model.weight("W_E")
    )


@pytest.mark.slow
def test_the_scrubber_follows_the_grokking_run(grokking_run, progress):
    shown = {}
    scrubber = TrainingScrubber(grokking_run, phases=progress.phases.as_list())
    scrubber.on_step(lambda model, step: shown.update(step=step, W=model.weight("W_E").clone()))
    scrubber.step = 0
    assert shown["step"] == 0
    assert torch.equal(shown["W"], grokking_run.load_model(0).weight("W_E"))
    scrubber.step = grokking_run.steps[-1]
    assert torch.equal(shown["W"], grokking_run.load_model().weight("W_E"))
    names = [p.name for p in progress.phases.as_list()]
    assert names == ["memorisation", "circuit formation", "cleanup"]
    assert [p["name"] for p in scrubber.phases] == names


@pytest.mark.parametrize(
    ("setting", "d_model", "lr", "train_frac"),
    [(PAPER_SETTING, 128, 1e-3, 0.3), (DEFAULT_SETTING, 64, 5e-3, 0.25)],
)
def test_a_setting_trains_the_published_recipe(tmp_path, setting, d_model, lr, train_frac):
    """Nanda et al.'s recipe reaches the run a setting trains (not just the setting's fields):
    1 layer, 4 heads, d_mlp = 4 d_model, ReLU, no LayerNorm, "=" token; full-batch AdamW
    with weight decay 1 and betas (0.9, 0.98); the seeded split is the one the run records."""
    torch.set_num_threads(1)
    small = setting.replace(p=11, steps=1, stop_key_frequencies=None)
    run = train_grokking(tmp_path / "run", small, progress=False)
    model = run.load_model()
    assert (model.n_layers, model.n_heads, model.d_model, model.d_mlp) == (
        1,
        4,
        d_model,
        4 * d_model,
    )
    assert model.normalization is None and model.n_outputs == 11 and model.vocab[-1] == "="
    optimizer = run.training["optimizer"]
    assert (optimizer["name"], optimizer["lr"], optimizer["weight_decay"]) == ("adamw", lr, 1.0)
    assert tuple(optimizer["betas"]) == (0.9, 0.98) and optimizer["warmup_steps"] == 0
    assert run.data == {"dataset": "modular_arithmetic", "p": 11, "op": "+",
                        "train_frac": train_frac, "seed": small.data_seed}  # fmt: skip
    recorded, planned = grokking_data(run), grokking_data(small)
    assert torch.equal(recorded.train_idx, planned.train_idx)
    assert len(recorded.train_idx) == round(train_frac * 11**2)
    other_split = grokking_data(small.replace(data_seed=small.data_seed + 1))
    assert not torch.equal(other_split.train_idx, planned.train_idx)
