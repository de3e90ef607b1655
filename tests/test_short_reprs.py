"""Nothing prints its tensors: datasets, examples, evidence and verdicts have short reprs,
and no public dataclass holding a tensor keeps the repr dataclasses generate."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
import torch

import explorer
from explorer._display import compact_repr

BULKY = ("Tensor", "Float[", "Int[", "Bool[")


def holds_data(annotation: str) -> bool:
    """Whether a field annotated so holds tensors (a function taking tensors does not)."""
    return any(w in annotation for w in BULKY) and not annotation.startswith("Callable")


def public_dataclasses():
    for info in pkgutil.walk_packages(explorer.__path__, "explorer."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                not name.startswith("_")
                and inspect.isclass(obj)
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == module.__name__
            ):
                yield obj


def test_no_dataclass_with_a_tensor_prints_it_whole():
    generated = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in public_dataclasses()
        if any(f.repr and holds_data(str(f.type)) for f in dataclasses.fields(cls))
        and hasattr(cls.__repr__, "__wrapped__")  # dataclasses' own repr (reprlib-wrapped)
    ]
    assert generated == []


def test_the_check_sees_a_generated_repr():
    @dataclasses.dataclass
    class Holder:
        values: torch.Tensor

    assert hasattr(Holder.__repr__, "__wrapped__")


def test_compact_repr_shows_shapes_and_lengths():
    @dataclasses.dataclass(repr=False)
    class Holder:
        values: torch.Tensor
        ids: tuple
        name: str = "x"
        __repr__ = compact_repr

    text = repr(Holder(torch.zeros(5000, 784), tuple(range(5000))))
    assert text == "Holder(values=tensor[5000, 784] float32, ids=(5000 items), name='x')"


def test_datasets_print_their_shapes():
    from explorer.data import load_mnist, modular_arithmetic

    digits = load_mnist("sklearn")
    assert "train_images=tensor[1438, 1, 8, 8] float32" in repr(digits) and len(repr(digits)) < 300
    data = modular_arithmetic(113)
    assert "tokens=tensor[12769, 3] int64" in repr(data) and len(repr(data)) < 300


@pytest.fixture(scope="module")
def concept():
    from explorer.hypotheses import planted

    return planted.concept_neuron_model(), planted.concept_examples(1000)


def test_examples_splits_and_verdicts_print_short(concept):
    from explorer.hypotheses import Hypothesis, NeuronSelectivity, Split

    model, data = concept
    assert (
        repr(data).startswith("Examples(inputs=tensor[1000, 8] float32") and len(repr(data)) < 300
    )
    held_out = Split(range(500, 1000))
    assert repr(held_out) == "Split(indices=(500 items), name='')"
    h = Hypothesis(
        claim="neuron 0.3 detects the planted concept",
        units="neuron 0.3",
        measure=NeuronSelectivity("auroc"),
        threshold=0.9,
        formation=Split(range(500)),
        held_out=held_out,
    )
    verdict = h.test(model, data)
    assert repr(verdict).startswith("Verdict(supported: auroc") and len(repr(verdict)) <= 400


def test_stored_hypotheses_print_their_status_not_their_verdicts(concept):
    from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split

    model, data = concept
    store = HypothesisStore(":memory:")
    for unit in ("neuron 0.3", "neuron 0.0"):
        h = Hypothesis(
            claim=f"{unit} detects the planted concept",
            units=unit,
            measure=NeuronSelectivity("auroc"),
            threshold=0.9,
            formation=Split(range(500)),
            held_out=Split(range(500, 1000)),
        )
        store.save(h)
        for _ in range(5):
            store.record(h.test(model, data))
    listed = store.hypotheses()
    assert repr(listed) == "HypothesisList(2 hypotheses: 1 supported, 1 refuted)"
    assert "<th scope='row' style='text-align:left'>neuron 0.0 detects" in listed._repr_html_()
    one = repr(listed[0])
    assert "supported, 5 verdicts" in one and len(one) < 200
