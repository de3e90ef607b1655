// PatchingView: recovery heatmap over a chosen patching site (or path patching), clickable.
const EX_SITE_NAMES = {
  resid: "resid_pre · layer × position", resid_mid: "resid_mid · layer × position",
  attn_out: "attn_out · layer × position", mlp_out: "mlp_out · layer × position",
  head: "head output · layer × head", head_by_pos: "head output · by position",
  q: "queries · layer × head", k: "keys · layer × head", v: "values · layer × head",
  q_by_pos: "queries · by position", k_by_pos: "keys · by position", v_by_pos: "values · by position",
  pattern: "pattern · layer × head", pattern_by_pos: "pattern · by destination",
  neuron: "neuron · layer × neuron", path: "path patching · senders → receivers",
  feature: "SAE features · one cell per feature (click: select it)",
};
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function draw(root) {
    const grid = model.get("grid"), method = model.get("method");
    const sites = (model.get("grids") || []).map((g) => ({ value: g, text: EX_SITE_NAMES[g] || g }));
    const select = exSelect(sites, grid, (g) => exSet(model, { grid: g }), { cls: "ex-select", testid: "site-select" });
    const quick = ["resid", "head", "neuron", "path"].filter((g) => (model.get("grids") || []).includes(g)).map((g) => exEl("button", {
      cls: "ex-button" + (g === grid ? " ex-active" : ""), text: { resid: "layer × position", head: "layer × head", neuron: "layer × neuron", path: "path" }[g],
      attrs: { "data-testid": "grid-" + g }, onclick: () => exSet(model, { grid: g }),
    }));
    const methods = grid === "path" ? [] : [exEl("span", { cls: "ex-muted", text: "method" }), ...["activation", "attribution"].map((m) => exEl("button", {
      cls: "ex-button" + (m === method ? " ex-active" : ""), text: m === "attribution" ? "attribution (approximate)" : m,
      attrs: { "data-testid": "method-" + m }, onclick: () => exSet(model, { method: m }),
    }))];
    root.appendChild(exEl("div", { cls: "ex-row" }, [exEl("div", { cls: "ex-title", text: "Activation patching" }), exEl("span", { cls: "ex-muted", text: "site" }), select, ...quick, ...methods]));
    if (grid === "path") {
      const recv = model.get("receivers_used") || [];
      const inputs = model.get("receiver_inputs") || [];
      const toggles = ["q", "k", "v"].map((i) => exEl("button", {
        cls: "ex-button" + (inputs.includes(i) ? " ex-active" : ""), text: i, attrs: { "data-testid": "input-" + i },
        onclick: () => { const next = inputs.includes(i) ? inputs.filter((x) => x !== i) : [...inputs, i]; if (next.length) exSet(model, { receiver_inputs: next }); },
      }));
      root.appendChild(exEl("div", { cls: "ex-row" }, [
        exEl("span", { text: "receivers: " + recv.join(", ") + (model.get("receivers").length ? "" : " (the head selected when this grid opened)") + " · via ", attrs: { "data-testid": "receivers" } }), ...toggles,
        exEl("span", { cls: "ex-muted", text: " (run on the clean input; senders from the corrupted run)" }),
      ]));
    }
    root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
      exEl("span", { text: "metric on clean " }), exNumber(model.get("clean_value"), "clean-value", 4),
      exEl("span", { text: " · on corrupted " }), exNumber(model.get("corrupted_value"), "corrupted-value", 4),
    ]));
    const clean = model.get("clean_tokens") || [], corrupted = model.get("corrupted_tokens") || [];
    if (clean.length) {
      const line = (label, toks, other) => exEl("div", { cls: "ex-example" }, [
        exEl("span", { cls: "ex-muted", text: label, style: { width: "70px" } }),
        exEl("div", { cls: "ex-tokens" }, toks.map((t, i) => exToken(model, t, { title: "position " + i, style: { background: other && other[i] !== t ? "#fde68a" : "transparent" } }))),
      ]);
      root.appendChild(line("clean", clean, corrupted));
      root.appendChild(line("corrupted", corrupted, clean));
    }
    const rec = exDecode(model.get("recovery"));
    const vals = exDecode(model.get("values"));
    if (rec.shape.length === 2 && rec.size) {
      const [rows, cols] = rec.shape;
      const rowLabels = model.get("row_labels") || [], colLabels = model.get("col_labels") || [];
      const hasRecovery = Array.from(rec.values).some(Number.isFinite);
      const shown = hasRecovery ? rec.values : vals.values;
      const sel = model.get("selected_cell") || [];
      // one fixed scale from the kernel (the same for exact and attribution patching), or,
      // where no recovery is defined, the metric itself
      const scale = hasRecovery ? (model.get("color_scale") || {}) : {};
      const hm = exHeatmapView({
        values: shown, rows, cols, diverging: true, testid: "patching-heatmap", vmin: scale.vmin, vmax: scale.vmax,
        cellW: Math.max(3, Math.min(44, Math.floor(640 / cols))), cellH: rows > 16 ? 16 : 30, annotate: true,
        rowLabels, colLabels, selected: sel.length === 2 ? { row: sel[0], col: sel[1] } : null,
        hoverText: (r, c, v) => (rowLabels[r] ?? r) + ", " + (colLabels[c] ?? c) + "\nmetric " + exFmt(vals.values[r * cols + c], 4) + (hasRecovery ? "\nshown " + exFmt(rec.values[r * cols + c], 3) : ""),
        onClick: (r, c) => exSend(model, { cell: [r, c] }),
      });
      root.appendChild(hm.node);
      root.appendChild(hasRecovery && scale.label ? exScaleLegend(scale, true) : exLegend(hm.geom.vmin, hm.geom.vmax, true, "metric (no clean-vs-corrupted gap to scale by)", {
        meaning: ["lower metric", "higher metric"],
      }));
      if (sel.length === 2 && sel[0] < rows && sel[1] < cols) {
        const i = sel[0] * cols + sel[1];
        root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
          exEl("span", { text: "selected " + model.get("selected_text") + ": metric ", attrs: { "data-testid": "selected-cell" } }),
          exNumber(vals.values[i], "selected-value", 4),
          exEl("span", { text: grid === "path" ? " change " : " recovery " }), exNumber(rec.values[i], "selected-recovery", 3),
        ]));
      }
    }
  }
  return exMount(model, el, "ex-patching", "patching-view", draw);
}

export default { initialize: exInitialize, render };
