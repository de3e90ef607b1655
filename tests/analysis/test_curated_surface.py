"""The curated ``explorer.analysis`` (issue 24): names exported before keep working for one
release, each with a ``DeprecationWarning`` that says where the name lives now."""

from __future__ import annotations

import importlib

import pytest
import torch

import explorer.analysis
from explorer.analysis import metrics


def test_an_old_top_level_name_warns_and_still_works():
    with pytest.warns(DeprecationWarning, match=r"explorer\.analysis\.metrics\.recovery"):
        old = explorer.analysis.recovery
    values = torch.tensor([1.0, 2.0, 3.0])
    assert old is metrics.recovery
    assert old(values, 3.0, 1.0).tolist() == [0.0, 0.5, 1.0]


def test_an_old_import_of_a_helper_warns_and_names_its_module():
    with pytest.warns(
        DeprecationWarning, match=r"explorer\.analysis\.neurons\.histogram \(internal"
    ):
        from explorer.analysis import histogram
    assert histogram(torch.arange(10.0), bins=5).counts.sum() == 10


@pytest.mark.parametrize(
    "name", sorted(n for names in explorer.analysis._MOVED.values() for n in names.split())
)
def test_every_name_exported_before_still_imports(name):
    with pytest.warns(DeprecationWarning, match=f"explorer.analysis.{name} is deprecated"):
        obj = getattr(explorer.analysis, name)
    module = explorer.analysis._MOVED_FROM[name]
    assert obj is getattr(importlib.import_module(f"explorer.analysis.{module}"), name)


def test_the_moved_metric_factories_still_import_from_induction():
    with pytest.warns(DeprecationWarning, match=r"explorer\.analysis\.metrics\.repeated_half"):
        from explorer.analysis.induction import repeated_half_advantage
    assert repeated_half_advantage is metrics.repeated_half_advantage


def test_a_name_that_never_existed_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_verb'"):
        explorer.analysis.no_such_verb  # noqa: B018
