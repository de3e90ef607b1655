"""The grokking study in its CI setting: one run per test session, shared by these tests.

The run is trained once into the session's temporary folder; a second request for it
(here or in tests/test_grokking_notebook.py) reopens the finished run instead of training.
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
    GrokkingSetting,
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
    first = fourier_spectrum(grokking_run.load_model(0).model.W_E[: CI_SETTING.p])
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
    assert not torch.equal(explorer.load(grokking_run.path, step=mid).model.W_E, model.model.W_E)


@pytest.mark.slow
def test_the_scrubber_follows_the_grokking_run(grokking_run, progress):
    shown = {}
    scrubber = TrainingScrubber(grokking_run, phases=progress.phases.as_list())
    scrubber.on_step(lambda model, step: shown.update(step=step, W=model.model.W_E.clone()))
    scrubber.step = 0
    assert shown["step"] == 0
    assert torch.equal(shown["W"], grokking_run.load_model(0).model.W_E)
    scrubber.step = grokking_run.steps[-1]
    assert torch.equal(shown["W"], grokking_run.load_model().model.W_E)
    names = [p.name for p in progress.phases.as_list()]
    assert names == ["memorisation", "circuit formation", "cleanup"]
    assert [p["name"] for p in scrubber.phases] == names


def test_settings_are_the_published_recipe():
    for setting in (CI_SETTING, GrokkingSetting()):
        assert setting.weight_decay == 1.0 and setting.betas == (0.9, 0.98)
    assert (DEFAULT_SETTING.p, DEFAULT_SETTING.train_frac, DEFAULT_SETTING.d_model) == (
        113,
        0.25,
        64,
    )
    assert PAPER_SETTING.d_model == 128
    assert GrokkingSetting().replace(p=113).p == 113
    data = grokking_data(CI_SETTING)
    assert len(data.train_idx) == round(CI_SETTING.train_frac * CI_SETTING.p**2)
