// InterventionPanel: unit picker, ablation kind, metric before/after, sweep heatmap.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  const typed = { text: "" };  // a unit being typed survives redraws

  function draw(root) {
    const units = model.get("units") || [];
    const kind = model.get("ablation");
    const unitType = model.get("granularity");
    const nL = model.get("n_layers"), nH = model.get("n_heads");
    const widths = model.get("widths") || [];

    // ---- controls: metric, kind (changes that ablate go as "set" requests: they run in
    // the background with Cancel; the sweep's unit type only labels the next sweep)
    const metricSel = exSelect(model.get("metric_names") || [], model.get("metric_name"),
      (name) => exSet(model, { metric_name: name }), { testid: "metric-select" });
    const kinds = exEl("span", {}, ["zero", "mean", "resample"].map((k) => exEl("button", {
      cls: "ex-button" + (k === kind ? " ex-active" : ""), text: k,
      attrs: { "data-testid": "kind-" + k }, onclick: () => exSet(model, { ablation: k }),
    })));
    const typeButtons = [];
    if (nH > 0 && widths.length > 0) {
      for (const t of ["head", "neuron"]) {
        typeButtons.push(exEl("button", { cls: "ex-button" + (t === unitType ? " ex-active" : ""), text: t + "s", attrs: { "data-testid": "type-" + t }, onclick: () => exSend(model, { granularity: t }) }));
      }
    }
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "Intervention" }),
      exEl("span", { cls: "ex-muted", text: "metric" }), metricSel,
      exEl("span", { cls: "ex-muted", text: "ablation" }), kinds,
      ...typeButtons,
      exEl("span", { cls: "ex-muted", text: "on " + model.get("n_examples") + " examples" }),
    ]));

    // ---- unit picker
    const toggle = (name) => {
      const next = units.includes(name) ? units.filter((u) => u !== name) : units.concat([name]);
      exSet(model, { units: next });
    };
    const picker = exEl("div", { cls: "ex-row" });
    if (unitType === "head" && nH > 0) {
      const name = (l, h) => "head " + l + "." + h;
      const grid = exHeadPicker(nL, nH, (l, h) => units.includes(name(l, h)), (l, h) => toggle(name(l, h)));
      picker.appendChild(exEl("div", { cls: "ex-col" }, [exEl("span", { cls: "ex-muted", text: "click heads to ablate them together" }), grid]));
    }
    picker.appendChild(exEl("div", { cls: "ex-col" }, [
      exEl("span", { cls: "ex-muted", text: "or type a unit (head 1.2, neuron 0.12, resid 1@5)" }),
      exUnitInput(unitType === "head" ? "head 1.2" : "neuron 0.12", typed, (text) => exRequest(model, "_page_add_unit", { text })),
    ]));
    root.appendChild(picker);
    const chips = exEl("div", { attrs: { "data-testid": "units" } });
    for (const u of units) {
      chips.appendChild(exEl("span", { cls: "ex-chip" }, [
        exEl("span", { text: u }),
        exEl("button", { cls: "ex-button", text: "×", title: "remove", onclick: () => toggle(u) }),
      ]));
    }
    if (units.length) chips.appendChild(exEl("button", { cls: "ex-button", text: "clear", onclick: () => exSet(model, { units: [] }) }));
    else chips.appendChild(exEl("span", { cls: "ex-muted", text: "no unit selected" }));
    root.appendChild(chips);

    // ---- results
    const before = exDecode(model.get("before")), after = exDecode(model.get("after"));
    const worseUp = model.get("worse_when") === "up";  // a loss: up is worse for the model
    if (units.length && before.size) {
      const bm = model.get("before_mean"), am = model.get("after_mean");
      root.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "baseline" } }, [
        exEl("span", { text: model.get("metric_name") + " before " }), exNumber(bm, "before-mean", 4),
        exEl("span", { text: " → after " }), exNumber(am, "after-mean", 4),
        exEl("span", { text: " change " }), exNumber(am - bm, "effect", 4),
      ]));
      const diffs = Array.from(after.values, (v, i) => v - before.values[i]);
      const harm = (v) => (worseUp ? v > 0 : v < 0);
      root.appendChild(exEl("div", { cls: "ex-row" }, [
        exEl("div", { cls: "ex-col" }, [
          exEl("span", { cls: "ex-muted", text: "change per example (after − before); red: worse for the model" }),
          exBarChart(diffs, {
            width: 360, height: 70, testid: "per-example", yLabel: "change", xLabel: "example",
            xMin: 0, xMax: diffs.length - 1,
            colours: diffs.map((v) => (harm(v) ? exColour(exDiverging(-0.8)) : exColour(exDiverging(0.8)))),
          }),
        ]),
        (() => {
          const table = exEl("table", { cls: "ex-table", attrs: { "data-testid": "per-example-table" } });
          table.appendChild(exEl("tr", {}, [exEl("th", { text: "example" }), exEl("th", { text: "before" }), exEl("th", { text: "after" })]));
          for (let i = 0; i < Math.min(6, before.size); i++) {
            table.appendChild(exEl("tr", {}, [exEl("td", { text: "#" + i }), exEl("td", {}, [exNumber(before.values[i], "before-" + i)]), exEl("td", {}, [exNumber(after.values[i], "after-" + i)])]));
          }
          return table;
        })(),
      ]));
      root.appendChild(exEl("div", { cls: "ex-muted", text: "hooks fired: " + (model.get("hooks") || []).join(", ") }));
    }

    // ---- sweep
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("button", { cls: "ex-button", text: "Sweep: ablate every " + unitType, attrs: { "data-testid": "sweep" }, onclick: (e) => { e.target.disabled = true; e.target.textContent = "sweeping…"; exRequest(model, "_page_sweep"); } }),
      exEl("span", { cls: "ex-muted", text: model.get("sweep_info") }),
    ]));
    const sweep = exDecode(model.get("sweep_effects"));
    if (sweep.shape.length === 2 && sweep.size) {
      const [rows, cols] = sweep.shape;
      // outline the unit ablated alone (if it is one of this sweep's kind), nothing otherwise
      const one = units.length === 1 ? /^(head|neuron) (\d+)\.(\d+)$/.exec(units[0]) : null;
      const selected = one && one[1] === unitType ? { row: +one[2], col: +one[3] } : null;
      const hm = exHeatmapView({
        values: sweep.values, rows, cols, diverging: true, sign: worseUp ? -1 : 1, testid: "sweep-heatmap",
        cellW: Math.max(3, Math.min(44, Math.floor(640 / cols))), cellH: 30, annotate: true,
        rowLabels: Array.from({ length: rows }, (_, r) => "L" + r),
        colLabels: Array.from({ length: cols }, (_, c) => (unitType === "head" ? "H" : "N") + c),
        selected,
        hoverText: (r, c, v) => unitType + " " + r + "." + c + "\nchange " + exFmt(v, 4),
        onClick: (r, c) => { if (Number.isFinite(sweep.values[r * cols + c])) exRequest(model, "_page_select", { layer: r, index: c }); },
      });
      root.appendChild(hm.node);
      root.appendChild(exLegend(hm.geom.vmin, hm.geom.vmax, true, "change in " + model.get("metric_name") + " (after − before)", {
        sign: worseUp ? -1 : 1, meaning: ["worse for the model", "better"],
      }));
    }
  }

  return exMount(model, el, "ex-intervention", "intervention-panel", draw);
}

export default { initialize: exInitialize, render };
