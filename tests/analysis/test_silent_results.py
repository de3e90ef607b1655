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


# ---------------------------------------------------------------- issue 23, list 10
def test_a_concept_of_scores_is_refused_not_read_as_all_true():
    from explorer.hypotheses import Examples

    x = torch.randn(80, 4)
    with pytest.raises(ValueError, match=r"concept must be a bool mask .* 0/1 values, got dtype"):
        Examples(x, concept=torch.rand(80))
    with pytest.raises(ValueError, match="concept=scores > 0.5"):
        Examples(x, concept=torch.full((80,), 2))
    mask = torch.arange(80) % 3 == 0
    for given in (mask, mask.long(), mask.float(), mask.tolist()):
        assert torch.equal(Examples(x, concept=given).concept, mask)


def test_labels_of_examples_are_ids():
    from explorer.hypotheses import Examples

    x = torch.randn(6, 4)
    with pytest.raises(TypeError, match="labels must hold integer class or token ids"):
        Examples(x, labels=torch.rand(6))
    with pytest.raises(ValueError, match="alt_labels must be ids >= 0, got -1"):
        Examples(x, labels=torch.zeros(6, dtype=torch.long), alt_labels=torch.full((6,), -1))


@pytest.fixture(scope="module")
def text_model():
    import hf_tiny

    model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=512, n_ctx=32)
    model.tokenizer, model.vocab = hf_tiny.tokenizer(), None  # text read by the tokenizer
    return model


def test_a_lone_surrogate_in_a_prompt_is_named_with_its_position(text_model):
    with pytest.raises(ValueError, match=r"prompt has a lone surrogate '\\ud83d' at character 5"):
        text_model.to_tokens("Mary \ud83d and John")
    with pytest.raises(ValueError, match=r"prompt 1 has a lone surrogate '\\udc00' at character 0"):
        text_model.check_inputs(["fine", "\udc00 here"])
    with pytest.raises(ValueError, match="token has a lone surrogate"):
        metrics.logit_diff(" Mary\ud800", " John", model=text_model)
    assert text_model.to_tokens("Mary \U0001f600 and John").shape[0] == 1  # a pair is fine


def test_a_metric_given_by_name_says_what_to_build(mlp, images):
    from explorer.analysis import ablation_sweep
    from explorer.analysis.patching import activation_patching

    tokens = repeated_tokens(4, 4, 10, seed=0)
    model = zoo.attention_only_transformer(n_layers=1, d_model=16, d_vocab=10, n_ctx=9)
    with pytest.raises(
        TypeError, match=r"metric='accuracy' is a name.*metrics\.accuracy\(labels\)"
    ):
        ablate(mlp, images, units="neuron 0.3", metric="accuracy")
    with pytest.raises(TypeError, match=r"metrics\.next_token_loss\(tokens\)"):
        ablation_sweep(model, tokens, metric="next-token loss", granularity="head")
    with pytest.raises(TypeError, match=r"metrics\.logit_diff\(correct, wrong\)"):
        activation_patching(model, tokens, corrupted=tokens.roll(1, 0), metric="logit_diff")
    with pytest.raises(TypeError, match="'auroc' is not a metric: pass a function"):
        ablate(mlp, images, units="neuron 0.3", metric="auroc")
    with pytest.raises(TypeError, match=r"metrics\.accuracy is the builder, not a metric"):
        ablate(mlp, images, units="neuron 0.3", metric=metrics.accuracy)
    with pytest.raises(TypeError, match="metric must be a function .* got NoneType"):
        ablate(mlp, images, units="neuron 0.3", metric=None)


def test_confusion_labels_outside_the_classes_are_refused(mlp, images):
    from explorer.analysis.editing import confusion

    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    with pytest.raises(
        ValueError, match=r"labels must be class ids in 0\.\.9 .* got range 100\.\.105"
    ):
        confusion(mlp, images, labels=labels + 100)
    with pytest.raises(ValueError, match=r"got range -1\.\.4"):
        confusion(mlp, images, labels=labels - 1)
    with pytest.raises(ValueError, match="n_classes must be a positive integer, got 0"):
        confusion(mlp, images, labels=labels, n_classes=0)
    with pytest.raises(ValueError, match=r"0\.\.2 \(3 classes given by n_classes\)"):
        confusion(mlp, images, labels=labels, n_classes=3)
    assert confusion(mlp, images, labels=labels).matrix.sum() == 6


def test_a_view_of_no_model_says_it_needs_one():
    from explorer.views import AttentionView, InterventionPanel, show

    tokens = repeated_tokens(2, 4, 10, seed=0)
    with pytest.raises(
        TypeError, match=r"show needs a model handle, got NoneType: .*explorer\.load"
    ):
        show(None, tokens)
    with pytest.raises(TypeError, match="AttentionView needs a model handle, got NoneType"):
        AttentionView(None, tokens)
    with pytest.raises(TypeError, match="InterventionPanel needs a model handle, got str"):
        InterventionPanel(model="gpt2", inputs=tokens)


def test_neighbours_name_what_is_missing(mlp, images):
    from explorer.analysis import ablation_sweep
    from explorer.analysis.editing import confusion, predict
    from explorer.hypotheses import Examples

    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    for call, who in (
        (
            lambda: ablate(None, images, units="neuron 0.3", metric=metrics.accuracy(labels)),
            "ablate",
        ),
        (lambda: ablation_sweep(None, images, metric=metrics.accuracy(labels)), "ablation_sweep"),
        (lambda: confusion(None, images, labels=labels), "confusion"),
        (lambda: predict(None, images), "predict"),
    ):
        with pytest.raises(TypeError, match=f"{who} needs a model handle, got NoneType"):
            call()
    with pytest.raises(TypeError, match="confusion needs labels="):
        confusion(mlp, images, labels=None)
    with pytest.raises(TypeError, match="label must be ids .* got None"):
        metrics.accuracy(None)
    # labels for another batch: an error, not a broadcast (1 example vs 6 compared silently)
    with pytest.raises(ValueError, match="targets for 3 examples but the batch has 6"):
        ablate(mlp, images, units="neuron 0.3", metric=metrics.accuracy(labels[:3]))
    with pytest.raises(ValueError, match="targets for 6 examples but the batch has 1"):
        metrics.accuracy(labels)(mlp(images[:1]))
    with pytest.raises(ValueError, match=r"concept must be one flag per example .* \(6, 2\)"):
        Examples(images, concept=torch.ones(6, 2, dtype=torch.bool))
