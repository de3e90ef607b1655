"""The examples in the views' docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "explorer.views.serialise",
    "explorer.views.attention_view",
    "explorer.views.neuron_view",
    "explorer.views.audit_view",
    "explorer.views.intervention_panel",
    "explorer.views.patching_view",
    "explorer.views.explorer_view",
    "explorer.views.snapshot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
