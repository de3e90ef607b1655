"""The examples in the docstrings of the score, Fourier and zoo modules run as shown."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "explorer.analysis.head_scores",
        "explorer.analysis.fourier",
        "explorer.analysis.composition",
        "explorer.models.zoo",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
