"""The examples in the analysis modules' docstrings run as shown (scores, Fourier, the zoo,
and the kitchen-sink modules)."""

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
        "explorer.analysis.editing",
        "explorer.analysis.attribution",
        "explorer.analysis.feature_vis",
        "explorer.analysis.probes",
        "explorer.studies.editing",
        "explorer.studies.attribution_benchmark",
        "explorer.studies.induction",
    ],
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
