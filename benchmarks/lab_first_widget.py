"""Seconds from opening the quickstart in JupyterLab to its first widget drawn, as a user sees it.

A private JupyterLab server (127.0.0.1, random token, its own config/runtime/settings folders
with the news pop-up off, as ``make lab`` sets it) serves a copy of a notebook; headless
Chromium (Debian's ``/usr/bin/chromium``) opens it with a fresh kernel, runs every cell as
*Run > Run All Cells* does as soon as the kernel is ready, and the clock stops when the first
view's canvas has drawn content (two distinct pixel colours), on the page's own clock, which
starts when the page is requested, so the time includes loading JupyterLab's page, starting the kernel,
every import and the view's first draw.

``busy_cores(n)`` runs ``n`` processes of ``while True: pass`` beside it (the CPU burner of
the browser suite's load test), so "on a busy 2-core machine" is measured, not assumed.

    python -m benchmarks.lab_first_widget --runs 5 --burners 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
FIRST_VIEW = '[data-testid="attention-view"]'

KERNEL_READY = """(path) => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) return false;
  const kernel = panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return !!(kernel && kernel.status === 'idle' && panel.content && panel.content.widgets.length);
}"""

# Installed in the page before Run All: every 50 ms (page clock) it notes when the first view's
# canvas first holds two colours. The page clock (performance.now()) starts when the page is
# requested. (Playwright's own wait_for_function polling was seen to return 30 s after the
# page had drawn, once the kernel went idle, so the page times itself.)
WATCH = """(selector) => {
  window.__firstWidgetMs = null;
  const inked = () => {
    for (const c of document.querySelectorAll(selector + ' canvas')) {
      if (!c.width || !c.height) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const first = d[0] * 65536 + d[1] * 256 + d[2];
      for (let i = 4; i < d.length; i += 4) {
        if (d[i] * 65536 + d[i + 1] * 256 + d[i + 2] !== first) return true;
      }
    }
    return false;
  };
  const tick = () => {
    if (inked()) window.__firstWidgetMs = performance.now();
    else setTimeout(tick, 50);
  };
  tick();
  return performance.now();
}"""


@contextlib.contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """``n`` processes spinning ``while True: pass`` for as long as the block runs."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0 if n else 0.0)
        yield
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            burner.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def lab_server(
    notebooks: dict[str, str], env_extra: dict[str, str] | None = None
) -> Iterator[Callable[[str], str]]:
    """A JupyterLab server serving ``{file name: notebook JSON}``; yields ``url(name)``."""
    with tempfile.TemporaryDirectory(prefix="explorer-lab-bench-") as tmp:
        base = Path(tmp)
        root, config, runtime, data, settings, ipython = (
            base / n for n in ("root", "config", "runtime", "data", "settings", "ipython")
        )
        for folder in (root, config, runtime, data, settings, ipython):
            folder.mkdir()
        for name, text in notebooks.items():
            (root / name).write_text(text)
        news = settings / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True)
        overrides = json.loads((REPO / "jupyter" / "overrides.json").read_text())
        news_settings = overrides["@jupyterlab/apputils-extension:notification"]
        (news / "notification.jupyterlab-settings").write_text(json.dumps(news_settings))
        port, token = _free_port(), secrets.token_hex(16)
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTER_DATA_DIR": str(data),
            "IPYTHONDIR": str(ipython),
            "JUPYTER_PLATFORM_DIRS": "1",
            **(env_extra or {}),
        }
        log = (base / "server.log").open("w")
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
                "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
                "--LabApp.news_url=", f"--ServerApp.root_dir={root}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"JupyterLab did not start: {(base / 'server.log').read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.5)
            yield lambda name: f"{url}/lab/tree/{name}?reset&token={token}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            log.close()


def time_to_first_widget(
    browser: Any, url: str, path: str, selector: str = FIRST_VIEW, timeout_s: float = 300
) -> dict[str, float]:
    """Open ``url`` in a fresh page; Run All once the kernel is idle; time the first drawn view.

    Returns seconds on the page's clock (from the page request): ``kernel_ready`` (when
    Run All was given) and ``first_widget``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function(KERNEL_READY, arg=path, timeout=timeout_s * 1000, polling=100)
        ready_ms = page.evaluate(WATCH, selector)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + timeout_s
        while (drawn_ms := page.evaluate("window.__firstWidgetMs")) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: no drawn {selector} after {timeout_s} s")
            time.sleep(0.25)
        page.evaluate("window.jupyterapp.commands.execute('kernelmenu:shutdown')")
        return {"kernel_ready": ready_ms / 1000, "first_widget": drawn_ms / 1000}
    finally:
        context.close()


def previous_way(notebook: Path = NOTEBOOK) -> str:
    """The quickstart as it ran before the light transformer: its first cell imports
    transformer-lens (what ``explorer.load`` of the shipped model did), everything else equal."""
    nb = json.loads(notebook.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    source = "".join(first["source"])
    first["source"] = "import transformer_lens  # the previous way: loading imported it\n" + source
    return json.dumps(nb)


def measure(
    runs: int = 3,
    burners: int = 2,
    notebook: Path = NOTEBOOK,
    browser: Any = None,
    ways: tuple[str, ...] = ("ours", "previous"),
) -> dict[str, object]:
    """``runs`` fresh kernels each of the quickstart (ours) and of the previous way, taken in
    turn in one Lab server and one browser, with ``burners`` cores kept busy throughout.
    ``browser``: a Chromium already launched by Playwright (a test suite's); else one is
    launched here (Playwright's sync API cannot start twice in one thread). ``ways``: which
    of the two to open (the test suite opens ours only)."""
    unknown = sorted(set(ways) - {"ours", "previous"})
    if unknown or not ways:
        raise ValueError(f"ways must name 'ours' and/or 'previous', got {ways!r}")
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: run `make browser-deps`")
    texts = {"ours": notebook.read_text, "previous": lambda: previous_way(notebook)}
    variants = {label: texts[label]() for label in ways}
    files = {label: f"{label}-{notebook.name}" for label in variants}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(lab_server({files[k]: text for k, text in variants.items()}))
        if browser is None:
            p = stack.enter_context(sync_playwright())
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            stack.callback(browser.close)
        with busy_cores(burners):
            for _ in range(runs):
                for label in variants:
                    load = os.getloadavg()[0]
                    timing = time_to_first_widget(browser, url(files[label]), files[label])
                    results[label].append({**timing, "load_average_1min": round(load, 1)})
                    time.sleep(3)  # the kernel shuts down
    summary: dict[str, object] = {"burners": burners, "cpus": os.cpu_count(), "runs": results}
    for label, rows in results.items():
        summary[f"{label}_median_first_widget_s"] = statistics.median(
            r["first_widget"] for r in rows
        )
        summary[f"{label}_median_kernel_ready_s"] = statistics.median(
            r["kernel_ready"] for r in rows
        )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lab_first_widget")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    text = json.dumps(measure(args.runs, args.burners, args.notebook), indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
