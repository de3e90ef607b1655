"""The points of a sweep: grids, lists, seeds, names, and what is refused."""

from __future__ import annotations

import pytest

from explorer.sweep import STUDIES, expand_points

FIELDS = STUDIES["grokking"].fields


def test_a_grid_is_every_combination_in_order_crossed_with_seeds():
    pts = expand_points(
        grid={"weight_decay": [0.1, 1.0], "train_frac": [0.3, 0.5]}, seeds=[0, 1], fields=FIELDS
    )
    assert len(pts) == 8
    assert pts[0].settings == {"weight_decay": 0.1, "train_frac": 0.3, "seed": 0}
    assert pts[0].name == "weight_decay=0.1_train_frac=0.3_seed=0"
    assert pts[-1].name == "weight_decay=1_train_frac=0.5_seed=1"
    assert len({p.name for p in pts}) == 8


def test_a_list_of_points_and_odd_values_give_safe_names():
    pts = expand_points(points=[{"betas": [0.9, 0.99]}, {"lr": 1e-3}], fields=FIELDS)
    assert [p.name for p in pts] == ["betas=0.9-0.99", "lr=0.001"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grid": {"wd": [1]}}, r"unknown settings \['wd'\]: this study's settings are p, "),
        ({"grid": {"lr": 0.1}}, r"grid\['lr'\] must be a non-empty list"),
        ({"grid": {"lr": []}}, r"grid\['lr'\] must be a non-empty list"),
        ({}, "give either grid="),
        ({"grid": {"lr": [1]}, "points": [{"lr": 1}]}, "give either grid="),
        ({"points": []}, "points is empty"),
        ({"points": [{"lr": 1}, {"lr": 1}]}, "two points have the same name 'lr=1'"),
        ({"grid": {"seed": [1]}, "seeds": [0]}, "give seeds= or a 'seed' setting"),
        ({"grid": {"lr": [1]}, "seeds": [0.5]}, "seeds must be a non-empty list of integers"),
        ({"points": [{"lr": object()}]}, "must be JSON-serialisable"),
    ],
)
def test_bad_points_are_refused_with_the_reason(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        expand_points(fields=FIELDS, **kwargs)
