"""Results the fault audit found silently wrong now come out right or raise a clear error."""

from __future__ import annotations

import pytest
import torch

from explorer.analysis import ablate, head_scores, metrics
from explorer.analysis.neurons import activation_histogram
from explorer.analysis.units import Neuron, check_unit
from explorer.data import repeated_tokens
from explorer.models import zoo

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mlp():
    return zoo.mnist_mlp(hidden=(8,))


@pytest.fixture(scope="module")
def images():
    return torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("metric", [metrics.accuracy, metrics.neg_cross_entropy])
def test_labels_outside_the_classes_are_refused_not_scored_zero(metric, mlp, images):
    with pytest.raises(ValueError, match=r"label ids must lie in 0\.\.9 .*got range 0\.\.12"):
        metric(torch.tensor([0, 1, 2, 3, 4, 12]))(mlp(images))
    with pytest.raises(ValueError, match=r"got range -1\.\.1"):
        metric(torch.tensor([-1, 1, 0, 0, 0, 0]))(mlp(images))
    assert metric(torch.zeros(6, dtype=torch.long))(mlp(images)).shape == (6,)


def test_logit_diff_ids_are_checked(mlp, images):
    with pytest.raises(ValueError, match="correct ids must lie in 0..9"):
        metrics.logit_diff(10, 0)(mlp(images))


def test_histogram_labels_must_be_class_ids(mlp, images):
    with pytest.raises(ValueError, match="got a negative id -1"):
        activation_histogram(
            mlp, images, unit=Neuron(0, 1), labels=torch.tensor([-1, 0, 1, 1, 0, -1])
        )
    with pytest.raises(TypeError, match="integer class ids .* got dtype torch.float32"):
        activation_histogram(
            mlp, images, unit=Neuron(0, 1), labels=torch.tensor([0.0, 1, 1, 0, 1, 0])
        )
    good = activation_histogram(
        mlp, images, unit=Neuron(0, 1), labels=torch.tensor([0, 1, 1, 0, 1, 0])
    )
    assert good.by_class.sum(1).tolist() == [3, 3]  # every example counted in its class


@pytest.mark.parametrize("unit", ["neuron 0.3@2", "neuron 0.3@999"])
def test_a_position_on_an_image_model_is_refused(unit, mlp, images):
    with pytest.raises(ValueError, match="takes images: its units have no token positions"):
        check_unit(mlp, unit=unit)
    with pytest.raises(ValueError, match="write 'neuron 0.3'"):
        ablate(mlp, images, units=[unit], metric=metrics.accuracy(torch.zeros(6, dtype=torch.long)))


def test_a_position_past_the_context_is_refused():
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=8)
    with pytest.raises(ValueError, match=r"position 999 out of range: .* positions 0\.\.7"):
        check_unit(model, unit="head 0.1@999")


def test_kinds_given_as_one_string_means_that_kind():
    model = zoo.attention_only_transformer(n_layers=2, d_model=16, d_vocab=10, n_ctx=9)
    tokens = repeated_tokens(4, 4, 10, seed=0)
    one = head_scores(model, tokens, scores="induction")
    assert one.names == ("induction",)
    assert torch.equal(
        one.get("induction"), head_scores(model, tokens, scores=["induction"]).get("induction")
    )
