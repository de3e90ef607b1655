// explorer: helpers shared by every widget's ES module (prepended by serialise.esm()).
// Strings from data or users only ever reach the page through textContent or
// setAttribute, never innerHTML, so a token "<img src=x onerror=...>" shows as text.

// ------------------------------------------------------------------ payload decoding
let exF16Table = null;

function exF16ToF32(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * Math.pow(2, -14) * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * Math.pow(2, exp - 15) * (1 + frac / 1024);
}

function exBytes(data) {
  // ipywidgets hands buffers over as DataView; other front ends may give ArrayBuffer or a view.
  if (data instanceof DataView) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(0);
}

// payload {dtype, shape, data, lo?, hi?} -> {values: Float32Array|Int32Array, shape, size}
function exDecode(payload) {
  if (!payload || !payload.shape) return { values: new Float32Array(0), shape: [0], size: 0 };
  const shape = payload.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  const bytes = exBytes(payload.data).slice(); // copy: aligned and detached from the message
  let values;
  if (payload.dtype === "float16") {
    const raw = new Uint16Array(bytes.buffer, 0, size);
    if (typeof Float16Array !== "undefined") {
      values = Float32Array.from(new Float16Array(bytes.buffer, 0, size));
    } else {
      if (exF16Table === null) {
        exF16Table = new Float32Array(65536);
        for (let i = 0; i < 65536; i++) exF16Table[i] = exF16ToF32(i);
      }
      values = new Float32Array(size);
      for (let i = 0; i < size; i++) values[i] = exF16Table[raw[i]];
    }
  } else if (payload.dtype === "uint8") {
    const hasRange = payload.lo !== undefined && payload.lo !== null;
    const lo = hasRange ? payload.lo : 0;
    const scale = hasRange ? (payload.hi - payload.lo) / 255 : 1;
    values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = lo + bytes[i] * scale;
  } else if (payload.dtype === "float32") {
    values = new Float32Array(bytes.buffer, 0, size);
  } else if (payload.dtype === "int32") {
    values = new Int32Array(bytes.buffer, 0, size);
  } else {
    throw new Error("unknown payload dtype " + String(payload.dtype));
  }
  return { values, shape, size };
}

// ------------------------------------------------------------------ DOM helpers
function exEl(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  if (opts.cls) node.className = opts.cls;
  if (opts.text !== undefined) node.textContent = String(opts.text);
  if (opts.title !== undefined) node.title = String(opts.title);
  for (const [k, v] of Object.entries(opts.attrs || {})) node.setAttribute(k, String(v));
  for (const [k, v] of Object.entries(opts.style || {})) node.style[k] = v;
  if (opts.onclick) node.addEventListener("click", opts.onclick);
  for (const child of children) if (child) node.appendChild(child);
  return node;
}

function exFmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toFixed(digits);
}

// Short text for a number written inside a heatmap cell: two significant digits.
function exCompact(x) {
  if (!Number.isFinite(x)) return exFmt(x);
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e5) return x.toExponential(1);
  return String(Number(x.toPrecision(2)));
}

// A number shown in the page, with the exact kernel value kept in data-value for tests.
function exNumber(x, testid, digits = 3) {
  return exEl("span", { cls: "ex-num", text: exFmt(x, digits), attrs: { "data-testid": testid, "data-value": x } });
}

// The error banner: shows model.get("error") and hides when empty.
function exErrorBanner(model) {
  const node = exEl("div", { cls: "ex-error", attrs: { role: "alert", "data-testid": "error" } });
  const update = () => {
    const msg = model.get("error") || "";
    node.textContent = msg;
    node.style.display = msg ? "block" : "none";
  };
  update();
  model.on("change:error", update);
  return node;
}

function exSend(model, changes) {
  for (const [k, v] of Object.entries(changes)) model.set(k, v);
  model.save_changes();
}

// ------------------------------------------------------------------ tokens
// One token renderer for every view. A token's label comes from the kernel
// (explorer/views/token_labels.py: '·' a space, '⏎' a newline, '→' a tab, ...), sent in the
// trait token_labels {raw: label}; the tooltip gives the raw token as JSON. Tokens of one
// text sit side by side with no gap (a word in pieces reads as one word), a faint line at
// each boundary; a label is never cut short.
function exTokenLabel(model, raw) {
  const labels = model.get("token_labels") || {};
  const s = String(raw ?? "");
  return Object.prototype.hasOwnProperty.call(labels, s) ? labels[s] : s;
}

function exTokenTitle(raw, extra) {
  return "token " + JSON.stringify(String(raw ?? "")) + (extra ? "\n" + extra : "");
}

// opts: {cls, title (below the raw token), style, attrs, onclick}
function exToken(model, raw, opts = {}) {
  return exEl("span", {
    cls: "ex-token" + (opts.cls ? " " + opts.cls : ""), text: exTokenLabel(model, raw),
    title: exTokenTitle(raw, opts.title), style: opts.style, onclick: opts.onclick,
    attrs: Object.assign({ "data-token": String(raw ?? "") }, opts.attrs || {}),
  });
}

// ------------------------------------------------------------------ colours
// The visual language of every view:
// sequential: white -> dark blue (attention, counts: more is darker);
// diverging: one map whose colours always mean the same thing: red = worse for the model
// (or lowers the output), blue = better (or raises it), white = no change. For a metric
// where higher is worse (a loss) the view passes sign = -1, so a loss that goes up is red
// just like an accuracy that goes down.
function exSequential(t) {
  t = Math.min(1, Math.max(0, t));
  return [Math.round(255 - 222 * t), Math.round(255 - 180 * t), Math.round(255 - 75 * t)];
}

function exDiverging(t) {
  t = Math.min(1, Math.max(-1, t));
  if (t >= 0) return [Math.round(255 - 222 * t), Math.round(255 - 155 * t), Math.round(255 - 75 * t)];
  const s = -t;
  return [Math.round(255 - 40 * s), Math.round(255 - 200 * s), Math.round(255 - 200 * s)];
}

function exColour(rgb) {
  return "rgb(" + rgb[0] + "," + rgb[1] + "," + rgb[2] + ")";
}

// Draw values[rows x cols] onto a canvas of (cols*cell) x (rows*cell) pixels.
// opts: {vmin, vmax, diverging, sign (-1: higher is worse), cellW, cellH, maxWidth, maxHeight}
function exDrawHeatmap(canvas, values, rows, cols, opts = {}) {
  const diverging = !!opts.diverging;
  let vmin = opts.vmin, vmax = opts.vmax;
  if (vmin === undefined || vmax === undefined) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < rows * cols; i++) {
      const v = values[i];
      if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    if (diverging) { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1; lo = -m; hi = m; }
    if (vmin === undefined) vmin = lo;
    if (vmax === undefined) vmax = hi;
  }
  const span = vmax - vmin || 1;
  const off = document.createElement("canvas");
  off.width = Math.max(1, cols);
  off.height = Math.max(1, rows);
  const octx = off.getContext("2d");
  const img = octx.createImageData(off.width, off.height);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c];
      let rgb;
      if (!Number.isFinite(v)) rgb = [235, 235, 235];
      else if (diverging) rgb = exDiverging((opts.sign || 1) * v / Math.max(Math.abs(vmin), Math.abs(vmax), 1e-12));
      else rgb = exSequential((v - vmin) / span);
      const i = 4 * (r * cols + c);
      img.data[i] = rgb[0]; img.data[i + 1] = rgb[1]; img.data[i + 2] = rgb[2]; img.data[i + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  let cellW = opts.cellW || 8, cellH = opts.cellH || cellW;
  if (opts.maxWidth && cols * cellW > opts.maxWidth) cellW = Math.max(1, opts.maxWidth / cols);
  if (opts.maxHeight && rows * cellH > opts.maxHeight) cellH = Math.max(1, opts.maxHeight / rows);
  canvas.width = Math.max(1, Math.round(cols * cellW));
  canvas.height = Math.max(1, Math.round(rows * cellH));
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  return { cellW: canvas.width / Math.max(1, cols), cellH: canvas.height / Math.max(1, rows), vmin, vmax };
}

// Map a mouse event on a heatmap canvas to its (row, col), or null outside.
function exCellAt(canvas, event, rows, cols) {
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * (canvas.width / rect.width);
  const y = (event.clientY - rect.top) * (canvas.height / rect.height);
  const col = Math.floor(x / (canvas.width / cols));
  const row = Math.floor(y / (canvas.height / rows));
  if (row < 0 || row >= rows || col < 0 || col >= cols) return null;
  return { row, col };
}

// A floating tooltip whose content is set as text.
function exTooltip(container) {
  const tip = exEl("div", { cls: "ex-tooltip", attrs: { "data-testid": "tooltip" } });
  tip.style.display = "none";
  container.appendChild(tip);
  return {
    show(event, text) {
      tip.textContent = text;
      tip.style.display = "block";
      const rect = container.getBoundingClientRect();
      tip.style.left = (event.clientX - rect.left + 12) + "px";
      tip.style.top = (event.clientY - rect.top + 12) + "px";
    },
    hide() { tip.style.display = "none"; },
    node: tip,
  };
}

// A heatmap with axis labels, hover text and click: returns {node, canvas, draw()}.
// spec: {values, rows, cols, rowLabels, colLabels, diverging, cell, onClick(row, col),
//        hoverText(row, col, value), selected: {row, col}, testid}
function exHeatmapView(spec) {
  const wrap = exEl("div", { cls: "ex-heatmap", attrs: { "data-testid": spec.testid || "heatmap" } });
  const canvas = exEl("canvas", { cls: "ex-heatmap-canvas" });
  const tip = exTooltip(wrap);
  const grid = exEl("div", { cls: "ex-heatmap-grid" });
  const rowAxis = exEl("div", { cls: "ex-axis ex-axis-rows" });
  const colAxis = exEl("div", { cls: "ex-axis ex-axis-cols" });
  const plot = exEl("div", { cls: "ex-heatmap-plot" }, [canvas]);
  grid.appendChild(exEl("div"));
  grid.appendChild(colAxis);
  grid.appendChild(rowAxis);
  grid.appendChild(plot);
  wrap.appendChild(grid);
  const geom = exDrawHeatmap(canvas, spec.values, spec.rows, spec.cols, {
    diverging: spec.diverging, sign: spec.sign, cellW: spec.cellW || spec.cell || 14, cellH: spec.cellH || spec.cell || 14,
    maxWidth: spec.maxWidth || 720, maxHeight: spec.maxHeight || 560, vmin: spec.vmin, vmax: spec.vmax,
  });
  // One label every `every` cells so that labels never overlap: 12 px per row label, and
  // 16 px per column label (angled at 60 degrees, a label needs its font height / sin 60).
  // spec.sameAxes (a token x token map such as attention): one step for both axes, so the
  // same positions are labelled down and across (row r is position rowOffset + r). Whenever
  // an axis is thinned, a line under the map says which labels are shown.
  const labelEvery = (px, need) => Math.max(1, Math.ceil(need / Math.max(px, 0.01)));
  let rowEvery = labelEvery(geom.cellH, 12), colEvery = labelEvery(geom.cellW, 16);
  if (spec.sameAxes) rowEvery = colEvery = Math.max(rowEvery, colEvery);
  const rowOffset = spec.rowOffset || 0;
  const CHAR_PX = 6.2;  // a 10 px monospace character: axes are sized to their longest label
  const longest = (labels) => labels.reduce((m, l) => Math.max(m, String(l).length), 0);
  if (spec.rowLabels) {
    rowAxis.style.height = canvas.height + "px";
    rowAxis.style.width = Math.ceil(longest(spec.rowLabels) * CHAR_PX + 8) + "px";
    for (let r = 0; r < spec.rows; r++) {
      if ((rowOffset + r) % rowEvery !== 0) continue;
      rowAxis.appendChild(exEl("div", { cls: "ex-axis-label", text: spec.rowLabels[r], title: spec.rowLabels[r], attrs: { "data-index": rowOffset + r }, style: { top: (r * geom.cellH + geom.cellH / 2 - 6) + "px" } }));
    }
  }
  if (spec.colLabels) {
    colAxis.style.width = canvas.width + "px";
    colAxis.style.height = Math.ceil(longest(spec.colLabels) * CHAR_PX * Math.sin(Math.PI / 3) + 14) + "px";
    for (let c = 0; c < spec.cols; c += colEvery) {
      colAxis.appendChild(exEl("div", { cls: "ex-axis-label ex-axis-label-col", text: spec.colLabels[c], title: spec.colLabels[c], attrs: { "data-index": c }, style: { left: (c * geom.cellW + geom.cellW / 2 - 5) + "px" } }));
    }
  }
  const thinned = [];
  const some = (n, what, first) => "1 " + what + " in " + n + " is labelled (" + first + ", " + (first + n) + ", " + (first + 2 * n) + ", ...)";
  if (spec.sameAxes && rowEvery > 1) thinned.push(some(rowEvery, "position", 0) + ", the same ones on both axes");
  else {
    if (spec.rowLabels && rowEvery > 1) thinned.push("rows: " + some(rowEvery, "row", 0));
    if (spec.colLabels && colEvery > 1) thinned.push("columns: " + some(colEvery, "column", 0));
  }
  if (thinned.length) wrap.appendChild(exEl("div", { cls: "ex-muted ex-axis-note", text: thinned.join("; ") + " (hover a cell for its labels)", attrs: { "data-testid": "axis-note" } }));
  if (spec.annotate && geom.cellW >= 30 && geom.cellH >= 16 && spec.rows * spec.cols <= 400) {
    const ctx = canvas.getContext("2d");
    ctx.font = "10px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const m = Math.max(Math.abs(geom.vmin), Math.abs(geom.vmax), 1e-12);
    for (let r = 0; r < spec.rows; r++) for (let c = 0; c < spec.cols; c++) {
      const v = spec.values[r * spec.cols + c];
      if (!Number.isFinite(v)) continue;
      ctx.fillStyle = Math.abs(v) / m > 0.6 ? "#fff" : "#111";
      ctx.fillText(exCompact(v), (c + 0.5) * geom.cellW, (r + 0.5) * geom.cellH);
    }
  }
  if (spec.selected && spec.selected.row !== undefined && spec.selected.row !== null) {
    const ctx = canvas.getContext("2d");
    ctx.strokeStyle = "#f59e0b";
    ctx.lineWidth = 2;
    const col = spec.selected.col ?? 0;
    const w = spec.selected.col === null || spec.selected.col === undefined ? canvas.width : geom.cellW;
    ctx.strokeRect(col * geom.cellW + 1, spec.selected.row * geom.cellH + 1, Math.max(2, w - 2), Math.max(2, geom.cellH - 2));
  }
  canvas.addEventListener("mousemove", (e) => {
    const cell = exCellAt(canvas, e, spec.rows, spec.cols);
    if (!cell) { tip.hide(); return; }
    const v = spec.values[cell.row * spec.cols + cell.col];
    const text = spec.hoverText ? spec.hoverText(cell.row, cell.col, v) : exFmt(v);
    tip.show(e, text);
    canvas.setAttribute("data-hover-row", cell.row);
    canvas.setAttribute("data-hover-col", cell.col);
    canvas.setAttribute("data-hover-value", v);
  });
  canvas.addEventListener("mouseleave", () => tip.hide());
  if (spec.onClick) {
    canvas.style.cursor = "pointer";
    canvas.addEventListener("click", (e) => {
      const cell = exCellAt(canvas, e, spec.rows, spec.cols);
      if (cell) spec.onClick(cell.row, cell.col);
    });
  }
  return { node: wrap, canvas, geom };
}

// A colour bar from vmin to vmax with its label (the quantity and its unit), and what its
// two ends mean: opts.meaning = [what red (sequential: light) means, what blue (dark) means], in words (which way is better), shown
// with a swatch of each end's colour. opts.baseline (a value) with opts.baselineLabel is
// marked on the bar by a black tick and stated beside it (a random baseline).
function exLegend(vmin, vmax, diverging, label, opts = {}) {
  const sign = opts.sign || 1;
  const bar = exEl("canvas", { cls: "ex-legend-bar", attrs: { "data-testid": "legend-bar" } });
  bar.width = 120; bar.height = 10;
  const ctx = bar.getContext("2d");
  for (let i = 0; i < 120; i++) {
    const t = i / 119;
    ctx.fillStyle = exColour(diverging ? exDiverging(sign * (2 * t - 1)) : exSequential(t));
    ctx.fillRect(i, 0, 1, 10);
  }
  const hasBaseline = opts.baseline !== undefined && opts.baseline !== null && Number.isFinite(opts.baseline);
  if (hasBaseline) {
    const x = Math.round(119 * Math.min(1, Math.max(0, (opts.baseline - vmin) / ((vmax - vmin) || 1))));
    ctx.fillStyle = "#000";
    ctx.fillRect(Math.max(0, x - 1), 0, 2, 10);
  }
  const end = (t) => exColour(diverging ? exDiverging(t) : exSequential((t + 1) / 2));
  const meaning = opts.meaning ? exEl("span", { cls: "ex-meaning", attrs: { "data-testid": "colour-meaning" } }, [
    exEl("span", { cls: "ex-swatch", style: { background: end(-1) } }), exEl("span", { text: opts.meaning[0] }),
    exEl("span", { cls: "ex-swatch", style: { background: end(1) } }), exEl("span", { text: opts.meaning[1] }),
  ]) : null;
  return exEl("div", { cls: "ex-legend", attrs: { "data-testid": opts.testid || "legend" } }, [
    exEl("span", { text: exFmt(vmin, 2) }), bar, exEl("span", { text: exFmt(vmax, 2) }),
    label ? exEl("span", { cls: "ex-muted", text: " " + label }) : null,
    hasBaseline ? exEl("span", { cls: "ex-baseline", text: "▮ " + (opts.baselineLabel || "baseline " + exFmt(opts.baseline, 2)), attrs: { "data-testid": "legend-baseline", "data-value": opts.baseline } }) : null,
    meaning,
  ]);
}

// A legend from a ColorScale the kernel sent (explorer/analysis/color_scales.py), with its
// note (an approximation, values beyond the ends) written under it.
function exScaleLegend(scale, diverging, opts = {}) {
  const legend = exLegend(scale.vmin, scale.vmax, diverging, scale.label, Object.assign({
    meaning: [scale.low, scale.high], baseline: scale.baseline, baselineLabel: scale.baseline_label,
  }, opts));
  const parts = [legend];
  if (scale.approximate) parts.push(exEl("div", { cls: "ex-note", text: "approximation", style: { alignSelf: "flex-start" }, attrs: { "data-testid": "approximation-note", title: scale.note } }));
  if (scale.note) parts.push(exEl("div", { cls: "ex-muted", text: scale.note, attrs: { "data-testid": "scale-note" } }));
  return exEl("div", { cls: "ex-col" }, parts);
}

// A bar chart with axes: y ticks (top, 0, bottom) with the y label, a zero line, and the
// x axis with its end values and label. opts: {width, height, xLabel, yLabel, xMin, xMax,
// colours, testid, rule}. opts.rule: a value marked by a dashed line (a threshold), which
// the y axis always spans. The canvas keeps opts.testid; the chart is wrapped with
// testid + "-chart".
function exBarChart(values, opts = {}) {
  const height = opts.height || 90;
  const bars = exBars(values, opts);
  const span = opts.rule === undefined ? values : values.concat([opts.rule]);
  let lo = Math.min(0, ...span), hi = Math.max(0, ...span);
  if (hi === lo) hi = lo + 1;
  const zeroTop = height * (hi / (hi - lo));
  const ticks = exEl("div", { cls: "ex-chart-yticks", style: { height: height + "px" } }, [
    exEl("span", { text: exFmt(hi, 2), style: { top: "-6px" } }),
    // the zero tick, unless it would overlap the top or bottom tick
    lo < 0 && hi > 0 && zeroTop > 12 && zeroTop < height - 12 ? exEl("span", { text: "0", style: { top: (zeroTop - 6) + "px" } }) : null,
    exEl("span", { text: exFmt(lo, 2), style: { top: (height - 6) + "px" } }),
  ]);
  const yLabel = exEl("div", { cls: "ex-chart-ylabel", text: opts.yLabel || "", style: { height: height + "px" } });
  const xAxis = exEl("div", { cls: "ex-chart-xaxis", style: { width: (opts.width || 320) + "px" } }, [
    exEl("span", { text: opts.xMin === undefined ? "" : String(opts.xMin) }),
    exEl("span", { cls: "ex-chart-xlabel", text: opts.xLabel || "" }),
    exEl("span", { text: opts.xMax === undefined ? "" : String(opts.xMax) }),
  ]);
  return exEl("div", { cls: "ex-chart", attrs: { "data-testid": (opts.testid || "bars") + "-chart" } }, [
    yLabel, ticks, bars, exEl("div"), exEl("div"), xAxis,
  ]);
}

// A vertical bar chart (histograms, per-example metrics) drawn on a canvas.
function exBars(values, opts = {}) {
  const n = values.length;
  const canvas = exEl("canvas", { cls: "ex-bars", attrs: { "data-testid": opts.testid || "bars" } });
  const width = opts.width || 320, height = opts.height || 90;
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  const span = opts.rule === undefined ? values : values.concat([opts.rule]);
  let lo = Math.min(0, ...span), hi = Math.max(0, ...span);
  if (hi === lo) hi = lo + 1;
  const zero = height * (hi / (hi - lo));
  const w = width / Math.max(1, n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const y = height * ((hi - Math.max(v, 0)) / (hi - lo));
    const h = Math.abs(v) / (hi - lo) * height;
    ctx.fillStyle = (opts.colours && opts.colours[i]) || (v < 0 ? "#dc2626" : "#2563eb");
    ctx.fillRect(i * w + (w > 3 ? 0.5 : 0), v >= 0 ? y : zero, Math.max(1, w - (w > 3 ? 1 : 0)), Math.max(v === 0 ? 0 : 1, h));
  }
  ctx.fillStyle = "#888";
  ctx.fillRect(0, Math.min(height - 1, zero), width, 1);
  if (opts.rule !== undefined) {
    const y = Math.min(height - 1, Math.max(1, height * ((hi - opts.rule) / (hi - lo))));
    ctx.setLineDash([4, 3]); ctx.strokeStyle = "#111"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke(); ctx.setLineDash([]);
  }
  return canvas;
}

// The running budget meter under every view: the passes its model has run so far
// (ModelHandle.spent, kept in the synced trait `spent`); hidden for views without a model.
function exSpentMeter(model) {
  const node = exEl("div", { cls: "ex-spent ex-muted", attrs: { "data-testid": "spent" } });
  const update = () => {
    const s = model.get("spent") || {};
    if (s.forward === undefined) { node.style.display = "none"; return; }
    node.style.display = "block";
    node.setAttribute("data-value", s.forward);
    const fmt = (x) => (x ?? 0).toLocaleString("en");
    node.textContent = "budget: " + fmt(s.forward) + " forward, " + fmt(s.backward) + " backward passes (" + fmt(s.examples) + " examples) run on this model so far";
  };
  update();
  model.on("change:spent", update);
  return node;
}

// Mount a widget: a root with the error banner and a body redrawn (once per frame) whenever
// a synced trait changes or a request is answered. draw(body) rebuilds the body. Returns the
// cleanup function.
//
// The first draw is scheduled too, never run inside render(): anywidget calls render in the
// same task that finishes loading a model's module, and gives every model 2 s (wall clock)
// from its creation to finish that loading, or the model is marked "Failed to initialize" and
// drops every later message from the kernel. Under CPU load a first draw took over a second
// there, so the widgets created beside it (an Explorer creates four at once) ran out of time.
// Returning from render at once keeps each model's initialisation short.
function exMount(model, el, cls, testid, draw) {
  // Keys typed in a view are the view's: JupyterLab's notebook shortcuts (Enter, a, b, dd...)
  // must not fire while an input here has focus.
  const root = exEl("div", { cls: "ex-root " + cls, attrs: { "data-testid": testid, "data-lm-suppress-shortcuts": "true", "data-p-suppress-shortcuts": "true" } });
  const banner = exErrorBanner(model);
  const body = exEl("div");
  const running = exPending(model, body);
  root.appendChild(banner);
  root.appendChild(running.node);
  root.appendChild(body);
  root.appendChild(exSpentMeter(model));
  el.appendChild(root);
  let pending = false;
  const redraw = () => {
    body.replaceChildren();
    try {
      draw(body);
    } catch (err) {
      body.appendChild(exEl("div", { cls: "ex-error", text: "could not draw this view: " + err }));
    }
  };
  const schedule = () => {
    if (pending) return;
    pending = true;
    const run = () => { pending = false; redraw(); };
    if (typeof requestAnimationFrame === "function" && document.visibilityState === "visible") requestAnimationFrame(run);
    else setTimeout(run, 0);
  };
  schedule();
  // any synced trait changing redraws (one listener, no list of names to keep in step with
  // the Python traits), and so does a request answered: buttons it disabled come back
  model.on("change", schedule);
  const unanswer = exOnAnswer(model, schedule);
  return () => { running.cleanup(); unanswer(); model.off("change", schedule); };
}

// The activation histogram of a unit (traits hist_counts / hist_edges), log-scaled counts,
// under a title; nothing when the histogram is empty.
function exActivationHistogram(parent, model, title) {
  const counts = exDecode(model.get("hist_counts"));
  const edges = exDecode(model.get("hist_edges"));
  if (!counts.size) return;
  parent.appendChild(exEl("div", { cls: "ex-title", text: title }));
  const logCounts = Array.from(counts.values, (c) => Math.log10(1 + c));
  parent.appendChild(exBarChart(logCounts, {
    width: 300, height: 80, testid: "histogram", yLabel: "log10(1 + count)", xLabel: "activation",
    xMin: exFmt(edges.values[0], 2), xMax: exFmt(edges.values[edges.size - 1], 2),
    colours: logCounts.map(() => exColour(exSequential(0.75))),
  }));
}
