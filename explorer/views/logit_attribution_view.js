// LogitAttributionView: DLA per head / neuron (heatmap) or per layer (bars); a click selects.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function draw(root) {
    const units = model.get("granularity");
    const tabs = (model.get("granularities") || []).map((u) => exEl("button", {
      cls: "ex-button" + (u === units ? " ex-active" : ""), text: u,
      attrs: { "data-testid": "units-" + u }, onclick: () => exSet(model, { granularity: u }),
    }));
    const input = (name, label) => {
      const box = exEl("input", { cls: "ex-input", attrs: { "data-testid": name + "-input", value: model.get(name), placeholder: label } });
      box.addEventListener("change", () => exSet(model, { [name]: box.value }));
      return box;
    };
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "Direct logit attribution" }), ...tabs,
      exEl("span", { cls: "ex-muted", text: "target" }), input("target", "token"),
      exEl("span", { cls: "ex-muted", text: "minus" }), input("against", "(none)"),
    ]));
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
      exEl("span", { text: model.get("direction") + " at position " + model.get("position") + ": model logit ", attrs: { "data-testid": "direction" } }),
      exNumber(model.get("logit"), "logit", 4),
      exEl("span", { cls: "ex-muted", text: " · not written by these units " }), exNumber(model.get("remainder"), "remainder", 4),
    ]));
    const v = exDecode(model.get("values"));
    const labels = model.get("labels") || [];
    const selected = model.get("selected");
    const at = labels.indexOf(selected);
    if (v.shape.length === 2 && v.size) {
      const [rows, cols] = v.shape;
      const m = Math.max(...Array.from(v.values).map(Math.abs), 1e-12);
      const hm = exHeatmapView({
        values: v.values, rows, cols, diverging: true, vmin: -m, vmax: m, testid: "dla-heatmap",
        cellW: Math.max(2, Math.min(44, Math.floor(640 / cols))), cellH: Math.max(8, Math.min(30, Math.floor(360 / rows))), annotate: true,
        rowLabels: model.get("row_labels"), colLabels: cols <= 64 ? Array.from({ length: cols }, (_, c) => (units === "heads" ? "H" : "N") + c) : null,
        selected: at >= 0 ? { row: Math.floor(at / cols), col: at % cols } : null,
        hoverText: (r, c, x) => labels[r * cols + c] + "\nDLA " + exFmt(x, 4),
        onClick: (r, c) => exSend(model, { selected: labels[r * cols + c] }),
      });
      root.appendChild(hm.node);
      root.appendChild(exLegend(-m, m, true, "direct effect on the logit (batch mean)", { meaning: ["lowers the logit", "raises it"] }));
    } else if (v.shape.length === 1 && v.size) {
      const vals = Array.from(v.values);
      const colours = vals.map((x, i) => (i === at ? "#f59e0b" : x < 0 ? "#dc2626" : "#2563eb"));
      const chart = exBarChart(vals, {
        testid: "dla-bars", width: Math.max(240, 28 * vals.length), height: 120, colours,
        yLabel: "logit", xLabel: "component (click one; labels below)",
      });
      const bars = chart.querySelector("canvas");
      bars.style.cursor = "pointer";
      bars.addEventListener("click", (e) => {
        const rect = bars.getBoundingClientRect();
        const i = Math.floor((e.clientX - rect.left) / rect.width * vals.length);
        if (i >= 0 && i < vals.length) exSend(model, { selected: labels[i] });
      });
      root.appendChild(chart);
      root.appendChild(exEl("div", { cls: "ex-row ex-muted", style: { gap: "4px" } }, labels.map((l, i) => exEl("span", { text: l + " " + exFmt(vals[i], 2), style: { fontWeight: i === at ? "700" : "400" } }))));
    }
    if (at >= 0) {
      root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
        exEl("span", { text: "selected " + selected + ": ", attrs: { "data-testid": "selected-unit" } }),
        exNumber(v.values[at], "selected-value", 4),
      ]));
    }
  }
  return exMount(model, el, "ex-dla", "dla-view", draw);
}

export default { initialize: exInitialize, render };
