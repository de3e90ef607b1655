"""The docs build turns notebook outputs into pages that draw offline (no kernel, no CDN)."""

from __future__ import annotations

import importlib
from pathlib import Path

import nbformat
import plotly.express as px
import pytest
from scripts_loader import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_docs.py"


def _build_docs():
    return load_script("build_docs")


def test_plotly_figures_become_html_that_loads_the_sites_own_plotly_once():
    build = _build_docs()
    figure = px.bar(x=[1, 2], y=[3, 4]).to_plotly_json()
    nb = nbformat.v4.new_notebook()
    for _ in range(2):
        cell = nbformat.v4.new_code_cell("fig")
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={build.PLOTLY: figure, "text/plain": "x"})
        ]
        nb.cells.append(cell)
    assert build.plotly_to_html(nb) == 2
    first, second = (c.outputs[0]["data"]["text/html"] for c in nb.cells)
    assert 'src="../assets/plotly.min.js"' in first and "plotly.min.js" not in second
    assert "Plotly.newPlot" in second and "cdn" not in (first + second).lower()
    assert build._plotly_js().is_file()


def test_the_site_config_is_strict_offline_and_lists_every_notebook(tmp_path):
    build = _build_docs()
    config = build.mkdocs_config(tmp_path / "src", tmp_path / "site")
    assert config["theme"]["font"] is False  # no Google Fonts
    tutorials = next(item["Tutorials"] for item in config["nav"] if "Tutorials" in item)
    listed = {next(iter(t.values())) for t in tutorials}
    assert {f"tutorials/{n}.ipynb" for n in build.NOTEBOOKS} == listed
    assert "quickstart" in build.NOTEBOOKS and "mnist_kitchen_sink" in build.NOTEBOOKS


def _docs_math():
    return load_script("docs_math")


def test_equations_become_mathml_and_code_keeps_its_dollars():
    math = _docs_math()
    page = (
        r"<p>$$\frac{\lVert W \rVert_F}{a &lt; b}$$</p>"
        r"<p>waves $\cos(2\pi k a/p)$ at frequency $k$; costs $5 and $10</p>"
        r"<pre><code>echo $HOME $$</code></pre><p><code>$HF_HOME/hub</code></p>"
        r"<script>inlineMath: [['$','$']]</script>"
    )
    out = math.render_math(page)
    assert out.count("<math") == 3
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in out
    assert "<mfrac>" in out and "<mo>&#x0003C;</mo>" in out  # &lt; read as "<"
    assert "<mi>&#x003C0;</mi>" in out and "<mi>k</mi>" in out  # pi and the inline k
    assert "costs $5 and $10" in out  # prose dollars stay
    assert "<pre><code>echo $HOME $$</code></pre>" in out and "<code>$HF_HOME/hub</code>" in out
    assert "[['$','$']]" in out
    before_code = out.split("<pre>")[0]
    assert "$" not in before_code.replace("costs $5 and $10", "")


def test_an_unreadable_equation_names_the_page_and_the_equation():
    math = _docs_math()
    with pytest.raises(math.MathError, match=r"tutorials/x\.ipynb: .*frac\{1\}\{"):
        math.render_math(r"<p>$$\frac{1}{$$</p>", where="tutorials/x.ipynb")


def test_the_site_config_runs_the_math_hook(tmp_path):
    build = _build_docs()
    config = build.mkdocs_config(tmp_path / "src", tmp_path / "site")
    assert config["hooks"] == [str(SCRIPT.parent / "docs_math.py")]


def _docs_api():
    _build_docs()  # puts scripts/ on sys.path
    import docs_api

    return docs_api


def test_api_pages_document_each_object_once():
    """A class a package re-exports (``Verdict`` from ``hypotheses.verdict``, ``Run`` on the
    facade) has one entry, at its home; the page that re-exports it links there."""
    build, api = _build_docs(), _docs_api()
    pages = api.page_blocks(list(build.API), build.API_ORDER)
    documented = [
        f"{module}.{name}"
        for blocks, _ in pages.values()
        for module, names in blocks
        for name in names
    ]
    objects = {}
    for path in documented:
        module, _, name = path.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
        key = api._key(obj, module, name)
        assert key not in objects, f"{path} and {objects[key]} are the same object"
        objects[key] = path
    assert "explorer.hypotheses.Verdict" in documented
    assert "explorer.hypotheses.verdict.Verdict" not in documented
    blocks, elsewhere = pages["explorer"]
    assert elsewhere["Run"] == "explorer.training.Run" and blocks == [("explorer", ["load"])]
    page = api.api_page("explorer", "The facade.", blocks, elsewhere)
    assert "[`Run`][explorer.training.Run]" in page and "members: [load]" in page


def test_docstring_examples_become_code_and_the_summary_comes_first():
    api = _docs_api()
    text = "Summary.\n\n>>> 1 + 1\n2\n\nSize: 450 lines, because.\n\nArgs:\n    x: see\n        >>> f(x)"
    fenced = api.doctest_fences(text)
    assert "```pycon\n>>> 1 + 1\n2\n```" in fenced
    assert fenced.count("```") == 2  # the indented example (an argument's) is left alone
    assert api.doctest_fences(fenced) == fenced  # a fenced example is not fenced again
    ordered = api.summary_first(fenced, ["Measure"])
    assert ordered.startswith("Summary.\n\nBases: `Measure`\n\n```pycon")
    assert ordered.endswith("Size: 450 lines, because.")


def _articles(site: Path) -> dict[str, str]:
    out = {}
    for page in sorted((site / "api").glob("*.html")):
        text = page.read_text()
        out[page.stem] = text[text.index("<article") : text.index("</article>")]
    return out


def test_built_api_pages_have_one_entry_per_class_code_examples_and_summaries_first(tmp_path):
    """Two pages built with mkdocs (strict): no heading twice, no example read as a quote,
    and a result's summary is the first thing under its heading (no private base above)."""
    import html
    import re

    from explorer.analysis import AblationResult

    build = _build_docs()
    site = build.build_api(["explorer.data", "explorer.analysis"], tmp_path)
    pages = _articles(site)
    ids = [i for page in pages.values() for i in re.findall(r'<h\d id="([^"]+)"', page)]
    names = [i.rsplit(".", 1)[-1] for i in ids]
    classes = [n for n in names if n[0].isupper() and not n.isupper()]  # CamelCase
    assert len(classes) == len(set(classes)) and "AblationResult" in classes  # each once
    for page in pages.values():
        assert "<blockquote>" not in page  # `>>>` read as nested quotes
    assert pages["explorer.data"].count('<span class="gp">&gt;&gt;&gt; </span>') >= 2
    analysis = pages["explorer.analysis"]
    after = analysis[analysis.index('id="explorer.analysis.AblationResult"') :]
    first = re.search(r"<p>(.*?)</p>", after, re.S).group(1)
    summary = AblationResult.__doc__.strip().splitlines()[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", first)) == summary.replace("``", "")
    assert "Bases:" not in after[: after.index(first)]
