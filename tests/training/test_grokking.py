"""The grokking study in its CI setting: one run per test session, shared by these tests.

The run is trained once into the session's temporary folder; a second request for it
(here or in tests/test_grokking_notebook.py) reopens the finished run instead of training.
"""

from __future__ import annotations

import pytest
import torch

import explorer
from explorer.analysis.fourier import fourier_spectrum
from explorer.training import (
    CI_SETTING,
    GrokkingSetting,
    grokking_data,
    grokking_progress,
    grokking_summary,
    train_grokking,
)
from explorer.training.grokking import accuracy_without_frequencies, restricted_accuracy
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
    assert grokking_run.status == "stopped"  # stopped early, once generalised


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
    assert 0 < phases.memorised < phases.cleanup_start < phases.cleanup_end <= phases.last_step
    at_start = progress.at(phases.memorised)  # start of circuit formation
    end = progress.at(int(progress.steps[-1]))
    assert end["restricted_loss"] < at_start["restricted_loss"]
    assert end["restricted_loss"] < 0.1 * at_start["test_loss"]
    assert end["excluded_loss"] > at_start["excluded_loss"]
    assert end["gini"] > at_start["gini"]
    assert end["weight_norm"] < float(progress.weight_norm.max())
    # the circuit is visible before test loss falls: at the start of cleanup the restricted
    # loss is already far below the test loss
    cleanup = progress.at(phases.cleanup_start)
    assert cleanup["restricted_loss"] < 0.5 * cleanup["test_loss"]


@pytest.mark.slow
def test_removing_the_key_frequencies_destroys_the_answer(progress, grokking_run):
    data = grokking_data(grokking_run)
    model = grokking_run.load_model()
    tokens, labels = data.test_tokens, data.test_labels
    key = progress.key.frequencies
    assert float(accuracy_without_frequencies(model, tokens, labels, ()).mean()) > 0.95
    assert float(accuracy_without_frequencies(model, tokens, labels, key).mean()) < 0.1
    spectrum = fourier_spectrum(model.model.W_E[: data.p])
    weakest = [int(k) + 1 for k in torch.argsort(spectrum.frequency_norms[1:])[: len(key)]]
    assert float(accuracy_without_frequencies(model, tokens, labels, tuple(weakest)).mean()) > 0.9
    assert float(restricted_accuracy(model, tokens, labels, key).mean()) > 0.95


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
    assert [p["name"] for p in scrubber.phases] == ["memorisation", "circuit formation", "cleanup"]


def test_settings_are_the_published_recipe():
    for setting in (CI_SETTING, GrokkingSetting()):
        assert setting.weight_decay == 1.0 and setting.betas == (0.9, 0.98)
        assert setting.d_model == 128
    assert GrokkingSetting().replace(p=113).p == 113
    data = grokking_data(CI_SETTING)
    assert len(data.train_idx) == round(CI_SETTING.train_frac * CI_SETTING.p**2)
