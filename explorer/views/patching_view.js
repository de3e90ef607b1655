// PatchingView: recovery heatmap (layer x position / head / neuron), clickable.
function render({ model, el }) {
  function draw(root) {
    const grid = model.get("grid"), method = model.get("method");
    const buttons = (model.get("grids") || []).map((g) => exEl("button", {
      cls: "ex-button" + (g === grid ? " ex-active" : ""), text: { resid: "layer × position", head: "layer × head", neuron: "layer × neuron" }[g],
      attrs: { "data-testid": "grid-" + g }, onclick: () => exSend(model, { grid: g }),
    }));
    const methods = ["activation", "attribution"].map((m) => exEl("button", {
      cls: "ex-button" + (m === method ? " ex-active" : ""), text: m,
      attrs: { "data-testid": "method-" + m }, onclick: () => exSend(model, { method: m }),
    }));
    root.appendChild(exEl("div", { cls: "ex-row" }, [exEl("div", { cls: "ex-title", text: "Activation patching" }), ...buttons, exEl("span", { cls: "ex-muted", text: "method" }), ...methods]));
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
      exEl("span", { text: "metric on clean " }), exNumber(model.get("clean_value"), "clean-value", 4),
      exEl("span", { text: " · on corrupted " }), exNumber(model.get("corrupted_value"), "corrupted-value", 4),
    ]));
    const clean = model.get("clean_tokens") || [], corrupted = model.get("corrupted_tokens") || [];
    if (clean.length) {
      const line = (label, toks, other) => exEl("div", { cls: "ex-example" }, [
        exEl("span", { cls: "ex-muted", text: label, style: { width: "70px" } }),
        exEl("div", { cls: "ex-tokens" }, toks.map((t, i) => exEl("span", { cls: "ex-token", text: t, style: { background: other && other[i] !== t ? "#fde68a" : "transparent" } }))),
      ]);
      root.appendChild(line("clean", clean, corrupted));
      root.appendChild(line("corrupted", corrupted, clean));
    }
    const rec = exDecode(model.get("recovery"));
    const vals = exDecode(model.get("values"));
    if (rec.shape.length === 2 && rec.size) {
      const [rows, cols] = rec.shape;
      const labels = model.get("col_labels") || [];
      const key = { resid: "position", head: "head", neuron: "neuron" }[grid];
      const hasRecovery = Array.from(rec.values).some(Number.isFinite);
      const shown = hasRecovery ? rec.values : vals.values;
      const hm = exHeatmapView({
        values: shown, rows, cols, diverging: true, testid: "patching-heatmap",
        cellW: Math.max(3, Math.min(44, Math.floor(640 / cols))), cellH: 30, annotate: true,
        rowLabels: Array.from({ length: rows }, (_, r) => "L" + r), colLabels: labels,
        selected: { row: model.get("layer"), col: model.get(key) },
        hoverText: (r, c, v) => "layer " + r + ", " + key + " " + (labels[c] ?? c) + "\nmetric " + exFmt(vals.values[r * cols + c], 4) + (hasRecovery ? "\nrecovery " + exFmt(rec.values[r * cols + c], 3) : ""),
        onClick: (r, c) => exSend(model, { layer: r, [key]: c }),
      });
      root.appendChild(hm.node);
      root.appendChild(exLegend(hm.geom.vmin, hm.geom.vmax, true, hasRecovery ? "fraction of the clean-vs-corrupted gap recovered (1 = clean)" : "metric", {
        meaning: hasRecovery ? ["further from the clean run", "closer to the clean run"] : null,
      }));
      const r = model.get("layer"), c = model.get(key);
      if (r < rows && c < cols) {
        root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
          exEl("span", { text: "selected layer " + r + ", " + key + " " + (labels[c] ?? c) + ": metric ", attrs: { "data-testid": "selected-cell" } }),
          exNumber(vals.values[r * cols + c], "selected-value", 4),
          exEl("span", { text: " recovery " }), exNumber(rec.values[r * cols + c], "selected-recovery", 3),
        ]));
      }
    }
  }
  const names = ["grid", "method", "grids", "values", "recovery", "clean_value", "corrupted_value", "col_labels", "layer", "position", "head", "neuron"];
  return exMount(model, el, "ex-patching", "patching-view", names, draw);
}

export default { render };
