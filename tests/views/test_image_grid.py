"""``image_grid`` writes each title over its own image, and the figure check proves it.

plotly's ``facet_col_wrap`` numbers facet annotations from the bottom row up: titles set by
annotation index landed on the wrong row ("label 5" over a 7). Every title here is checked
against the subplot domain of the image it labels (``notebook_runner.facet_title_problems``,
the check every executed tutorial's figures go through).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from notebook_runner import facet_title_problems

from explorer.views import image_grid

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"


def _domain(fig, ref, letter):
    return fig.layout[letter + "axis" + ref[1:]].domain


def _over(fig, annotation):
    """The index of the trace whose subplot the annotation sits on (nearest top below it)."""
    below = [
        (annotation.y - _domain(fig, t.yaxis, "y")[1], i)
        for i, t in enumerate(fig.data)
        if _domain(fig, t.xaxis, "x")[0] <= annotation.x <= _domain(fig, t.xaxis, "x")[1]
        and annotation.y >= _domain(fig, t.yaxis, "y")[1] - 1e-9
    ]
    return min(below)[1]


@pytest.mark.parametrize(("n", "cols"), [(16, 8), (13, 6), (3, 7), (12, 4)])
@pytest.mark.parametrize("scale", ["gray", "diverging", "Blues"])
def test_each_title_sits_over_the_image_it_names(n, cols, scale):
    # image i is constant i, so the pixels say which image a subplot draws
    images = torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, 5, 5).clone()
    titles = [f"label {i}" for i in range(n)]
    fig = image_grid(images, titles, cols=cols, scale=scale)
    assert len(fig.layout.annotations) == n
    for annotation in fig.layout.annotations:
        i = _over(fig, annotation)
        # heatmap traces keep their values: the image under the title is image i
        if scale != "gray":
            assert float(np.asarray(fig.data[i].z)[0, 0]) == int(annotation.text.split()[1])
        assert annotation.text == titles[i] == fig.data[i].name
    # the rows read top to bottom: the first title is on the top row
    first, last = fig.layout.annotations[0], fig.layout.annotations[-1]
    assert first.y > last.y or n <= min(cols, n)
    assert facet_title_problems(fig.to_plotly_json()) == []


def test_the_check_reports_titles_set_by_annotation_order():
    """The tutorial's old way (px facets, titles by annotation index) is caught."""
    import plotly.express as px

    images = np.arange(16, dtype=float)[:, None, None] * np.ones((16, 5, 5))
    fig = px.imshow(images, facet_col=0, facet_col_wrap=8)
    for i, annotation in enumerate(fig.layout.annotations):
        annotation.text = f"label {i}"
    for i, trace in enumerate(fig.data):
        trace.name = f"label {i}"  # what image i really is
    problems = facet_title_problems(fig.to_plotly_json(), "old")
    assert "old: the title 'label 0' sits over the image of 'label 8'" in problems
    assert len(problems) == 16


def test_bad_input_is_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match="got 2 titles for 3 images"):
        image_grid(torch.zeros(3, 4, 4), ["a", "b"])
    with pytest.raises(ValueError, match=r"images \[n, height, width\]"):
        image_grid(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="cols must be at least 1"):
        image_grid(torch.zeros(2, 4, 4), cols=0)
    with pytest.raises(ValueError, match="scale must be 'gray', 'diverging' or a plotly"):
        image_grid(torch.zeros(2, 4, 4), scale="rainbowz")


def test_tutorials_draw_every_facet_grid_through_image_grid():
    """A faceted figure titled by hand is where the wrong labels came from."""
    offenders = []
    for path in sorted(TUTORIALS.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.search(r"facet_col|def image_grid", source):
                offenders.append(f"{path.name} cell {i}")
    assert offenders == [], "draw image grids with explorer.views.image_grid: " + str(offenders)
