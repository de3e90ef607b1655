// DiffView: change maps of two models side by side, a head's pattern in A, in B and B − A,
// and the cross-model patching grid. A click on any map selects that unit.
const EX_DIFF_MAPS = [
  { key: "weights", title: "weights", label: "relative weight change ‖W_B − W_A‖ / ‖W_A‖", diverging: false },
  { key: "attention", title: "attention", label: "Jensen-Shannon divergence of patterns (bits)", diverging: false, headsOnly: true },
  { key: "activation_mean", title: "activations", label: "mean activation change over tokens", diverging: true },
  { key: "dla", title: "DLA", label: "direct logit attribution, B − A", diverging: true },
];
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function mapView(spec, payload, unit, sel) {
    const d = exDecode(payload);
    if (d.shape.length !== 2 || !d.size) return null;
    const [rows, cols] = d.shape;
    const finite = Array.from(d.values).filter(Number.isFinite);
    const top = finite.length ? Math.max(...finite.map(Math.abs), 1e-12) : 1;
    const cell = Math.max(3, Math.min(30, Math.floor(260 / cols)));
    const hm = exHeatmapView({
      values: d.values, rows, cols, diverging: spec.diverging, testid: "diff-" + spec.key,
      vmin: spec.diverging ? -top : 0, vmax: top, cellW: cell, cellH: rows > 12 ? 14 : 22, maxWidth: 280,
      rowLabels: Array.from({ length: rows }, (_, l) => "L" + l),
      colLabels: cols <= 16 ? Array.from({ length: cols }, (_, i) => unit[0].toUpperCase() + i) : null,
      selected: sel, hoverText: (r, c, v) => "L" + r + unit[0].toUpperCase() + c + "\n" + spec.title + " " + exFmt(v, 4),
      onClick: (r, c) => exSend(model, { cell: [r, c] }),
    });
    return exEl("div", { cls: "ex-diff-map", style: { display: "inline-block", verticalAlign: "top", marginRight: "28px" } }, [
      exEl("div", { cls: "ex-title", text: spec.title }), hm.node,
      exLegend(spec.diverging ? -top : 0, top, spec.diverging, spec.label),
    ]);
  }
  function patternView(values, n, title, testid, diverging, prompt) {
    const labels = prompt.slice(0, n).map((t, i) => i + " " + exTokenLabel(model, t));
    const top = diverging ? Math.max(...Array.from(values).filter(Number.isFinite).map(Math.abs), 1e-6) : 1;
    const hm = exHeatmapView({
      values, rows: n, cols: n, diverging, testid, vmin: diverging ? -top : 0, vmax: top,
      cellW: Math.max(4, Math.min(22, Math.floor(260 / n))), cellH: Math.max(4, Math.min(22, Math.floor(260 / n))),
      maxWidth: 280, rowLabels: labels, colLabels: labels, sameAxes: true,
      hoverText: (r, c, v) => "query " + labels[r] + "\nkey " + labels[c] + "\n" + exFmt(v, 3),
    });
    return exEl("div", { style: { display: "inline-block", verticalAlign: "top", marginRight: "12px" } }, [
      exEl("div", { cls: "ex-title", text: title }), hm.node,
      exLegend(diverging ? -top : 0, top, diverging, diverging ? "attention B − A" : "attention weight"),
    ]);
  }
  function draw(root) {
    const full = model.get("model_names") || ["", ""];
    const sides = ["A", "B"];
    const unit = model.get("granularity");
    const layer = model.get("layer"), index = unit === "head" ? model.get("head") : model.get("neuron");
    const sel = { row: layer, col: index };
    const grans = (model.get("granularities") || []).map((g) => exEl("button", {
      cls: "ex-button" + (g === unit ? " ex-active" : ""), text: "by " + g,
      attrs: { "data-testid": "granularity-" + g }, onclick: () => exSet(model, { granularity: g }),
    }));
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "What changed: A (" + full[0] + ") → B (" + full[1] + ")" }), ...grans,
    ]));
    root.appendChild(exEl("div", { cls: "ex-muted", text: model.get("summary"), attrs: { "data-testid": "diff-summary" } }));
    const maps = exEl("div", { cls: "ex-row", style: { alignItems: "flex-start", flexWrap: "wrap" } });
    for (const spec of EX_DIFF_MAPS) {
      if (spec.headsOnly && unit !== "head") continue;
      const node = mapView(spec, model.get(spec.key), unit, sel);
      if (node) maps.appendChild(node);
    }
    root.appendChild(maps);
    const rec = exDecode(model.get("patching"));
    if (rec.shape.length === 2 && rec.size) {
      const into = model.get("patch_into");
      const dirs = [["model", "B into A"], ["other", "A into B (back)"]].map(([v, t]) => exEl("button", {
        cls: "ex-button" + (v === into ? " ex-active" : ""), text: t, attrs: { "data-testid": "patch-into-" + v },
        onclick: () => exSet(model, { patch_into: v }),
      }));
      const vals = exDecode(model.get("patching_values"));
      const [rows, cols] = rec.shape;
      const hm = exHeatmapView({
        values: rec.values, rows, cols, diverging: true, testid: "diff-patching", vmin: -1, vmax: 1,
        cellW: Math.max(3, Math.min(30, Math.floor(560 / cols))), cellH: rows > 12 ? 14 : 22, annotate: true,
        rowLabels: Array.from({ length: rows }, (_, l) => "L" + l),
        colLabels: cols <= 32 ? Array.from({ length: cols }, (_, i) => unit[0].toUpperCase() + i) : null,
        selected: sel, onClick: (r, c) => exSend(model, { cell: [r, c] }),
        hoverText: (r, c, v) => "L" + r + unit[0].toUpperCase() + c + "\nmetric patched " + exFmt(vals.values[r * cols + c], 4) + "\nshare of the change " + exFmt(v, 3),
      });
      root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
        exEl("div", { cls: "ex-title", text: "Cross-model patching" }), ...dirs,
        exEl("span", { text: " metric: A " }), exNumber(model.get("metric_a"), "metric-a", 4),
        exEl("span", { text: " · B " }), exNumber(model.get("metric_b"), "metric-b", 4),
      ]));
      root.appendChild(hm.node);
      root.appendChild(exLegend(-1, 1, true, "share of the behaviour change the unit carries (recovery)", { meaning: ["away from the other model", "the other model's behaviour"] }));
      const frec = exDecode(model.get("feature_patching"));
      if (frec.shape.length === 2 && frec.size) {
        const fvals = exDecode(model.get("feature_patching_values"));
        const fcols = frec.shape[1];
        const fhm = exHeatmapView({
          values: frec.values, rows: 1, cols: fcols, diverging: true, testid: "diff-feature-patching", vmin: -1, vmax: 1,
          cellW: Math.max(3, Math.min(30, Math.floor(560 / fcols))), cellH: 22, annotate: fcols <= 32,
          rowLabels: [model.get("sae_name") || "SAE"], colLabels: fcols <= 32 ? Array.from({ length: fcols }, (_, i) => "F" + i) : null,
          hoverText: (r, c, v) => "feature " + c + "\nmetric patched " + exFmt(fvals.values[c], 4) + "\nshare of the change " + exFmt(v, 3),
        });
        root.appendChild(exEl("div", { cls: "ex-title", text: "Cross-model patching of SAE features (" + (model.get("sae_name") || "SAE") + ", each model's error term kept)" }));
        root.appendChild(fhm.node);
      }
    }
    const pa = exDecode(model.get("pattern_a")), pb = exDecode(model.get("pattern_b"));
    if (pa.shape.length === 2 && pa.size && pa.size === pb.size) {
      const n = pa.shape[0];
      const diff = new Float32Array(pa.size);
      for (let i = 0; i < pa.size; i++) diff[i] = pb.values[i] - pa.values[i];
      const prompt = model.get("prompt") || [];
      const head = "L" + layer + "H" + model.get("head");
      root.appendChild(exEl("div", { cls: "ex-title", text: "Head " + head + " on prompt " + model.get("example"), attrs: { "data-testid": "selected-head" } }));
      root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "flex-start", flexWrap: "wrap" } }, [
        patternView(pa.values, n, "in " + sides[0], "pattern-a", false, prompt),
        patternView(pb.values, n, "in " + sides[1], "pattern-b", false, prompt),
        patternView(diff, n, "difference B − A", "pattern-diff", true, prompt),
      ]));
    }
  }
  return exMount(model, el, "ex-diff", "diff-view", draw);
}

export default { initialize: exInitialize, render };
