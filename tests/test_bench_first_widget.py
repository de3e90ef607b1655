"""Smoke test of the first-contact benchmark (no speed asserted: the numbers are measured
by ``make bench``); it must find the quickstart's first widget in its first widget cell."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_first_widget


@pytest.mark.slow
def test_first_widget_benchmark_reaches_the_attention_view():
    (row,) = bench_first_widget.run("tiny")
    assert row.status == "ok" and math.isfinite(row.ours) and row.naive > row.ours
    assert row.met in (True, False)
    nb = nbformat.read(bench_first_widget.NOTEBOOK, as_version=4)
    cell = nb.cells[row.details["cell"]]
    assert "AttentionView(model, prompts)" in cell.source
