"""The Fourier mechanism's per-example tests (explorer.analysis.fourier_accuracy) on the
grokking run that ships: removing its key frequencies destroys the answer, removing as many
weak ones does not, and the logits kept to the key frequencies still answer."""

from __future__ import annotations

import pytest
import torch

import explorer
from explorer.analysis import fourier_accuracy
from explorer.analysis.fourier import fourier_spectrum
from explorer.analysis.fourier_accuracy import accuracy_without_frequencies, restricted_accuracy
from explorer.models import zoo
from explorer.studies import grokking, grokking_fourier
from explorer.studies.grokking_shipped import SHIPPED_RUN
from explorer.training.run import Run

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def grokked():
    run = Run.open(SHIPPED_RUN)
    data = grokking.grokking_data(run)
    key = grokking.grokking_progress(run).key.frequencies
    return explorer.load(SHIPPED_RUN), data.test_tokens, data.test_labels, key


def test_the_key_frequencies_carry_the_answer(grokked):
    model, tokens, labels, key = grokked
    untouched = accuracy_without_frequencies(model, tokens, labels=labels, frequencies=())
    assert untouched.shape == labels.shape and float(untouched.mean()) > 0.95
    p = int(model.n_outputs)
    assert (
        float(accuracy_without_frequencies(model, tokens, labels=labels, frequencies=key).mean())
        < 3 / p
    )
    norms = fourier_spectrum(model.weight("W_E")[:p]).frequency_norms[1:]
    weakest = tuple(int(k) + 1 for k in torch.argsort(norms)[: len(key)])
    assert not set(weakest) & set(key)
    kept = accuracy_without_frequencies(model, tokens, labels=labels, frequencies=weakest)
    assert float(kept.mean()) > 0.9
    assert float(restricted_accuracy(model, tokens, labels=labels, frequencies=key).mean()) > 0.95
    # the logits kept to the weakest frequencies know nothing
    weak = restricted_accuracy(model, tokens, labels=labels, frequencies=weakest)
    assert float(weak.mean()) < 0.1


def test_a_model_that_is_not_modular_arithmetic_is_named():
    mlp = zoo.mnist_mlp(hidden=(8,))
    with pytest.raises(ValueError, match="not a modular-arithmetic transformer"):
        accuracy_without_frequencies(mlp, torch.zeros(1, 3, dtype=torch.long), labels=[0],
                                     frequencies=(1,))  # fmt: skip


@pytest.mark.parametrize("old_home", [grokking, grokking_fourier])
@pytest.mark.parametrize("name", ["accuracy_without_frequencies", "restricted_accuracy"])
def test_the_old_names_in_the_grokking_study_warn_and_take_the_old_call(old_home, name, grokked):
    model, tokens, labels, key = grokked
    with pytest.warns(
        DeprecationWarning, match=rf"write explorer\.analysis\.fourier_accuracy\.{name}"
    ):
        old = getattr(old_home, name)
    new = getattr(fourier_accuracy, name)
    assert torch.equal(old(model, tokens[:50], labels[:50], key),
                       new(model, tokens[:50], labels=labels[:50], frequencies=key))  # fmt: skip
