"""What a reader sees in each figure of a notebook open in JupyterLab: never an empty plot.

``figure_problems(page, name)`` looks at every plotly figure on the page as drawn: it has
traces, no trace is empty, no heatmap is NaN only, no y-axis title runs into another
subplot's plot area, and each subplot's plot area is tall enough and holds drawn content (pixels other than its background, read from a screenshot of
that area). ``canvas_problems(page, selector)`` checks that every canvas drawn by a widget
has content. Both return one sentence per problem.
"""

from __future__ import annotations

import io
import math

import numpy as np

MIN_PX = 20  # a plot area (or facet) shorter than this draws as a strip
MIN_INK = 0.003  # share of the plot area's pixels that differ from its background

FIGURE_INFO = """(gd) => {
  const out = { title: '', traces: (gd.data || []).length, problems: [], areas: [] };
  const layout = gd._fullLayout || {};
  out.title = (layout.title && layout.title.text) || '';
  const TYPED = { f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                  u2: Uint16Array, i1: Int8Array, u1: Uint8Array, u1c: Uint8ClampedArray };
  const finite = (a) => {
    if (a === undefined || a === null) return false;
    if (typeof a === 'number') return Number.isFinite(a);
    if (typeof a.bdata === 'string') {  // plotly's base64 typed array, not yet decoded
      const bin = atob(a.bdata), bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return finite(new (TYPED[a.dtype] || Float64Array)(bytes.buffer));
    }
    if (a.length === undefined) return false;
    for (const v of a) if (finite(v)) return true;
    return false;
  };
  // _fullData: the traces as plotly drew them (typed arrays decoded from their base64 form)
  (gd._fullData || gd.data || []).forEach((t, i) => {
    const type = t.type || 'scatter';
    if (type === 'image') { if (!t.source && !finite(t.z)) out.problems.push('image trace ' + i + ' has no pixels'); }
    else if (type === 'heatmap') { if (!finite(t.z)) out.problems.push('heatmap trace ' + i + ' is NaN only'); }
    else if (['scatter', 'bar', 'histogram', 'scattergl', 'box', 'violin'].includes(type)) {
      const v = t.y !== undefined ? t.y : t.x;
      if (!v || !v.length) out.problems.push(type + ' trace ' + i + ' has no data');
    }
  });
  const box = gd.getBoundingClientRect();
  for (const [id, p] of Object.entries(layout._plots || {})) {
    const xa = p.xaxis, ya = p.yaxis;
    if (!xa || !ya) continue;
    out.areas.push({ id, x: box.left + xa._offset, y: box.top + ya._offset, width: xa._length, height: ya._length });
  }
  // a y-axis title drawn over (or touching: within 2 px of) another subplot's plot area
  const overlap = (a, b) => Math.min(a.right, b.x + b.width + 2) > Math.max(a.left, b.x - 2)
    && Math.min(a.bottom, b.y + b.height + 2) > Math.max(a.top, b.y - 2);
  for (const g of gd.querySelectorAll('g[class^="g-y"][class$="title"]')) {
    const axis = g.getAttribute('class').slice(2, -5);  // g-y2title -> y2
    const text = g.querySelector('text');
    if (!text || !text.textContent.trim()) continue;
    const r = text.getBoundingClientRect();
    for (const [id, p] of Object.entries(layout._plots || {})) {
      if (!p.xaxis || !p.yaxis || p.yaxis._id === axis) continue;
      const area = { x: box.left + p.xaxis._offset, y: box.top + p.yaxis._offset, width: p.xaxis._length, height: p.yaxis._length };
      if (overlap(r, area)) out.problems.push('the ' + axis + ' title "' + text.textContent + '" overlaps subplot ' + id);
    }
  }
  return out;
}"""


def _ink(image: np.ndarray) -> float:
    """Share of pixels (of an ``(h, w, 3)`` uint8 image) that differ clearly from the most
    common colour (the background; of colours as common, the one seen first)."""
    pixels = image.reshape(-1, 3).astype(np.int32)
    if not len(pixels):
        return 0.0
    packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    colours, first, counts = np.unique(packed, return_index=True, return_counts=True)
    common = counts == counts.max()
    background = pixels[first[common].min()]
    differ = np.abs(pixels - background).sum(axis=1) > 40
    return float(differ.mean())


def _crops(page, areas: list[dict]) -> list[np.ndarray]:
    """The pixels of each plot area in ``areas`` (page coordinates, one figure's subplots),
    from one screenshot of the rectangle around them all (one capture per figure, not per
    subplot: a figure of 64 facets took 64). Each crop keeps the whole pixels inside its
    area only, so nothing of a neighbour or of the axis lines around it is counted."""
    from PIL import Image  # lazy: only the browser suite reads pixels

    left, top = min(a["x"] for a in areas), min(a["y"] for a in areas)
    right = max(a["x"] + a["width"] for a in areas)
    bottom = max(a["y"] + a["height"] for a in areas)
    clip = {"x": left, "y": top, "width": right - left, "height": bottom - top}
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB"))
    sx, sy = shot.shape[1] / clip["width"], shot.shape[0] / clip["height"]  # device pixels
    crops = []
    for a in areas:
        x0, y0 = math.ceil((a["x"] - left) * sx), math.ceil((a["y"] - top) * sy)
        x1 = math.floor((a["x"] + a["width"] - left) * sx)
        y1 = math.floor((a["y"] + a["height"] - top) * sy)
        crops.append(shot[y0:y1, x0:x1])
    return crops


def figure_problems(page, name: str) -> list[str]:
    """Every plotly figure on ``page`` that draws nothing (see the module docstring)."""
    problems = []
    figures = page.locator(".js-plotly-plot")
    for i in range(figures.count()):
        figure = figures.nth(i)
        figure.scroll_into_view_if_needed()
        figure.locator(".main-svg").first.wait_for()  # drawn (plotly renders when attached)
        info = figure.evaluate(FIGURE_INFO)
        where = f"{name} figure {i} ({info['title'][:50]!r})"
        if info["traces"] == 0:
            problems.append(f"{where}: no traces")
        problems += [f"{where}: {p}" for p in info["problems"]]
        drawable = []
        for area in info["areas"]:
            if area["height"] < MIN_PX or area["width"] < MIN_PX:
                problems.append(
                    f"{where}: subplot {area['id']} is {area['width']:.0f} x {area['height']:.0f} px"
                )
            else:
                drawable.append(area)
        for area, pixels in zip(drawable, _crops(page, drawable) if drawable else []):
            ink = _ink(pixels)
            if ink < MIN_INK:
                problems.append(f"{where}: subplot {area['id']} is blank ({ink:.2%} drawn)")
    return problems


CANVAS_INK = """(root) => {
  const blank = [];
  for (const c of root.querySelectorAll('canvas')) {
    if (!c.width || !c.height || !c.getContext) continue;
    const ctx = c.getContext('2d');
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 2; i += 4) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
    if (seen.size < 2) blank.push(c.getAttribute('data-testid') || c.className || 'canvas');
  }
  return blank;
}"""


def canvas_problems(page, selector: str, name: str) -> list[str]:
    """Every blank canvas inside the elements matching ``selector`` (widget outputs)."""
    problems = []
    outputs = page.locator(selector)
    for i in range(outputs.count()):
        blank = outputs.nth(i).evaluate(CANVAS_INK)
        problems += [f"{name} widget {i}: blank canvas {b}" for b in blank]
    return problems
