"""Agreement: Cohen's and Fleiss' kappa against textbook values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from explorer.hypotheses import Label, agreement, agreement_by_unit, cohen_kappa, fleiss_kappa

# Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 -> p_o 0.7, p_e 0.5.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.choice(["loop", "line", "curve"], 40)
    b = np.where(rng.random(40) < 0.6, a, rng.choice(["loop", "line", "curve"], 40))
    assert cohen_kappa(list(a), list(b)) == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_kappa_textbook_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-4)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [2, 1]])


def test_fleiss_for_two_raters_is_close_to_cohen_and_perfect_is_one():
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))


def test_agreement_from_labels_matches_the_table():
    categories = "abcde"
    labels = []
    for item, row in enumerate(FLEISS_TABLE):
        raters = iter(range(14))
        for category, count in zip(categories, row):
            labels += [
                Label("neuron 0.3", f"r{next(raters)}", category, str(item)) for _ in range(count)
            ]
    result = agreement(labels, "neuron 0.3")
    assert result.method == "fleiss" and result.n_items == 10 and len(result.raters) == 14
    assert result.kappa == pytest.approx(fleiss_kappa(FLEISS_TABLE))
    assert result.strength == "fair"


def test_agreement_by_unit_picks_the_method_and_explains_gaps():
    labels = [
        Label("neuron 0.3", "ada", "loop", "1"),
        Label("neuron 0.3", "bob", "loop", "1"),
        Label("neuron 0.3", "ada", "line", "2"),
        Label("neuron 0.3", "bob", "loop", "2"),
        Label("neuron 0.3", "ada", "line", "3"),
        Label("neuron 0.3", "bob", "line", "3"),
        Label("neuron 0.3", "ada", "loop", "4"),  # bob skipped item 4: left out
        Label("head 1.4", "ada", "induction"),
        Label("neuron 0.5", "ada", "x", "1"),
        Label("neuron 0.5", "bob", "y", "2"),
    ]
    by_unit = agreement_by_unit(labels)
    assert list(by_unit) == ["head 1.4", "neuron 0.3", "neuron 0.5"]
    n3 = by_unit["neuron 0.3"]
    assert n3.method == "cohen" and n3.n_items == 3
    assert n3.kappa == pytest.approx(
        cohen_kappa_score(["loop", "line", "line"], ["loop", "loop", "line"])
    )
    assert by_unit["head 1.4"].method == "none" and "two raters" in by_unit["head 1.4"].note
    assert "no item was labelled by all 2 raters" in by_unit["neuron 0.5"].note
    assert by_unit["neuron 0.5"].to_dict()["kappa"] is None


def test_a_later_label_replaces_an_earlier_one_and_empty_fields_are_refused():
    labels = [Label("u", "a", "x", "1"), Label("u", "b", "y", "1"), Label("u", "b", "x", "1")]
    assert agreement(labels).observed == 1.0
    with pytest.raises(ValueError, match="non-empty rater"):
        Label("u", "", "x")
