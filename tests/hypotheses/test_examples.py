"""Splits and examples: what a hypothesis may be formed on and judged on."""

from __future__ import annotations

import pytest
import torch

from explorer.hypotheses import Examples, Split, split_examples
from explorer.hypotheses.examples import as_examples, check_disjoint


def test_split_refuses_empty_negative_repeated_and_non_integer_indices():
    with pytest.raises(ValueError, match="split 'held-out' is empty"):
        Split([], name="held-out")
    with pytest.raises(ValueError, match=">= 0"):
        Split([1, -2])
    with pytest.raises(ValueError, match="repeats"):
        Split([1, 1])
    with pytest.raises(TypeError, match="integers"):
        Split([0.5])


def test_overlapping_splits_are_refused_naming_the_shared_examples():
    with pytest.raises(
        ValueError, match=r"overlaps the formation split in 2 examples \(indices 3, 4\)"
    ):
        check_disjoint(Split(range(5)), Split(range(3, 9)))
    check_disjoint(Split(range(3)), Split(range(3, 9)))


def test_split_round_trips_through_its_compact_form_and_describes_itself():
    split = Split([0, 1, 2, 7, 9, 10], name="held-out")
    assert split.ranges() == [[0, 3], [7, 8], [9, 11]]
    assert Split.from_dict(split.to_dict()) == split
    assert split.describe() == "held-out: 6 examples (indices 0..2, 7, 9..10)"
    scattered = Split(range(0, 40, 2))
    assert f"sha {scattered.digest()}" in scattered.describe()
    assert Split(torch.tensor([4, 5])).indices == (4, 5)


def test_split_examples_is_a_seeded_partition():
    formation, held_out = split_examples(50, held_out=0.3, seed=3)
    assert len(held_out) == 15 and len(formation) == 35
    assert sorted(formation.indices + held_out.indices) == list(range(50))
    assert split_examples(50, held_out=0.3, seed=3) == (formation, held_out)
    assert split_examples(50, held_out=0.3, seed=4) != (formation, held_out)
    with pytest.raises(ValueError, match="empty split"):
        split_examples(1, held_out=0.5)


def test_examples_check_row_counts_and_subset_every_field():
    x = torch.arange(10).reshape(5, 2)
    with pytest.raises(ValueError, match="labels has 4 rows but inputs have 5"):
        Examples(inputs=x, labels=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        Examples(inputs=torch.zeros(0, 3))
    ex = Examples(inputs=x, labels=torch.arange(5), concept=[1, 0, 1, 0, 0])
    assert ex.concept.dtype == torch.bool
    sub = ex.subset(Split([4, 0]))
    assert sub.inputs.tolist() == [[8, 9], [0, 1]]
    assert sub.labels.tolist() == [4, 0] and sub.concept.tolist() == [False, True]
    with pytest.raises(ValueError, match="names example 7 but the data has 5 examples"):
        ex.subset(Split([7]))
    with pytest.raises(ValueError, match="a patching test needs Examples\\(corrupted=...\\)"):
        ex.require("corrupted", "a patching test")
    assert as_examples(x).inputs is x
    with pytest.raises(TypeError):
        as_examples([1, 2])
