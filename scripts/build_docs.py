"""Build the documentation site offline: ``python scripts/build_docs.py`` (``make docs``).

1. Stages the Markdown pages of ``docs/`` and one API page per package (mkdocstrings reads
   the docstrings; ``docs_api`` decides what each page documents, each object once, and
   renders docstring examples as code) into ``build/docs-src``.
2. Executes each notebook (``notebooks/quickstart.ipynb`` and ``tutorials/*.ipynb``) in a
   fresh kernel, in the folder ``build/docs-run/<name>``, and keeps the executed copy in
   ``build/docs-executed/`` keyed by the notebook's content and explorer's source, so an
   unchanged notebook is not run again. Each widget output is replaced by its static HTML
   snapshot (``explorer.views.snapshot``): the page draws the view as it was, offline.
3. Runs ``mkdocs build --strict`` (mkdocs-material, mkdocstrings, mkdocs-jupyter) into
   ``site/`` (or ``--site``): every link must resolve. The hook ``scripts/docs_math.py`` turns
   ``$$...$$`` and ``$...$`` equations into MathML, which the browser draws (no MathJax CDN).

``--fast`` runs the tutorials in their small CI setting (``EXPLORER_CI=1``); the induction
and grokking tutorials start from their shipped runs (``explorer/studies/trained``) either way,
so the build trains neither;
``--only quickstart`` executes only the named notebooks (the others are listed but shown
from their last executed copy, or without outputs if there is none).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # notebook_client, also when imported by the tests
NOTEBOOKS = {"quickstart": REPO / "notebooks" / "quickstart.ipynb"} | {
    p.stem: p for p in sorted((REPO / "tutorials").glob("*.ipynb"))
}
WIDGET = "application/vnd.jupyter.widget-view+json"
PLOTLY = "application/vnd.plotly.v1+json"
PLOTLY_JS = "../assets/plotly.min.js"  # relative to a tutorial page
API = {
    "explorer": "The facade: `load`, `show`, `Hypothesis`, `Run` and the zoo.",
    "explorer.models": "Models: the `ModelHandle` adapter, loading, checkpoints, shipped models.",
    "explorer.data": "Datasets: modular arithmetic, repeated tokens, MNIST offline.",
    "explorer.features": "Features: SAELens SAEs and transcoders loaded, spliced, edited, measured.",
    "explorer.analysis": "Analysis primitives: head scores, neurons, ablation, patching, attribution.",
    "explorer.hypotheses": "Hypotheses, verdicts, the store, labels and agreement.",
    "explorer.training": "Training runs: checkpoints, metrics, progress measures.",
    "explorer.studies": "Recipes of the tutorials and of the shipped checkpoints.",
    "explorer.sweep": "Sweeps: a study at every point of a grid of settings and seeds, on Ray.",
    "explorer.views": "The widgets.",
}
# The order pages claim the names they export: an object is documented at its home layer,
# and a package that re-exports it from below links there.
API_ORDER = [
    "explorer.data",
    "explorer.models",
    "explorer.features",
    "explorer.analysis",
    "explorer.hypotheses",
    "explorer.training",
    "explorer.studies",
    "explorer.sweep",
    "explorer.views",
    "explorer",
]
# The theme's default column (about 600 px beside both sidebars) clips the tutorials' wide
# figures' titles and squeezes the widget snapshots: give the pages most of the screen.
WIDE_CSS = ".md-grid { max-width: 100rem; }\n"
OWN_PAGES = {"index.md", "getting-started.md", "troubleshooting.md", "visual-language.md"}

# Run last in each notebook's kernel: every live widget as its static snapshot, by model id.
SNAPSHOTS = r"""
import json as _json
import ipywidgets as _w
from explorer.views._base import ExplorerWidget as _EW
from explorer.views.snapshot import snapshot_html as _snap

def _explorer_snapshot(widget, depth=0):
    if isinstance(widget, _EW):
        return _snap(widget)
    children = getattr(widget, "children", None)
    if children is None or depth > 4:
        return ""
    titles = [widget.get_title(i) if hasattr(widget, "get_title") else "" for i in range(len(children))]
    parts = []
    for title, child in zip(titles, children):
        inner = _explorer_snapshot(child, depth + 1)
        if inner:
            parts.append((f"<div class='explorer-snapshot-title'>{title}</div>" if title else "") + inner)
    return "".join(parts)

print("EXPLORER-SNAPSHOTS " + _json.dumps({mid: _explorer_snapshot(w) for mid, w in list(_w.Widget.widgets.items())}))
"""


def _source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted((REPO / "explorer").rglob("*")):
        if path.suffix in {".py", ".js", ".css"}:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def execute(name: str, path: Path, *, fast: bool, cache: Path, run_root: Path) -> Path:
    """The executed copy of notebook ``path`` with widgets as static snapshots (cached)."""
    import nbformat
    from notebook_client import NotebookClient  # nbclient, robust to a missed wake-up

    key = hashlib.sha256(path.read_bytes() + _source_digest().encode() + bytes(fast)).hexdigest()
    out = cache / f"{name}-{key[:16]}.ipynb"
    if out.is_file():
        return out
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(SNAPSHOTS))
    folder = run_root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EXPLORER_QUICKSTART_THREADS": "1"}
    if fast:
        env["EXPLORER_CI"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)
    print(f"executed {name} in {time.perf_counter() - start:.0f} s", flush=True)
    last = nb.cells.pop()
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    snapshots, _ = json.JSONDecoder().raw_decode(text.split("EXPLORER-SNAPSHOTS ", 1)[1])
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET in data:
                html = snapshots.get(data[WIDGET]["model_id"], "")
                output["data"] = {
                    "text/html": html
                    or "<p><em>(an interactive widget: run the notebook)</em></p>",
                    "text/plain": "widget",
                }
    nb.metadata.pop("widgets", None)
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{name}-*.ipynb"):
        old.unlink()
    nbformat.write(nb, out)
    return out


def plotly_to_html(nb) -> int:
    """Each plotly figure output becomes HTML that draws it with the site's own copy of
    plotly.js (``assets/plotly.min.js``, loaded once per page): offline, no CDN."""
    import plotly.io as pio

    first = True
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY not in data:
                continue
            figure = pio.from_json(json.dumps(data[PLOTLY]), skip_invalid=True)
            html = pio.to_html(
                figure,
                include_plotlyjs=PLOTLY_JS if first else False,
                full_html=False,
                config={"responsive": True},
            )
            output["data"] = {"text/html": html, "text/plain": "a plotly figure"}
            first = False
            count += 1
    return count


def stage(src: Path, executed: dict[str, Path]) -> None:
    """Write the pages mkdocs reads into ``src``."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "api").mkdir(parents=True)
    (src / "tutorials").mkdir()
    for page in sorted((REPO / "docs").glob("*.md")):
        shutil.copy(page, src / page.name)
    stage_api(src, list(API))
    import nbformat

    for name, path in NOTEBOOKS.items():
        nb = nbformat.read(executed.get(name, path), as_version=4)
        plotly_to_html(nb)
        nbformat.write(nb, src / "tutorials" / f"{name}.ipynb")
    (src / "assets").mkdir()
    shutil.copy(_plotly_js(), src / "assets" / "plotly.min.js")
    (src / "assets" / "explorer.css").write_text(WIDE_CSS)


def stage_api(src: Path, packages: list[str]) -> None:
    """Write the API page of each of ``packages`` into ``src/api``."""
    from docs_api import api_page, page_blocks

    (src / "api").mkdir(parents=True, exist_ok=True)
    for package, (blocks, elsewhere) in page_blocks(packages, API_ORDER).items():
        page = api_page(package, API[package], blocks, elsewhere)
        (src / "api" / f"{package}.md").write_text(page)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def mkdocs_config(src: Path, site: Path) -> dict:
    own = [p for p in sorted((REPO / "docs").glob("*.md")) if p.name not in OWN_PAGES]
    titles = {p.name: p.read_text().splitlines()[0].lstrip("# ").strip() for p in own}
    return {
        "site_name": "explorer",
        "site_description": "Jupyter widgets and analysis for the science of deep learning",
        "docs_dir": str(src),
        "site_dir": str(site),
        "use_directory_urls": False,
        # font: false keeps the site offline (no Google Fonts)
        "theme": {"name": "material", "features": ["navigation.sections"], "font": False},
        "plugins": [
            "search",
            {
                "mkdocstrings": {
                    "handlers": {
                        "python": {
                            "paths": [str(REPO)],
                            "options": {
                                "docstring_style": "google",
                                "show_source": False,
                                "members_order": "source",
                                "show_root_heading": False,
                                "filters": ["!^_"],
                                "show_submodules": False,
                                # the theme puts bases above the summary: docs_api writes
                                # the public ones under it instead
                                "show_bases": False,
                                "extensions": [f"{REPO / 'scripts' / 'docs_api.py'}:ApiDocstrings"],
                            },
                        }
                    }
                }
            },
            {
                "mkdocs-jupyter": {
                    "include": ["tutorials/*.ipynb"],
                    "execute": False,
                    "include_source": True,
                    "ignore_h1_titles": False,
                }
            },
        ],
        # $$...$$ and $...$ become MathML at build time (scripts/docs_math.py): no MathJax CDN
        "hooks": [str(REPO / "scripts" / "docs_math.py")],
        "extra_css": ["assets/explorer.css"],
        "markdown_extensions": ["admonition", "tables", "toc", "pymdownx.superfences"],
        "validation": {"links": {"not_found": "warn", "anchors": "warn"}},
        "nav": [
            {"Home": "index.md"},
            {"Getting started": "getting-started.md"},
            {"Tutorials": [{n: f"tutorials/{n}.ipynb"} for n in NOTEBOOKS]},
            {"Guides": ["visual-language.md"] + [{titles[p.name]: p.name} for p in own]},
            {"API reference": [{m: f"api/{m}.md"} for m in API]},
            {"Troubleshooting": "troubleshooting.md"},
        ],
    }


def build_api(packages: list[str], folder: Path) -> Path:
    """Only the API pages of ``packages`` (no notebooks), built strict into
    ``folder/site``: what the tests read. Returns the site folder."""
    src, site = folder / "src", folder / "site"
    shutil.rmtree(src, ignore_errors=True)
    (src / "api").mkdir(parents=True)
    (src / "index.md").write_text("# API\n")
    stage_api(src, packages)
    config = mkdocs_config(src, site)
    config["plugins"] = [p for p in config["plugins"] if "mkdocs-jupyter" not in p]
    config["nav"] = [
        {"Home": "index.md"},
        {"API reference": [{m: f"api/{m}.md"} for m in packages]},
    ]
    (folder / "mkdocs.yml").write_text(json.dumps(config))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(folder / "mkdocs.yml"),
        ],
        cwd=folder,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=str(REPO / "site"), help="output folder")
    parser.add_argument("--build", default=str(REPO / "build"), help="working folder")
    parser.add_argument("--fast", action="store_true", help="tutorials in their CI setting")
    parser.add_argument("--only", nargs="*", help=f"notebooks to execute: {', '.join(NOTEBOOKS)}")
    args = parser.parse_args(argv)
    build = Path(args.build)
    unknown = set(args.only or ()) - set(NOTEBOOKS)
    if unknown:
        parser.error(f"unknown notebooks {sorted(unknown)}: choose from {', '.join(NOTEBOOKS)}")
    cache = build / "docs-executed"
    executed = {}
    for name, path in NOTEBOOKS.items():
        if args.only is None or name in args.only:
            executed[name] = execute(
                name, path, fast=args.fast, cache=cache, run_root=build / "docs-run"
            )
        else:
            previous = sorted(cache.glob(f"{name}-*.ipynb"))
            if previous:
                executed[name] = previous[-1]
    src = build / "docs-src"
    stage(src, executed)
    config = build / "mkdocs.yml"
    config.write_text(json.dumps(mkdocs_config(src, Path(args.site)), indent=1))
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-q", "-f", str(config)],
        cwd=build,  # mkdocs-jupyter caches in .cache/ under the working folder
        check=False,
    )
    if done.returncode == 0:
        print(f"site: {Path(args.site) / 'index.html'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
