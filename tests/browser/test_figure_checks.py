"""The figure checks catch what a reader would call an empty figure (no JupyterLab needed)."""

from __future__ import annotations

import pytest
from figure_checks import figure_problems

pytestmark = pytest.mark.browser


def _page_with(figures, tmp_path, browser):
    import plotly.io as pio

    parts = [
        pio.to_html(f, include_plotlyjs=(i == 0), full_html=False) for i, f in enumerate(figures)
    ]
    html = tmp_path / "figures.html"
    html.write_text("<html><body>" + "".join(parts) + "</body></html>")
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(html.as_uri())
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(figures)}"
    )
    return page


def test_squeezed_blank_and_nan_figures_are_reported_and_good_ones_pass(tmp_path, browser):
    import numpy as np
    import plotly.express as px
    import plotly.graph_objects as go

    digits = np.random.default_rng(0).random((16, 28, 28))
    squeezed = px.imshow(digits, facet_col=0, facet_col_wrap=16, height=160, title="squeezed")
    good = px.imshow(digits[:4], facet_col=0, facet_col_wrap=4, title="good")
    good.update_layout(height=260, margin=dict(t=60, b=10))
    nan = go.Figure(go.Heatmap(z=[[float("nan")] * 3] * 3))
    blank = go.Figure(go.Scatter(x=[], y=[]))
    page = _page_with([squeezed, good, nan, blank], tmp_path, browser)
    problems = figure_problems(page, "test")
    page.close()
    by_figure = {i: [p for p in problems if f"figure {i} " in p] for i in range(4)}
    assert by_figure[0] and "px" in by_figure[0][0]  # every facet squeezed to a strip
    assert by_figure[1] == []
    assert any("NaN only" in p for p in by_figure[2])
    assert any("no data" in p for p in by_figure[3])


def _composition_grids(y_title_on_every_plot: bool):
    """Three heatmaps side by side, as the induction tutorial's composition scores."""
    import numpy as np
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("Q", "K", "V"))
    for i, grid in enumerate(np.random.default_rng(0).random((3, 4, 4))):
        fig.add_heatmap(z=grid, coloraxis="coloraxis", row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed", dtick=1)
    if y_title_on_every_plot:
        fig.update_yaxes(title_text="layer-0 head (writes)")
    else:
        fig.update_yaxes(title_text="layer-0 head (writes)", col=1)
    fig.update_layout(height=320)
    return fig


def test_a_y_title_running_into_the_neighbouring_subplot_is_reported(tmp_path, browser):
    page = _page_with([_composition_grids(True), _composition_grids(False)], tmp_path, browser)
    page.set_viewport_size({"width": 700, "height": 800})
    page.wait_for_timeout(300)  # plotly redraws on resize
    problems = figure_problems(page, "test")
    page.close()
    assert any('the y2 title "layer-0 head (writes)" overlaps subplot xy' in p for p in problems)
    assert any('the y3 title "layer-0 head (writes)" overlaps subplot x2y2' in p for p in problems)
    assert [p for p in problems if "figure 1 " in p] == []  # one title, on the left: clear


class _CountingPage:
    """A page whose screenshots are counted (figure_problems' captures)."""

    def __init__(self, page):
        self._page, self.screenshots = page, 0

    def screenshot(self, **kwargs):
        self.screenshots += 1
        return self._page.screenshot(**kwargs)

    def __getattr__(self, name):
        return getattr(self._page, name)


def _facets(blank: int | None = None):
    """Four heatmaps side by side, no grid: the one at ``blank`` (if any) draws nothing."""
    import numpy as np
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=4)
    for i, grid in enumerate(np.random.default_rng(0).random((4, 6, 6))):
        z = np.full((6, 6), np.nan) if i == blank else grid
        fig.add_heatmap(z=z, coloraxis="coloraxis", row=1, col=i + 1)
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_layout(height=300, template="none")
    return fig


def test_each_figure_is_captured_once_and_a_blank_facet_is_named(tmp_path, browser):
    page = _CountingPage(_page_with([_facets(), _facets(blank=2)], tmp_path, browser))
    problems = figure_problems(page, "test")
    page.close()
    # one capture per figure, each facet read from it (it was one per facet: 8 here)
    assert page.screenshots == 2
    assert [p for p in problems if "figure 0 " in p] == []
    blank = [p for p in problems if "figure 1 " in p and "blank" in p]
    assert len(blank) == 1 and "subplot x3y3 is blank" in blank[0], problems
