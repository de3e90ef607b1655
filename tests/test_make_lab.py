"""`make lab` works on copies under an ignored folder and turns JupyterLab's news off.

Runs the Makefile's ``lab-workspace`` step (what ``make lab`` does before starting
JupyterLab) into a temporary venv and lab folder, and starts JupyterLab once with the
arguments ``make lab`` plans for the user running the tests (root included).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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


def _launch(*args: str) -> list[str]:
    """The ``jupyter lab`` line(s) ``make lab`` would run."""
    return [line for line in _make("-n", "lab", *args).splitlines() if "jupyter lab" in line]


def test_make_lab_opens_the_copy_and_the_default_folder_is_ignored(tmp_path):
    launch = _launch(f"VENV={tmp_path / 'venv'}", "LAB_DIR=lab", "LAB_UID=1000")
    assert launch == [
        f"cd lab && {tmp_path / 'venv'}/bin/jupyter lab --ServerApp.root_dir=. "
        "notebooks/quickstart.ipynb"
    ]  # the whole lab folder is served (tutorials/ too), the quickstart opened
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "lab/notebooks/quickstart.ipynb"],
        check=False,
    )
    assert ignored.returncode == 0, "lab/ must be in .gitignore"


def test_make_lab_allows_root_only_for_root(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"
    assert "--allow-root" in _launch(venv, "LAB_UID=0")[0]
    assert "--allow-root" not in _launch(venv, "LAB_UID=1000")[0]
    as_me = "--allow-root" in _launch(venv)[0]  # the user running make decides
    assert as_me == (os.getuid() == 0)


def test_the_planned_jupyter_lab_starts_as_the_user_running_the_tests(tmp_path):
    """Start JupyterLab with the arguments ``make lab`` plans (as root too: the default in
    containers, where Jupyter refuses to start without ``--allow-root``), then stop it."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", tmp_path / "notebooks")
    line = _launch(f"VENV={tmp_path / 'venv'}", "LAB_DIR=lab")[0]
    args = shlex.split(line.split("jupyter lab", 1)[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jupyter = Path(sys.executable).parent / "jupyter"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    command = [str(jupyter), "lab", *args, "--no-browser", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as r:
                    assert json.loads(r.read())["version"]
                    return
            except OSError:
                time.sleep(0.5)
        output = server.stdout.read() if server.poll() is not None else "(still starting)"
        raise AssertionError(f"jupyter lab {' '.join(args)} did not start: {output[-2000:]}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
