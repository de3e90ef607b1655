// TrainingScrubber: a slider over a run's checkpoints and its metric curves, current step marked.
// Clicking a curve jumps to the nearest checkpoint. Helpers (exMount, exEl, exDecode, ...)
// come from _common.js, prepended by serialise.esm().

const SCRUB_SVG = "http://www.w3.org/2000/svg";
const SCRUB_COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4b5563"];
const SCRUB_PHASE_FILLS = ["rgba(37,99,235,0.08)", "rgba(234,88,12,0.10)", "rgba(22,163,74,0.10)", "rgba(147,51,234,0.08)"];
const SCRUB_W = 560, SCRUB_H = 140, SCRUB_LEFT = 52, SCRUB_RIGHT = 10, SCRUB_TOP = 14, SCRUB_BOTTOM = 22;

function scrubNode(tag, attrs = {}, text) {
  const node = document.createElementNS(SCRUB_SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function scrubNearest(steps, x) {
  let best = steps[0], dist = Infinity;
  for (const s of steps) {
    const d = Math.abs(s - x);
    if (d < dist || (d === dist && s < best)) { best = s; dist = d; }
  }
  return best;
}

function render({ model, el, experimental }) {
  exConnect(model, experimental);
  return exMount(model, el, "ex-scrubber", "training-scrubber", draw);

  function draw(body) {
    const steps = model.get("steps") || [];
    const step = model.get("step");
    if (!steps.length) { body.appendChild(exEl("div", { cls: "ex-muted", text: "no checkpoints" })); return; }
    const logX = !!model.get("log_x");

    // ---- header and slider
    const label = exEl("span", { cls: "ex-num", text: "step " + step, attrs: { "data-testid": "step-label" } });
    const header = exEl("div", { cls: "ex-row", style: { alignItems: "center" } }, [
      exEl("div", { cls: "ex-title", text: model.get("run_name") || "training run" }),
      label,
      exEl("span", { cls: "ex-muted", text: steps.length + " checkpoints" }),
    ]);
    body.appendChild(header);
    const slider = exEl("input", {
      attrs: { type: "range", min: 0, max: steps.length - 1, step: 1, value: Math.max(0, steps.indexOf(step)), "data-testid": "step-slider", "aria-label": "checkpoint" },
      style: { width: SCRUB_W + "px" },
    });
    // Dragging only moves the label; the checkpoint loads on release (or each arrow key), in
    // the background with Cancel ("set": it runs every on_step callback).
    slider.addEventListener("input", () => { label.textContent = "step " + steps[parseInt(slider.value, 10)]; });
    slider.addEventListener("change", () => exSet(model, { step: steps[parseInt(slider.value, 10)] }));
    body.appendChild(slider);

    // ---- numbers at the current step
    const summary = model.get("summary") || {};
    const table = exEl("div", { cls: "ex-row", style: { gap: "10px" }, attrs: { "data-testid": "step-summary" } });
    for (const [k, v] of Object.entries(summary)) {
      if (k === "step") continue;
      table.appendChild(exEl("span", {}, [exEl("span", { cls: "ex-muted", text: k + " " }), exNumber(v === null ? NaN : v, "summary-" + k)]));
    }
    body.appendChild(table);

    // ---- curves
    const xs = exDecode(model.get("curve_steps")).values;
    const grid = exDecode(model.get("curves"));
    const curveNames = model.get("curve_names") || [];
    const nPoints = xs.length;
    const lo = Math.min(steps[0], nPoints ? xs[0] : steps[0]);
    const hi = Math.max(steps[steps.length - 1], nPoints ? xs[nPoints - 1] : 0);
    const fx = (s) => (logX ? Math.log10(s + 1) : s);
    const x0 = fx(lo), x1 = fx(hi) > x0 ? fx(hi) : x0 + 1;
    const plotW = SCRUB_W - SCRUB_LEFT - SCRUB_RIGHT, plotH = SCRUB_H - SCRUB_TOP - SCRUB_BOTTOM;
    const px = (s) => SCRUB_LEFT + ((fx(s) - x0) / (x1 - x0)) * plotW;
    const unpx = (x) => {
      const v = x0 + ((x - SCRUB_LEFT) / plotW) * (x1 - x0);
      return logX ? Math.pow(10, v) - 1 : v;
    };
    const phases = model.get("phases") || [];

    (model.get("panels") || []).forEach((panel, pi) => {
      const rows = panel.names.map((n) => curveNames.indexOf(n)).filter((r) => r >= 0);
      const logY = !!panel.log_y;
      const fy = (v) => (logY ? Math.log10(v) : v);
      let ylo = Infinity, yhi = -Infinity;
      for (const r of rows) for (let i = 0; i < nPoints; i++) {
        const v = grid.values[r * nPoints + i];
        if (Number.isFinite(v) && (!logY || v > 0)) { ylo = Math.min(ylo, fy(v)); yhi = Math.max(yhi, fy(v)); }
      }
      if (!Number.isFinite(ylo)) { ylo = 0; yhi = 1; }
      if (yhi === ylo) { yhi = ylo + 1; }
      const py = (v) => SCRUB_TOP + (1 - (fy(v) - ylo) / (yhi - ylo)) * plotH;

      const svg = scrubNode("svg", { width: SCRUB_W, height: SCRUB_H, "data-testid": "curve-panel-" + pi, style: "cursor: crosshair; display: block" });
      phases.forEach((ph, i) => {
        const a = px(Math.max(lo, ph.start)), b = px(Math.min(hi, ph.end));
        if (b <= a) return;
        const span = scrubNode("rect", { x: a, y: SCRUB_TOP, width: b - a, height: plotH, fill: SCRUB_PHASE_FILLS[i % SCRUB_PHASE_FILLS.length], "data-testid": "phase" });
        span.appendChild(scrubNode("title", {}, ph.name + ": steps " + ph.start + "-" + ph.end));
        svg.appendChild(span);
        // A label that does not fit its span is shortened (the full name is in the tooltip).
        const fits = Math.floor((b - a - 4) / 5.5);
        const text = ph.name.length <= fits ? ph.name : fits >= 3 ? ph.name.slice(0, fits - 1) + "." : "";
        if (pi === 0 && text) svg.appendChild(scrubNode("text", { x: a + 2, y: SCRUB_TOP - 3, "font-size": 10, fill: "#555" }, text));
      });
      svg.appendChild(scrubNode("rect", { x: SCRUB_LEFT, y: SCRUB_TOP, width: plotW, height: plotH, fill: "none", stroke: "#ccc" }));
      const yText = (t) => (logY ? exFmt(Math.pow(10, t), 2) : exFmt(t, 2));
      svg.appendChild(scrubNode("text", { x: SCRUB_LEFT - 4, y: SCRUB_TOP + 8, "text-anchor": "end", "font-size": 10, fill: "#555" }, yText(yhi)));
      svg.appendChild(scrubNode("text", { x: SCRUB_LEFT - 4, y: SCRUB_TOP + plotH, "text-anchor": "end", "font-size": 10, fill: "#555" }, yText(ylo)));
      svg.appendChild(scrubNode("text", { x: SCRUB_LEFT, y: SCRUB_H - 4, "font-size": 10, fill: "#555" }, lo));
      svg.appendChild(scrubNode("text", { x: SCRUB_LEFT + plotW, y: SCRUB_H - 4, "text-anchor": "end", "font-size": 10, fill: "#555" }, hi + (logX ? " (log steps)" : " steps")));
      for (const s of steps) svg.appendChild(scrubNode("line", { x1: px(s), x2: px(s), y1: SCRUB_TOP + plotH, y2: SCRUB_TOP + plotH + 4, stroke: "#999" }));

      rows.forEach((r, k) => {
        const colour = SCRUB_COLOURS[k % SCRUB_COLOURS.length];
        // Points where this curve was not logged are skipped: the line joins its neighbours.
        let d = "", pen = false;
        for (let i = 0; i < nPoints; i++) {
          const v = grid.values[r * nPoints + i];
          if (!Number.isFinite(v) || (logY && v <= 0)) continue;
          d += (pen ? "L" : "M") + px(xs[i]).toFixed(1) + " " + py(v).toFixed(1) + " ";
          pen = true;
        }
        svg.appendChild(scrubNode("path", { d, fill: "none", stroke: colour, "stroke-width": 1.5, "data-testid": "curve-" + curveNames[r] }));
      });

      const marker = scrubNode("line", { x1: px(step), x2: px(step), y1: SCRUB_TOP, y2: SCRUB_TOP + plotH, stroke: "#f59e0b", "stroke-width": 2, "data-testid": "step-marker", "data-step": step });
      svg.appendChild(marker);
      svg.addEventListener("click", (event) => {
        const rect = svg.getBoundingClientRect();
        const x = (event.clientX - rect.left) * (SCRUB_W / rect.width);
        if (x < SCRUB_LEFT - 4 || x > SCRUB_LEFT + plotW + 4) return;
        exSet(model, { step: scrubNearest(steps, unpx(x)) });
      });
      const legend = rows.map((r, k) => exEl("span", { text: curveNames[r], style: { color: SCRUB_COLOURS[k % SCRUB_COLOURS.length], marginLeft: "10px" } }));
      body.appendChild(exEl("div", { cls: "ex-muted" }, [exEl("span", { text: logY ? "log scale" : "" }), ...legend]));
      body.appendChild(svg);
    });
  }
}

export default { initialize: exInitialize, render };
