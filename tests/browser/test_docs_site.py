"""`make docs` builds the documentation site offline, its links resolve, and it shows content.

The build runs the cheap path: only the quickstart is executed (in a temporary build folder,
about 40 s on one core); the other tutorials are listed and rendered from the notebooks. The
full `make docs` executes every tutorial the same way (scripts/build_docs.py). A browser then
looks at the home page and the quickstart page: text, and the widgets drawn as static
snapshots with content. Screenshots go to test-artifacts/browser/docs/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from figure_checks import CANVAS_INK

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("docs")
    out = work / "site"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_docs.py"),
            "--only",
            "quickstart",
            "--fast",
            "--build",
            str(work / "build"),
            "--site",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, (
        done.stdout[-3000:] + done.stderr[-3000:]
    )  # --strict: links resolve
    return out


def test_the_site_has_every_section(site):
    for page in (
        "index.html",
        "getting-started.html",
        "troubleshooting.html",
        "visual-language.html",
        "api/explorer.analysis.html",
        "tutorials/quickstart.html",
        "tutorials/induction_heads.html",
        "tutorials/mnist_kitchen_sink.html",
        "tutorials/grokking.html",
        "mnist.html",
        "training.html",
    ):
        assert (site / page).is_file(), page
    api = (site / "api" / "explorer.analysis.html").read_text()
    assert "ablation_sweep" in api and "head_scores" in api  # generated from docstrings
    trouble = (site / "troubleshooting.html").read_text()
    for topic in ("Offline", "Hugging Face cache", "VS Code", "Colab", "Slow machines"):
        assert topic in trouble, topic


def test_the_home_page_and_the_quickstart_show_content(site, browser, artifacts):
    folder = artifacts / "docs"
    folder.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((site / "index.html").as_uri())
    assert "Getting started" in page.locator("article").inner_text()
    page.screenshot(path=str(folder / "home.png"))

    page.goto((site / "tutorials" / "quickstart.html").as_uri())
    snapshots = page.locator(".explorer-snapshot")
    page.wait_for_function(
        "[...document.querySelectorAll('.explorer-snapshot')].every((e) => e.dataset.rendered)",
        timeout=60_000,
    )
    assert snapshots.count() >= 8  # attention, panel, hypothesis, board, patching, neurons, ...
    text = page.locator("article").inner_text()
    assert "What the sweep shows, and why" in text
    assert "supported: change in repeated_half_loss" in text  # an executed output
    for i in range(snapshots.count()):
        assert snapshots.nth(i).evaluate(CANVAS_INK) == [], f"snapshot {i} has a blank canvas"
    assert page.locator(".explorer-snapshot [data-testid='attention-view'] canvas").count() > 0
    page.screenshot(path=str(folder / "quickstart.png"), full_page=True)
    assert errors == []
    page.close()


def test_equations_are_drawn_as_mathml_not_raw_latex(site, browser, artifacts):
    # The tutorials' $$...$$ and $...$ become MathML at build time (scripts/docs_math.py):
    # drawn by the browser itself, no MathJax from a CDN.
    for name, equations in (("induction_heads", 1), ("grokking", 10)):
        html = (site / "tutorials" / f"{name}.html").read_text()
        article = html.split("<article", 1)[1].split("</article>", 1)[0]
        assert article.count('<math xmlns="http://www.w3.org/1998/Math/MathML"') >= equations, name
        prose = re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", article, flags=re.DOTALL)
        assert "$$" not in prose and r"$\cos" not in prose, name
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((site / "tutorials" / "induction_heads.html").as_uri())
    block = page.locator("article math[display='block']").first
    box = block.bounding_box()
    assert box is not None and box["height"] > 30  # a fraction, stacked: drawn, not one line
    assert "\\frac" not in page.locator("article").inner_text()
    block.scroll_into_view_if_needed()
    (artifacts / "docs").mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "docs" / "equation.png"))
    page.close()
