"""The live-session notebook (the mentor's) runs top to bottom in a real JupyterLab, checked
as a user sees it (tutorial_lab.py); tests/test_live_session_notebook.py runs it as a room.

Every tutorial runs in Lab once, in its own test module (tests/browser/test_*_notebook.py),
whose tests then check the numbers that same run computed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tutorial_lab import check_in_lab, copy_into_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = {
    "live_session": REPO / "notebooks" / "live_session.ipynb",
}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_in_lab_and_every_widget_renders(name, lab_server, page, artifacts):
    path = copy_into_lab(lab_server, NOTEBOOKS[name], name)
    check_in_lab(page, lab_server, path, name, artifacts)
