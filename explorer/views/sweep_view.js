// SweepView: a sweep's phase diagram (cells split into one strip per run, "never" hatched)
// and the curves of one measure, coloured by a setting; a click on a strip or a curve opens
// that run in the scrubber beside the view. Helpers (exMount, exEl, exDecode, exSelect,
// exSet, exRequest ...) come from _common.js and _controls.js, prepended by serialise.esm().

const SW_SVG = "http://www.w3.org/2000/svg";
const SW_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4b5563"];
const SW_CELL_W = 120, SW_CELL_H = 64, SW_CHAR = 6.6;
const SW_CURVE_W = 540, SW_CURVE_H = 250, SW_LEFT = 60, SW_RIGHT = 12, SW_TOP = 10, SW_BOTTOM = 42;
const SW_NEVER = "never", SW_STATES = ["reached", "never", "unfinished", "empty"];

function swNode(tag, attrs = {}, text) {
  const node = document.createElementNS(SW_SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// The diagram's colour for a value: the sequential map from its lightest 15% on, so that
// the smallest value is never white (white is a run not finished).
function swColour(v, scale) {
  const span = (scale.vmax - scale.vmin) || 1;
  const t = Math.min(1, Math.max(0, (v - scale.vmin) / span));
  return exColour(exSequential(0.15 + 0.85 * t));
}

function swHatch(svg, id) {
  const defs = swNode("defs");
  const pattern = swNode("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.appendChild(swNode("rect", { width: 6, height: 6, fill: "#e5e7eb" }));
  pattern.appendChild(swNode("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9ca3af", "stroke-width": 3 }));
  defs.appendChild(pattern);
  svg.appendChild(defs);
}

let swIds = 0;

function swLabel(text, attrs) {
  // text over coloured strips: a white halo keeps it readable on any colour
  return swNode("text", Object.assign({ "font-size": 11, fill: "#111", stroke: "#fff", "stroke-width": 3, "paint-order": "stroke", "text-anchor": "middle" }, attrs), text);
}

function swPhase(model) {
  const xs = model.get("column_labels") || [], ys = model.get("row_labels") || [];
  const runs = model.get("cell_runs") || [], texts = model.get("cell_text") || [];
  const value = exDecode(model.get("cell_value")), state = exDecode(model.get("cell_state"));
  const scale = model.get("color_scale") || { vmin: 0, vmax: 1, label: "" };
  const selected = model.get("selected_run");
  const nx = xs.length, ny = ys.length, k = state.shape.length === 3 ? state.shape[2] : 1;
  const yName = model.get("rows") || "", xName = model.get("columns") || "";
  const tickW = Math.ceil(Math.max(...ys.map((s) => s.length), 1) * SW_CHAR) + 8;
  const left = 22 + tickW, top = 8, plotW = nx * SW_CELL_W, plotH = ny * SW_CELL_H;
  const width = left + plotW + 8, height = top + plotH + 40;
  const svg = swNode("svg", { width, height, "data-testid": "phase-diagram", style: "display: block" });
  const hatch = "sw-never-" + (++swIds);
  swHatch(svg, hatch);
  for (let i = 0; i < ny; i++) {
    for (let j = 0; j < nx; j++) {
      const names = (runs[i] && runs[i][j]) || [];
      const cell = swNode("g", { "data-testid": "cell", "data-row": i, "data-col": j, "data-x": xs[j], "data-y": ys[i], "data-text": (texts[i] && texts[i][j]) || "" });
      const x0 = left + j * SW_CELL_W, y0 = top + i * SW_CELL_H;
      const w = (SW_CELL_W - 2) / Math.max(1, names.length);
      names.forEach((name, r) => {
        const at = (i * nx + j) * k + r;
        const st = state.values[at], v = value.values[at];
        const fill = st === 0 ? swColour(v, scale) : st === 1 ? "url(#" + hatch + ")" : st === 2 ? "#fff" : "#f9fafb";
        const strip = swNode("rect", {
          x: x0 + 1 + r * w, y: y0 + 1, width: Math.max(1, w - 1), height: SW_CELL_H - 2, fill,
          stroke: name === selected ? "#f59e0b" : st === 2 ? "#9ca3af" : "none", "stroke-width": name === selected ? 3 : 1,
          "stroke-dasharray": st === 2 && name !== selected ? "3 2" : "none",
          "data-testid": "strip", "data-run": name, "data-state": SW_STATES[st], "data-value": v, style: "cursor: pointer",
        });
        const shown = st === 0 ? exFmt(v, 0) : st === 1 ? SW_NEVER : "not finished";
        strip.appendChild(swNode("title", {}, name + "\n" + (model.get("outcome") || "outcome") + ": " + shown + "\nclick: open in the scrubber"));
        strip.addEventListener("click", () => exSet(model, { selected_run: name }));
        cell.appendChild(strip);
      });
      const text = (texts[i] && texts[i][j]) || "";
      if (text !== "-") cell.appendChild(swLabel(text, { x: x0 + SW_CELL_W / 2, y: y0 + SW_CELL_H / 2 + 4, "data-testid": "cell-text", "pointer-events": "none" }));
      svg.appendChild(cell);
    }
  }
  svg.appendChild(swNode("rect", { x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#ccc" }));
  ys.forEach((label, i) => svg.appendChild(swNode("text", { x: left - 6, y: top + (i + 0.5) * SW_CELL_H + 4, "text-anchor": "end", "font-size": 11, fill: "#333", "data-testid": "y-tick" }, label)));
  xs.forEach((label, j) => svg.appendChild(swNode("text", { x: left + (j + 0.5) * SW_CELL_W, y: top + plotH + 15, "text-anchor": "middle", "font-size": 11, fill: "#333", "data-testid": "x-tick" }, label)));
  svg.appendChild(swNode("text", { x: left + plotW / 2, y: top + plotH + 33, "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#222", "data-testid": "x-axis-title" }, xName));
  const yMid = top + plotH / 2;
  svg.appendChild(swNode("text", { x: 12, y: yMid, transform: "rotate(-90 12 " + yMid + ")", "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#222", "data-testid": "y-axis-title" }, yName || "(one row)"));
  return svg;
}

function swColourbar(model) {
  const scale = model.get("color_scale") || { vmin: 0, vmax: 1, label: "" };
  const W = 180;
  const states = exDecode(model.get("cell_state")).values;
  const reached = Array.from(states).some((st) => st === 0);
  const bar = reached ? swNode("svg", { width: W + 20, height: 30, "data-testid": "colorbar" })
    : exEl("span", { cls: "ex-muted", text: "(no run has reached it yet: no colour scale)", attrs: { "data-testid": "colorbar-empty" } });
  if (reached) for (let i = 0; i < W; i++) bar.appendChild(swNode("rect", { x: 10 + i, y: 2, width: 1.2, height: 10, fill: swColour(scale.vmin + (i / (W - 1)) * (scale.vmax - scale.vmin), scale) }));
  if (reached) bar.appendChild(swNode("rect", { x: 10, y: 2, width: W, height: 10, fill: "none", stroke: "#999" }));
  if (reached) [0, 0.5, 1].forEach((t) => {
    const v = scale.vmin + t * (scale.vmax - scale.vmin);
    bar.appendChild(swNode("line", { x1: 10 + t * W, x2: 10 + t * W, y1: 12, y2: 16, stroke: "#666" }));
    bar.appendChild(swNode("text", { x: 10 + t * W, y: 27, "text-anchor": "middle", "font-size": 10, fill: "#444", "data-testid": "colorbar-tick" }, swNum(v)));
  });
  const swatch = (fill, dashed) => {
    const s = swNode("svg", { width: 16, height: 12 });
    if (fill === "hatch") { const id = "sw-legend-" + (++swIds); swHatch(s, id); fill = "url(#" + id + ")"; }
    s.appendChild(swNode("rect", { x: 1, y: 1, width: 14, height: 10, fill, stroke: "#9ca3af", "stroke-dasharray": dashed ? "3 2" : "none" }));
    return s;
  };
  return exEl("div", { cls: "ex-col", style: { gap: "2px" }, attrs: { "data-testid": "phase-legend" } }, [
    exEl("div", { cls: "ex-row", style: { alignItems: "center", gap: "8px" } }, [
      bar, exEl("span", { text: scale.label || model.get("outcome"), attrs: { "data-testid": "colorbar-label" } })]),
    exEl("div", { cls: "ex-row", style: { alignItems: "center", gap: "12px" } }, [exEl("span", { cls: "ex-row", style: { gap: "4px", alignItems: "center" }, attrs: { "data-testid": "legend-never" } }, [swatch("hatch"), exEl("span", { text: "never (finished without reaching it)" })]),
    exEl("span", { cls: "ex-row", style: { gap: "4px", alignItems: "center" }, attrs: { "data-testid": "legend-unfinished" } }, [swatch("#fff", true), exEl("span", { text: "not finished" })]),
      exEl("span", { cls: "ex-muted", text: "cell text: median (range), never counted as latest" })]),
  ]);
}

// Ticks of an axis from lo to hi (in the axis's own scale: log10 for a log axis): round
// numbers (1, 2 or 5 times a power of ten apart), at most about six.
function swTicks(lo, hi, log) {
  if (log) {
    const out = [];
    for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) out.push(p);
    return out.length >= 2 ? out : [lo, hi];
  }
  const raw = (hi - lo) / 5, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

// A number on an axis or the colour bar: up to 3 significant digits, no trailing zeros.
function swNum(x) {
  if (!Number.isFinite(x)) return exFmt(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(1);
  return String(Number(x.toPrecision(3)));
}

function swCurves(model) {
  const steps = exDecode(model.get("curve_steps")).values;
  const grid = exDecode(model.get("curve_values"));
  const runs = model.get("curve_runs") || [], groupOf = model.get("curve_group_of") || [];
  const logX = !!model.get("log_x"), logY = !!model.get("log_y"), selected = model.get("selected_run");
  const n = steps.length;
  const fx = (s) => (logX ? Math.log10(s + 1) : s), fy = (v) => (logY ? Math.log10(v) : v);
  let x0 = n ? fx(steps[0]) : 0, x1 = n ? fx(steps[n - 1]) : 1;
  if (x1 <= x0) x1 = x0 + 1;
  let y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < grid.size; i++) {
    const v = grid.values[i];
    if (Number.isFinite(v) && (!logY || v > 0)) { y0 = Math.min(y0, fy(v)); y1 = Math.max(y1, fy(v)); }
  }
  if (!Number.isFinite(y0)) { y0 = 0; y1 = 1; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const plotW = SW_CURVE_W - SW_LEFT - SW_RIGHT, plotH = SW_CURVE_H - SW_TOP - SW_BOTTOM;
  const px = (s) => SW_LEFT + ((fx(s) - x0) / (x1 - x0)) * plotW;
  const py = (v) => SW_TOP + (1 - (fy(v) - y0) / (y1 - y0)) * plotH;
  const svg = swNode("svg", { width: SW_CURVE_W, height: SW_CURVE_H, "data-testid": "curves", style: "display: block" });
  svg.appendChild(swNode("rect", { x: SW_LEFT, y: SW_TOP, width: plotW, height: plotH, fill: "none", stroke: "#ccc" }));
  for (const t of swTicks(y0, y1, logY)) {
    const y = SW_TOP + (1 - (t - y0) / (y1 - y0)) * plotH;
    svg.appendChild(swNode("line", { x1: SW_LEFT, x2: SW_LEFT + plotW, y1: y, y2: y, stroke: "#eee" }));
    svg.appendChild(swNode("text", { x: SW_LEFT - 4, y: y + 3, "text-anchor": "end", "font-size": 10, fill: "#555", "data-testid": "curve-y-tick" }, swNum(logY ? Math.pow(10, t) : t)));
  }
  for (const t of swTicks(x0, x1, logX)) {
    const x = SW_LEFT + ((t - x0) / (x1 - x0)) * plotW;
    svg.appendChild(swNode("line", { x1: x, x2: x, y1: SW_TOP + plotH, y2: SW_TOP + plotH + 4, stroke: "#999" }));
    svg.appendChild(swNode("text", { x, y: SW_TOP + plotH + 15, "text-anchor": "middle", "font-size": 10, fill: "#555", "data-testid": "curve-x-tick" }, swNum(logX ? Math.round(Math.pow(10, t) - 1) : t)));
  }
  svg.appendChild(swNode("text", { x: SW_LEFT + plotW / 2, y: SW_CURVE_H - 6, "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#222", "data-testid": "curve-x-title" }, "step" + (logX ? " (log scale)" : "")));
  const yMid = SW_TOP + plotH / 2;
  svg.appendChild(swNode("text", { x: 12, y: yMid, transform: "rotate(-90 12 " + yMid + ")", "text-anchor": "middle", "font-size": 12, "font-weight": 600, fill: "#222", "data-testid": "curve-y-title" }, (model.get("measure") || "") + (logY ? " (log scale)" : "")));
  const order = runs.map((_, r) => r).sort((a, b) => (runs[a] === selected) - (runs[b] === selected));
  for (const r of order) {
    let d = "", pen = false;
    for (let i = 0; i < n; i++) {
      const v = grid.values[r * n + i];
      if (!Number.isFinite(v) || (logY && v <= 0) || (logX && steps[i] < 0)) continue;
      d += (pen ? "L" : "M") + px(steps[i]).toFixed(1) + " " + py(v).toFixed(1) + " ";
      pen = true;
    }
    if (!d) continue;
    const colour = SW_PALETTE[(groupOf[r] || 0) % SW_PALETTE.length];
    const mine = runs[r] === selected;
    const open = () => exSet(model, { selected_run: runs[r] });
    const line = swNode("path", { d, fill: "none", stroke: colour, "stroke-width": mine ? 3 : 1.5, "stroke-opacity": mine || !selected ? 1 : 0.75, "data-testid": "curve", "data-run": runs[r] });
    const hit = swNode("path", { d, fill: "none", stroke: "transparent", "stroke-width": 9, "pointer-events": "stroke", style: "cursor: pointer", "data-testid": "curve-hit", "data-run": runs[r] });
    hit.appendChild(swNode("title", {}, runs[r] + "\nclick: open in the scrubber"));
    hit.addEventListener("click", open);
    svg.appendChild(line);
    svg.appendChild(hit);
  }
  return svg;
}

function swCurveLegend(model) {
  const groups = model.get("curve_groups") || [], by = model.get("color_by");
  return exEl("div", { cls: "ex-row", style: { gap: "10px", alignItems: "center" }, attrs: { "data-testid": "curve-legend" } }, [
    exEl("span", { cls: "ex-muted", text: by ? by + ":" : "every run:" }),
    ...groups.map((g, i) => exEl("span", { attrs: { "data-testid": "curve-legend-item" } }, [
      exEl("span", { cls: "ex-swatch", style: { background: SW_PALETTE[i % SW_PALETTE.length], display: "inline-block", width: "14px", height: "3px", verticalAlign: "middle", marginRight: "4px" } }),
      exEl("span", { text: g }),
    ])),
  ]);
}

function swProgress(model) {
  const p = model.get("progress") || {};
  if (!p.text) return null;
  const parts = [exEl("span", { text: p.text, attrs: { "data-testid": "progress-text", "data-done": p.done ?? "", "data-outcome": p.outcome || "" } })];
  if (model.get("sweeping")) {
    const stop = exEl("button", { cls: "ex-button", text: "Stop sweep", attrs: { "data-testid": "stop-sweep" } });
    stop.addEventListener("click", () => { stop.disabled = true; stop.textContent = "stopping…"; exRequest(model, "_page_cancel_sweep"); });
    parts.push(stop);
  }
  return exEl("div", { cls: "ex-pending", style: { display: "flex" }, attrs: { "data-testid": "sweep-progress" } }, parts);
}

function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function draw(root) {
    const settings = model.get("settings") || [];
    const folder = model.get("folder") || "";
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
      exEl("div", { cls: "ex-title", text: "Sweep " + folder.split("/").pop() + " (" + model.get("study") + ")" }),
      exEl("span", { cls: "ex-muted", text: "click a strip (one per seed) or a curve to open that run in the scrubber" }),
    ]));
    const progress = swProgress(model);
    if (progress) root.appendChild(progress);
    const pick = (label, trait, options) => [exEl("span", { cls: "ex-muted", text: label }),
      exSelect(options, model.get(trait), (v) => exSet(model, { [trait]: v }), { cls: "ex-select", testid: trait.replace("_", "-") + "-select" })];
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "center", gap: "6px" } }, [
      ...pick("columns", "columns", settings), ...pick("rows", "rows", [{ value: "", text: "(one row)" }, ...settings]),
      ...pick("colour", "outcome", model.get("outcome_names") || []),
    ]));
    root.appendChild(swPhase(model));
    root.appendChild(swColourbar(model));
    const box = (label, trait) => {
      const input = exEl("input", { attrs: { type: "checkbox", "data-testid": trait.replace("_", "-") } });
      input.checked = !!model.get(trait);
      input.addEventListener("change", () => exSend(model, { [trait]: input.checked }));
      return exEl("label", { cls: "ex-muted" }, [input, exEl("span", { text: label })]);
    };
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "center", gap: "6px", marginTop: "10px" } }, [
      ...pick("measure", "measure", model.get("measures") || []),
      ...pick("colour by", "color_by", [{ value: "", text: "(one colour)" }, ...settings]),
      box("log x", "log_x"), box("log y", "log_y"),
    ]));
    root.appendChild(swCurves(model));
    root.appendChild(swCurveLegend(model));
    const selected = model.get("selected_run");
    if (selected) root.appendChild(exEl("div", { cls: "ex-muted", text: "open in the scrubber: " + selected, attrs: { "data-testid": "selected-run" } }));
  }
  return exMount(model, el, "ex-sweep", "sweep-view", draw);
}

export default { initialize: exInitialize, render };
