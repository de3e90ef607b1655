"""`make lab` works on copies under an ignored folder and turns JupyterLab's news off.

Runs the Makefile's ``lab-workspace`` step (what ``make lab`` does before starting
JupyterLab) into a temporary venv and lab folder; JupyterLab itself is not started.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make(*args: str) -> str:
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout


def _tracked_status() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_lab_workspace_copies_notebooks_once_and_installs_the_overrides(tmp_path):
    venv, lab = tmp_path / "venv", tmp_path / "lab"
    before = _tracked_status()
    _make("lab-workspace", f"VENV={venv}", f"LAB_DIR={lab}")
    originals = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("tutorials/*.ipynb"))
    assert originals
    for original in originals:
        copy = lab / original.relative_to(ROOT)
        assert copy.read_bytes() == original.read_bytes()
    overrides = json.loads((venv / "share/jupyter/lab/settings/overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"

    # a second run keeps the user's work in the copy
    edited = lab / "notebooks" / "quickstart.ipynb"
    edited.write_text(edited.read_text().replace("explorer quickstart", "my quickstart"))
    _make("lab-workspace", f"VENV={venv}", f"LAB_DIR={lab}")
    assert "my quickstart" in edited.read_text()
    assert _tracked_status() == before


def test_make_lab_opens_the_copy_and_the_default_folder_is_ignored(tmp_path):
    plan = _make("-n", "lab", f"VENV={tmp_path / 'venv'}", "LAB_DIR=lab")
    launch = [line for line in plan.splitlines() if "jupyter lab" in line]
    assert launch == [
        f"cd lab && {tmp_path / 'venv'}/bin/jupyter lab --ServerApp.root_dir=. "
        "notebooks/quickstart.ipynb"
    ]  # the whole lab folder is served (tutorials/ too), the quickstart opened
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "lab/notebooks/quickstart.ipynb"],
        check=False,
    )
    assert ignored.returncode == 0, "lab/ must be in .gitignore"
