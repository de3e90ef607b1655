"""Fixtures for the browser suite: a private JupyterLab server and headless Chromium.

The server listens on 127.0.0.1 on a free port with a random token, in a temporary root
folder holding a copy of the quickstart, with its own Jupyter config, runtime, data and
settings folders (nothing of the user's is read or written). It is stopped through the
PID it reports itself (``jupyter server list --json`` on its runtime folder).

Chromium is Debian's (/usr/bin/chromium, ``make browser-deps``); Playwright never
downloads a browser here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_driver import lab_page
from tutorial_lab import run_in_lab

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"


@dataclass(frozen=True)
class LabServer:
    url: str
    token: str
    root: Path
    pid: int

    def lab(self, path: str) -> str:
        # reset: start from an empty workspace, not with the last test's notebooks open
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def notebook7(self, path: str) -> str:
        return f"{self.url}/notebooks/{path}?token={self.token}"

    def tree(self) -> str:
        return f"{self.url}/tree?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every kernel session (each test's notebook kernel holds a model)."""
        headers = {"Authorization": f"token {self.token}"}
        request = urllib.request.Request(f"{self.url}/api/sessions", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as r:
            sessions = json.load(r)
        for session in sessions:
            delete = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", headers=headers, method="DELETE"
            )
            urllib.request.urlopen(delete, timeout=30).close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(config_dir: Path, settings_dir: Path, workspaces_dir: Path) -> None:
    """Lab settings: render every cell (no windowing), no news toast, no update checks."""
    settings = {
        ("notebook-extension", "tracker"): {"windowingMode": "none"},
        ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
    }
    for (package, plugin), values in settings.items():
        folder = settings_dir / "@jupyterlab" / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
    app = {
        "user_settings_dir": str(settings_dir),
        "workspaces_dir": str(workspaces_dir),
        "expose_app_in_browser": True,
    }
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    **app,
                    "news_url": None,
                    "extension_manager": "readonly",
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                },
                "JupyterNotebookApp": app,
                "ServerApp": {"open_browser": False},
            }
        )
    )


def _server_pid(env: dict[str, str], port: int) -> int | None:
    """The PID the server on ``port`` reports in its runtime folder (``$!`` may be a wrapper)."""
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for line in out.splitlines():
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            continue
        if int(info.get("port", -1)) == port:
            return int(info["pid"])
    return None


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run `make browser-deps` (apt-get install chromium)")
    base = tmp_path_factory.mktemp("lab")
    root, config, runtime, data, settings, workspaces, ipython = (
        base / name
        for name in ("root", "config", "runtime", "data", "settings", "workspaces", "ipython")
    )
    for folder in (root, config, runtime, data, workspaces, ipython):
        folder.mkdir()
    _write_config(config, settings, workspaces)
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(data),
        "IPYTHONDIR": str(ipython),
        "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": "1",
        "EXPLORER_QUICKSTART_THREADS": "1",
        "EXPLORER_CI": "1",  # the tutorials' small setting (tutorial_lab.py)
        # where the auditing and MNIST tutorials write what they computed: a path relative
        # to each notebook's folder, its kernel's working folder (tutorial_lab.py)
        "EXPLORER_RESULTS": "results.json",
    }
    log = (base / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True",
            f"--ServerApp.root_dir={root}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"JupyterLab did not start:\n{(base / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    pid = _server_pid(env, port) or proc.pid
    try:
        yield LabServer(url, token, root, pid)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[object]:
    last = ARTIFACTS / f"last-{request.node.name}.png"
    with lab_page(browser, last, lab_server=lab_server) as page:
        yield page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab_run(request, browser, lab_server, artifacts):
    """The test module's tutorial (its ``NOTEBOOK``), run once in JupyterLab and checked as a
    user sees it (tutorial_lab.py), with the module's ``LAB_OPTIONS`` (``least_views``,
    ``after_run``; ``busy_cores``: beside two busy loops, holding the run's CPU lock as
    ``cpu_to_itself`` does, so no test that bounds wall-clock latency measures them)."""
    options = dict(getattr(request.module, "LAB_OPTIONS", {}))
    notebook = request.module.NOTEBOOK
    if not options.pop("busy_cores", False):
        return run_in_lab(browser, lab_server, notebook, notebook.stem, artifacts, **options)
    from benchmarks.lab_first_widget import busy_cores
    from explorer._cache import one_writer

    with one_writer(request.getfixturevalue("run_folder") / "cpu"), busy_cores(2):
        return run_in_lab(browser, lab_server, notebook, notebook.stem, artifacts, **options)
