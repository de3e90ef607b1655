"""The top-level facade does what it says: each name in ``explorer.__all__`` is exercised
once on a tiny model, with one assertion about the value it gives. A name added to
``__all__`` without a test here fails ``test_every_public_name_has_a_behaviour_test``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import explorer
from explorer.data import repeated_tokens
from explorer.hypotheses import NeuronSelectivity, planted

torch.set_num_threads(1)

TESTED: dict[str, str] = {}


def covers(*names: str):
    """Mark a test as the behaviour test of these public names."""

    def mark(fn):
        for name in names:
            TESTED[name] = fn.__name__
        return fn

    return mark


@pytest.fixture(scope="module")
def tiny():
    return explorer.zoo.attention_only_transformer(
        n_layers=2, d_model=32, n_heads=2, d_vocab=20, n_ctx=16, seed=0
    )


@covers("zoo", "ModelHandle")
def test_the_zoo_builds_a_model_handle_that_runs(tiny):
    assert isinstance(tiny, explorer.ModelHandle)
    assert tiny(repeated_tokens(3, 4, 20)).shape == (3, 9, 20)  # [batch, pos, vocab] logits


@covers("TransformerConfig")
def test_load_builds_a_transformer_from_its_config():
    cfg = explorer.TransformerConfig(n_layers=3, d_model=16, n_heads=4, d_vocab=11, n_ctx=8)
    model = explorer.load(cfg)
    assert (model.n_layers, model.n_heads, model.d_vocab) == (3, 4, 11)


@covers("MLPConfig")
def test_load_builds_an_mlp_from_its_config():
    model = explorer.load(explorer.MLPConfig(hidden=(12, 6)))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@covers("CNNConfig")
def test_load_builds_a_cnn_from_its_config():
    model = explorer.load(explorer.CNNConfig())
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@covers("save_checkpoint", "load")
def test_a_saved_checkpoint_loads_back_with_the_same_weights(tiny, tmp_path):
    explorer.save_checkpoint(tiny, tmp_path / "tiny")
    again = explorer.load(tmp_path / "tiny")
    tokens = repeated_tokens(2, 4, 20)
    assert torch.equal(again(tokens), tiny(tokens))


def test_load_opens_a_shipped_checkpoint_by_name():
    model = explorer.load("shipped:quickstart-induction")
    assert model.name == "quickstart-induction" and model.n_layers == 2


@covers("Run")
def test_a_run_records_checkpoints_and_metrics_that_load_reads(tiny, tmp_path):
    run = explorer.Run.create(tmp_path / "run", tiny)
    run.save_checkpoint(tiny, 0)
    run.log(0, {"train_loss": 2.5})
    opened = explorer.Run.open(tmp_path / "run")
    assert opened.steps == (0,) and opened.metrics().get("train_loss").values.tolist() == [2.5]
    tokens = repeated_tokens(2, 4, 20)
    assert torch.equal(explorer.load(tmp_path / "run", step=0)(tokens), tiny(tokens))


@covers("show", "Explorer")
def test_show_opens_every_view_linked(tiny):
    ex = explorer.show(tiny, repeated_tokens(4, 6, 20))
    assert isinstance(ex, explorer.Explorer)
    ex.intervention.select(1, 1)  # a click in one view moves the others
    assert (ex.attention.layer, ex.attention.head) == (1, 1)


@pytest.fixture(scope="module")
def concept():
    return planted.concept_neuron_model(), planted.concept_examples(200)


@covers("Hypothesis", "Split", "Examples")
def test_a_true_hypothesis_is_supported_and_a_false_one_refuted(concept):
    model, data = concept
    assert isinstance(data, explorer.Examples)

    def claim(unit):
        return explorer.Hypothesis(
            claim=f"{unit} detects the planted concept",
            units=unit,
            measure=NeuronSelectivity("auroc"),
            threshold=0.9,
            formation=explorer.Split(range(100)),
            held_out=explorer.Split(range(100, 200)),
        )

    assert claim("neuron 0.3").test(model, data).status == "supported"
    assert claim("neuron 0.0").test(model, data).status == "refuted"


@covers("HypothesisStore")
def test_the_store_keeps_hypotheses_and_verdicts(concept):
    model, data = concept
    h = explorer.Hypothesis(
        claim="neuron 0.3 detects the planted concept",
        units="neuron 0.3",
        measure=NeuronSelectivity("auroc"),
        threshold=0.9,
        formation=explorer.Split(range(100)),
        held_out=explorer.Split(range(100, 200)),
    )
    with explorer.HypothesisStore(":memory:") as store:
        store.save(h)
        store.record(h.test(model, data))
        stored = store.get(h.id)
        assert (stored.hypothesis.claim, stored.status) == (h.claim, "supported")


@covers("register_measure")
def test_a_registered_measure_judges_a_hypothesis_stored_by_name(concept):
    from explorer.hypotheses import unregister_measure

    model, data = concept

    def concept_share(model, examples, units):
        return examples.concept.double()

    explorer.register_measure("concept_share", concept_share)
    try:
        h = explorer.Hypothesis(
            claim="most held-out examples show the concept",
            units="neuron 0.3",
            measure="concept_share",
            threshold=0.1,
            formation=explorer.Split(range(100)),
            held_out=explorer.Split(range(100, 200)),
        )
        reloaded = explorer.Hypothesis.from_json(h.to_json())
        assert reloaded.test(model, data).value == pytest.approx(
            float(data.concept[100:].double().mean())
        )
    finally:
        unregister_measure("concept_share")


def test_every_public_name_has_a_behaviour_test():
    assert sorted(TESTED) == sorted(explorer.__all__)


def test_import_explorer_is_light():
    code = (
        "import sys, explorer\n"
        "print(sorted(m for m in ('anywidget', 'ipywidgets', 'plotly', 'transformer_lens', 'sqlalchemy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_an_unknown_attribute_names_itself():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        explorer.nope  # noqa: B018
