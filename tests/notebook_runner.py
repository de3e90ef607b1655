"""Execute a notebook the way the notebook tests do: a fresh python3 kernel, one thread,
the working folder given, environment variables given to the kernel only."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import nbformat
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from notebook_client import NotebookClient  # nbclient, robust to a missed wake-up


def execute(
    path: Path,
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    *,
    extra_cells: tuple[str, ...] = (),
    timeout: int = 900,
) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in ``cwd`` and return the executed notebook.

    ``env`` sets (or, with None, removes) variables in the kernel's environment; this
    process's environment is left alone. ``extra_cells`` are appended and run last.
    Raises nbclient's CellExecutionError, naming the cell, on the first error.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(code) for code in extra_cells)
    kernel_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key, value in (env or {}).items():
        if value is None:
            kernel_env.pop(key, None)
        else:
            kernel_env[key] = value
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=kernel_env)
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed, in order."""
    return "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )


PLOTLY = "application/vnd.plotly.v1+json"
MIN_ROW_PX = 40  # a facet row (or a whole plot) shorter than this draws as an empty strip
FACET_GAP = 0.12  # a subplot title sits at most this share of the figure above its subplot


def _layout_problems(fig: dict, where: str) -> list[str]:
    layout = fig.get("layout", {})
    height = layout.get("height") or 450  # plotly's defaults
    margin = {"t": 100, "b": 80, **(layout.get("margin") or {})}
    plot = height - margin["t"] - margin["b"]
    problems = []
    for name, axis in layout.items():
        if name.startswith("yaxis") and isinstance(axis, dict):
            low, high = axis.get("domain", [0, 1])
            if (high - low) * plot < MIN_ROW_PX:
                problems.append(
                    f"{where}: {name} is {(high - low) * plot:.0f} px tall (height {height}, "
                    f"margins {margin['t']}+{margin['b']}): it draws as an empty strip"
                )
    if plot < MIN_ROW_PX and not any(n.startswith("yaxis") for n in layout):
        problems.append(f"{where}: the plot area is {plot} px tall")
    return problems


def _array(value: object) -> np.ndarray:
    """A plotly data array: a (nested) list or plotly's typed array {dtype, bdata, shape}."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return data.astype(float)
    try:
        return np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        return np.asarray([v for v in np.asarray(value, dtype=object).ravel() if v is not None])


def _trace_problems(trace: dict, where: str) -> list[str]:
    kind = trace.get("type", "scatter")
    if kind == "image":
        return (
            [] if trace.get("source") or trace.get("z") else [f"{where}: an image with no pixels"]
        )
    if kind == "heatmap":
        z = _array(trace.get("z") or [])
        return [] if np.isfinite(z).any() else [f"{where}: a heatmap with no finite value"]
    values = trace.get("y") if trace.get("y") is not None else trace.get("x")
    if values is None or not _array(values).size:
        return [f"{where}: a {kind} trace with no data"]
    return []


def _domain(layout: dict, ref: str | None, letter: str) -> tuple[float, float]:
    axis = layout.get(letter + "axis" + (ref or letter)[1:]) or {}
    low, high = axis.get("domain", [0.0, 1.0])
    return float(low), float(high)


def facet_title_problems(fig: dict, where: str = "figure") -> list[str]:
    """Titles written over the wrong image of a grid of subplots (a figure as plotly JSON).

    Only images and heatmaps count as titled subplots. An annotation in paper coordinates
    labels the subplot it sits on: the one whose x
    domain holds the annotation's x and whose top edge is the nearest at or below its y
    (within ``FACET_GAP`` of the figure's height). Where the trace drawn in that subplot has
    a name (``explorer.views.image_grid`` names each image's trace with its title), the
    annotation must say that name; and each named trace must have its title over it.
    """
    layout = fig.get("layout", {})
    subplots = []
    for trace in fig.get("data", []):
        if trace.get("type") not in ("image", "heatmap"):
            continue  # a line's name is its legend entry, not a title
        xd = _domain(layout, trace.get("xaxis"), "x")
        yd = _domain(layout, trace.get("yaxis"), "y")
        subplots.append((xd, yd, trace.get("name")))
    problems = []
    titled = set()
    for ann in layout.get("annotations", []) or []:
        if ann.get("xref") != "paper" or ann.get("yref") != "paper" or ann.get("showarrow"):
            continue
        x, y, text = float(ann.get("x", 0.5)), float(ann.get("y", 0.5)), ann.get("text", "")
        below = [
            (y - yd[1], i)
            for i, (xd, yd, _) in enumerate(subplots)
            if xd[0] <= x <= xd[1] and -1e-6 <= y - yd[1] <= FACET_GAP
        ]
        if not below:
            continue
        _, i = min(below)
        name = subplots[i][2]
        if name is None:
            continue
        titled.add(i)
        if text != name:
            problems.append(f"{where}: the title {text!r} sits over the image of {name!r}")
    named = [i for i, (_, _, name) in enumerate(subplots) if name]
    if titled:
        problems += [
            f"{where}: no title over the image of {subplots[i][2]!r}"
            for i in named
            if i not in titled
        ]
    return problems


def figure_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Every plotly figure of an executed notebook that would draw nothing: no traces, a
    trace with no data, a heatmap of NaN only, or a plot (or facet row) squeezed flat by its
    height and margins; and every title written over the wrong image of a grid
    (``facet_title_problems``). Returns one sentence per problem, naming the cell."""
    problems: list[str] = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            fig = out.get("data", {}).get(PLOTLY)
            if fig is None:
                continue
            title = (fig.get("layout", {}).get("title") or {}).get("text", "")
            where = f"cell {index} ({title[:50]!r})"
            if not fig.get("data"):
                problems.append(f"{where}: no traces")
            for trace in fig.get("data", []):
                problems += _trace_problems(trace, where)
            problems += _layout_problems(fig, where)
            problems += facet_title_problems(fig, where)
    return list(dict.fromkeys(problems))
