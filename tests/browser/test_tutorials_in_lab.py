"""The live-session notebook (the mentor's) runs top to bottom in a real JupyterLab, checked
as a user sees it (the ``lab_run`` fixture, tutorial_lab.py); tests/test_live_session_notebook.py
runs it as a room.

Every tutorial runs in Lab once, in its own test module (tests/browser/test_*_notebook.py),
whose tests then check the numbers that same run computed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "live_session.ipynb"


def test_the_live_session_notebook_runs_in_lab_and_every_widget_renders(lab_run):
    assert lab_run.failure is None, lab_run.failure
