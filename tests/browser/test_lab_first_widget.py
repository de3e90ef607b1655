"""The JupyterLab time-to-first-widget benchmark measures what it says (no speed asserted:
``python -m benchmarks.lab_first_widget`` records the figures in docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import lab_first_widget

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_previous_way_differs_only_by_importing_transformer_lens():
    ours = json.loads(lab_first_widget.NOTEBOOK.read_text())
    previous = json.loads(lab_first_widget.previous_way())
    changed = [(a, b) for a, b in zip(ours["cells"], previous["cells"], strict=True) if a != b]
    assert len(changed) == 1
    before, after = ("".join(c["source"]) for c in changed[0])
    assert after == "import transformer_lens  # the previous way: loading imported it\n" + before


def test_a_fresh_kernel_draws_the_attention_view(browser):
    # the suite's Chromium: Playwright's sync API cannot start a second time in this thread.
    # Ours only: the previous way is the same notebook plus one import (the test above), and
    # opening it too doubled this test's two minutes under load.
    result = lab_first_widget.measure(runs=1, burners=0, browser=browser, ways=("ours",))
    assert set(result["runs"]) == {"ours"}
    (run,) = result["runs"]["ours"]
    assert 0 < run["kernel_ready"] < run["first_widget"] < 300
    assert math.isfinite(result["ours_median_first_widget_s"])


def test_the_ways_are_checked():
    with pytest.raises(ValueError, match="ways must name 'ours' and/or 'previous'"):
        lab_first_widget.measure(ways=("theirs",))
