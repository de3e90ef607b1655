"""``image_grid``: many small images in one plotly figure, each titled over its own image.

Tutorials show digits, weight images and attribution maps in grids. plotly's
``facet_col_wrap`` numbers its facet-title annotations from the bottom row up, so setting
titles by annotation order puts "label 5" over a 7. Here each title is written from the
facet's own trace: the trace that draws image ``i`` gets ``name=titles[i]`` (its hover
text) and an annotation centred over that trace's own axes. ``tests/notebook_runner.py``
checks every executed tutorial figure against this (the title over a subplot is the name
of the image drawn in it).

>>> import torch
>>> fig = image_grid(torch.rand(3, 28, 28), ["a", "b", "c"], cols=2)
>>> [a.text for a in fig.layout.annotations], [t.name for t in fig.data]
(['a', 'b', 'c'], ['a', 'b', 'c'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _axis_key(ref: str | None, letter: str) -> str:
    """``"x3"`` -> ``"xaxis3"`` (the layout key of a trace's axis)."""
    return letter + "axis" + (ref or letter)[1:]


def image_grid(
    images: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    cols: int = 8,
    title: str = "",
    row_height: int = 120,
    scale: str = "gray",
    zmax: float | None = None,
    colorbar_title: str | None = None,
) -> Any:
    """A plotly figure of ``images`` ``[n, height, width]``, ``cols`` per row, row-major.

    Args:
        images: ``[n, height, width]`` pixel values.
        titles: one title per image (``titles[i]`` is written over ``images[i]``), or None.
        cols: images per row.
        title: the figure's title.
        row_height: pixels per row of images.
        scale: ``"gray"`` (pixels), ``"diverging"`` (red-white-blue centred at 0: weights,
            attribution maps) or a plotly sequential scale name (``"Blues"``).
        zmax: the top of the colour scale (``"diverging"``: from ``-zmax`` to ``zmax``);
            default: the data's range.
        colorbar_title: the colour bar's title (not for ``"gray"``).

    Returns:
        a ``plotly.graph_objects.Figure``; trace ``i`` draws ``images[i]`` and is named
        ``titles[i]``.

    >>> image_grid(torch.zeros(2, 4, 4), ["one"])
    Traceback (most recent call last):
    ...
    ValueError: image_grid got 1 titles for 2 images: give one title per image (or None)
    """
    import plotly.express as px  # lazy: plotly express loads pandas (about a second)

    array = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else images
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(
            f"image_grid takes images [n, height, width] with n >= 1, got shape {array.shape}"
        )
    n = array.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(
            f"image_grid got {len(titles)} titles for {n} images: give one title per image "
            "(or None)"
        )
    if cols < 1:
        raise ValueError(f"cols must be at least 1, got {cols}")
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    spacing = min(0.3 / rows, 0.08)
    colors: dict[str, Any]
    if scale == "gray":
        colors = {"binary_string": True}
    elif scale == "diverging":
        colors = {"color_continuous_scale": "RdBu"}
        if zmax is None:
            colors["color_continuous_midpoint"] = 0.0
        else:
            colors.update(zmin=-zmax, zmax=zmax)
    elif scale.lower() in px.colors.named_colorscales():
        colors = {"color_continuous_scale": scale}
        if zmax is not None:
            colors["zmax"] = zmax
    else:
        raise ValueError(
            f"scale must be 'gray', 'diverging' or a plotly colour scale name, got {scale!r}"
        )
    fig = px.imshow(
        array,
        facet_col=0,
        facet_col_wrap=cols,
        facet_row_spacing=spacing if rows > 1 else None,
        title=title,
        **colors,
    )
    fig.layout.annotations = ()  # px's "facet_col=i" titles, numbered bottom row first
    for i, trace in enumerate(fig.data):
        text = "" if titles is None else str(titles[i])
        trace.name = text
        x_domain = fig.layout[_axis_key(trace.xaxis, "x")].domain
        y_domain = fig.layout[_axis_key(trace.yaxis, "y")].domain
        fig.add_annotation(
            text=text,
            x=(x_domain[0] + x_domain[1]) / 2,
            y=y_domain[1],
            xref="paper",
            yref="paper",
            xanchor="center",
            yanchor="bottom",
            showarrow=False,
        )
    fig.update_layout(height=row_height * rows + 70, margin=dict(l=10, r=10, t=60, b=10))
    if scale != "gray" and colorbar_title:
        fig.update_layout(coloraxis_colorbar_title=colorbar_title)
    return fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
