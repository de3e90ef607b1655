"""The tutorials whose numbers are checked elsewhere, and the live-session notebook, run top
to bottom in a real JupyterLab, checked as a user sees them (tutorial_lab.py).

The other tutorials (auditing, MNIST, induction heads, when grokking happens, the
standard-library LM, features, fine-tuning) run in
Lab once, in their own test modules (tests/browser/test_*_notebook.py), whose tests then
check the numbers that same run computed. The grokking tutorial's spectrum must also follow
the scrubber's slider.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from figure_checks import figure_problems
from lab_driver import wait_until
from tutorial_lab import WIDGET_OUTPUT, check_in_lab, copy_into_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = {
    "grokking": REPO / "tutorials" / "grokking.ipynb",
    "live_session": REPO / "notebooks" / "live_session.ipynb",
}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_in_lab_and_every_widget_renders(name, lab_server, page, artifacts):
    path = copy_into_lab(lab_server, NOTEBOOKS[name], name)
    after = _the_spectrum_follows_the_slider if name == "grokking" else None
    check_in_lab(page, lab_server, path, name, artifacts, after_run=after)


SPECTRUM = "embedding Fourier spectrum at epoch"


def _the_spectrum_follows_the_slider(page):
    """The spectrum is drawn inside the scrubber's own widget output (the VBox of the
    scrubber and the spectrum's Output widget), for the step on display: a later epoch
    after Run All (the last cells move the scrubber), then epoch 0 once the slider moves to
    the first checkpoint (its on_step callback runs for the page). Looked for inside that
    widget only: a spectrum printed into another cell does not count."""
    scrubber = page.locator('[data-testid="training-scrubber"]').first
    widget = page.locator(WIDGET_OUTPUT).filter(has=scrubber).first
    # the Output widget renders its outputs in an output area of its own, inside the VBox;
    # plotly's renderer draws there as .jp-RenderedPlotly
    plots = widget.locator(".jp-RenderedPlotly")
    wait_until(
        lambda: plots.count() == 1 and SPECTRUM in plots.first.text_content(),
        timeout_s=120,
        what="the spectrum drawn inside the scrubber's widget",
    )
    assert f"{SPECTRUM} 0" not in plots.first.text_content()  # the last step, not the first
    assert figure_problems(page, "grokking") == []
    slider = scrubber.locator('[data-testid="step-slider"]')
    slider.scroll_into_view_if_needed()
    slider.evaluate("el => { el.value = 0; el.dispatchEvent(new Event('change')); }")
    wait_until(
        lambda: plots.count() == 1 and f"{SPECTRUM} 0" in plots.first.text_content(),
        timeout_s=120,
        what="the spectrum of epoch 0 inside the scrubber's widget",
    )
