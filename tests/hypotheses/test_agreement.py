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


def _two_rater_table(a, b):
    """``counts[item, category]`` of two raters' labels (each row sums to 2)."""
    categories = sorted(set(a) | set(b))
    return [[(x == c) + (y == c) for c in categories] for x, y in zip(a, b)]


def test_fleiss_for_two_raters_is_scotts_pi_and_close_to_cohen():
    """On two raters Fleiss' kappa is Scott's pi: chance agreement from the pooled labels,
    where Cohen's kappa takes each rater's own. So it equals Cohen's kappa when the two
    raters use the categories equally often, and is slightly below it otherwise."""
    # Cohen's textbook table: both yes 20, A yes B no 5, A no B yes 10, both no 15.
    # p_o = 0.7; pooled yes = (25 + 30) / 100 = 0.55, so Scott's p_e = 0.55² + 0.45² = 0.505
    # and pi = (0.7 - 0.505) / (1 - 0.505) = 13/33; Cohen's p_e = 0.5 x 0.6 + 0.5 x 0.4 = 0.5.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    fleiss = fleiss_kappa(_two_rater_table(a, b))
    assert fleiss == pytest.approx(13 / 33)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert 0 < cohen_kappa(a, b) - fleiss < 0.01
    # the same raters with equal marginals (25 yes each): p_o 0.8, p_e 0.5 for both: 0.6
    b_even = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 5 + ["no"] * 20
    assert fleiss_kappa(_two_rater_table(a, b_even)) == pytest.approx(0.6)
    assert cohen_kappa(a, b_even) == pytest.approx(0.6)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_never_exceeds_cohen_on_two_raters(seed):
    rng = np.random.default_rng(seed)
    a = list(rng.choice(["loop", "line", "curve"], 60, p=[0.5, 0.3, 0.2]))
    b = list(np.where(rng.random(60) < 0.5, a, rng.choice(["loop", "line", "curve"], 60)))
    n = len(a)
    pooled = {c: (a.count(c) + b.count(c)) / (2 * n) for c in set(a) | set(b)}
    observed = sum(x == y for x, y in zip(a, b)) / n
    scotts_pi = (observed - sum(s * s for s in pooled.values())) / (
        1 - sum(s * s for s in pooled.values())
    )
    fleiss = fleiss_kappa(_two_rater_table(a, b))
    assert fleiss == pytest.approx(scotts_pi)
    assert fleiss <= cohen_kappa(a, b) + 1e-12


def test_perfect_agreement_is_one_and_no_variety_is_undefined():
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
