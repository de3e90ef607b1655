"""tutorials/grokking.ipynb runs top to bottom from the run that ships (EXPLORER_CI=1).

The notebook copies the shipped run (``explorer.studies.grokking_shipped``: 8 float16
checkpoints and the progress measures precomputed from the full run's checkpoints) into a
folder beside it, so nothing is trained here; it reads the progress table, scrubs the
checkpoints and tests its hypotheses on the shipped final and cleanup-start models.

It runs once, in JupyterLab: the ``lab_run`` fixture (tutorial_lab.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from figure_checks import figure_problems
from lab_driver import wait_until
from notebook_runner import PLOTLY, printed
from tutorial_lab import WIDGET_OUTPUT

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "grokking.ipynb"

pytestmark = pytest.mark.browser
LAB_OPTIONS = {"after_run": lambda page: _the_spectrum_follows_the_slider(page)}


@pytest.mark.slow
def test_it_runs_in_lab_and_the_spectrum_follows_the_slider(lab_run):
    assert lab_run.failure is None, lab_run.failure


@pytest.mark.slow
def test_the_grokking_notebook_runs_from_the_shipped_run(lab_run):
    from explorer.studies.grokking_shipped import SHIPPED_RUN
    from explorer.training import Run

    (run_dir,) = (lab_run.folder / "runs").glob("grokking-*")  # the notebook's default RUN_DIR
    nb = lab_run.nb
    text = printed(nb)
    run = Run.open(run_dir)
    assert run.steps == Run.open(SHIPPED_RUN).steps  # the shipped copy, not a new training run
    assert "precomputed from all" in text  # the progress table is labelled as such
    assert "key frequencies carry" in text
    assert "test accuracy reached 95% at epoch" in text
    assert "stayed below 20% until epoch" in text
    statuses = {
        claim: line.split()[0]
        for line in text.splitlines()
        for claim in ("to chance", "above 90%", "over 80% of held-out pairs")
        if line.strip().endswith(claim) and line.split()[0] in ("supported", "refuted")
    }
    assert statuses["to chance"] == statuses["above 90%"] == "supported", statuses
    # the circuit-first claim is judged on the last checkpoint before cleanup: its verdict
    # must be what the key-frequency logits of that checkpoint measure on the held-out pairs
    assert statuses["over 80% of held-out pairs"] == _circuit_first_verdict(run)
    clashes = _overlapping_phase_labels(nb, run.last_step)
    assert clashes == [], clashes
    # the spectrum is drawn inside its Output widget (the scrubber's on_step callback: the
    # Lab run checks it follows the slider), never printed into the cell that was running
    stray = [i for i, cell in enumerate(nb.cells) if SPECTRUM_TITLE in _figure_titles(cell)]
    assert stray == [], f"cells {stray} show the spectrum outside its widget"


SPECTRUM_TITLE = "embedding Fourier spectrum at epoch"


def _figure_titles(cell) -> str:
    return " ".join(
        str(out.get("data", {}).get(PLOTLY, {}).get("layout", {}).get("title", ""))
        for out in cell.get("outputs", [])
    )


def _circuit_first_verdict(run) -> str:
    import torch

    from explorer.analysis.fourier_accuracy import restricted_accuracy
    from explorer.studies.grokking import grokking_data, grokking_progress

    progress = grokking_progress(run)
    step = max(s for s in run.steps if s <= progress.phases.cleanup_start)
    data = grokking_data(run)
    tokens, labels = data.tokens[data.test_idx], data.labels[data.test_idx]
    with torch.no_grad():
        kept = restricted_accuracy(
            run.load_model(step), tokens, labels=labels, frequencies=progress.key.frequencies
        )
    accuracy = float(kept.mean())
    return "supported" if accuracy > 0.8 else "refuted"


PHASES = ("memorisation", "circuit formation", "cleanup")


def _overlapping_phase_labels(nb, last_step: int) -> list[tuple[str, str]]:
    """Pairs of phase labels drawn at the same height closer than their text is wide.

    A label starts at its phase's first epoch (xanchor left); its width is estimated at
    7 px per character, on a plot about 700 px wide spanning epochs 0 to ``last_step``.
    """
    clashes = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            fig = out.get("data", {}).get("application/vnd.plotly.v1+json")
            if not fig:
                continue
            labels = [a for a in fig["layout"].get("annotations", []) if a.get("text") in PHASES]
            if not labels:
                continue
            per_px = last_step / 700
            for i, a in enumerate(labels):
                for b in labels[i + 1 :]:
                    if a["y"] != b["y"]:
                        continue
                    left, right = sorted((a, b), key=lambda label: label["x"])
                    if right["x"] - left["x"] < 7 * len(left["text"]) * per_px:
                        clashes.append((left["text"], right["text"]))
    return clashes


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
