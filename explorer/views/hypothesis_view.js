// HypothesisWidget (edit a claim, press Test, see the verdict) and HypothesisBoard (every
// hypothesis of a project, agreement of labels, re-run all). Every string from users or the
// store reaches the page through textContent (exEl's text) or an input's value, never innerHTML.

const STATUS_TEXT = {
  untested: "untested", running: "testing…", supported: "supported",
  refuted: "refuted", inconclusive: "inconclusive",
};

function hvBadge(status, testid) {
  const s = String(status || "untested");
  const known = Object.prototype.hasOwnProperty.call(STATUS_TEXT, s);
  return exEl("span", {
    cls: "hv-badge hv-" + (known ? s : "untested"),
    text: known ? STATUS_TEXT[s] : s,
    attrs: { "data-testid": testid || "status" },
  });
}

function hvField(label, node) {
  return exEl("label", { cls: "hv-field" }, [exEl("span", { cls: "ex-muted", text: label }), node]);
}

// The interval against the threshold (and the baseline) on one axis.
function hvIntervalBar(v) {
  const pts = [v.value, v.ci_low, v.ci_high, v.threshold];
  if (v.baseline !== null && v.baseline !== undefined) pts.push(v.baseline);
  let lo = Math.min(...pts), hi = Math.max(...pts);
  const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 0.1;
  lo -= pad; hi += pad;
  const at = (x) => (100 * (x - lo) / (hi - lo)).toFixed(2) + "%";
  const bar = exEl("div", { cls: "hv-axis", attrs: { "data-testid": "interval" } });
  bar.appendChild(exEl("div", { cls: "hv-ci hv-" + v.status, style: { left: at(v.ci_low), width: "calc(" + at(v.ci_high) + " - " + at(v.ci_low) + ")" } }));
  bar.appendChild(exEl("div", { cls: "hv-mark hv-value", title: "value " + exFmt(v.value, 4), style: { left: at(v.value) } }));
  bar.appendChild(exEl("div", { cls: "hv-mark hv-threshold", title: "threshold " + exFmt(v.threshold, 4), style: { left: at(v.threshold) } }));
  if (v.baseline !== null && v.baseline !== undefined) {
    bar.appendChild(exEl("div", { cls: "hv-mark hv-baseline", title: "baseline " + exFmt(v.baseline, 4), style: { left: at(v.baseline) } }));
  }
  const legend = exEl("div", { cls: "ex-muted hv-legend", text: "bar: " + Math.round(100 * v.confidence) + "% interval · black: value · red: threshold · grey: baseline" });
  return exEl("div", { cls: "ex-col" }, [bar, legend]);
}

function hvVerdict(v) {
  const box = exEl("div", { cls: "hv-verdict", attrs: { "data-testid": "verdict" } });
  if (!v || !v.status) {
    box.appendChild(exEl("span", { cls: "ex-muted", text: "not tested yet: press Test to judge the claim on the held-out split" }));
    return box;
  }
  if (v.status === "unavailable") {
    box.appendChild(exEl("div", { cls: "ex-row" }, [hvBadge(v.status, "verdict-status"), exEl("span", { text: v.note || v.summary, attrs: { "data-testid": "verdict-note" } })]));
    return box;
  }
  const side = v.direction === "above" ? ">" : "<";
  box.appendChild(exEl("div", { cls: "ex-row" }, [
    hvBadge(v.status, "verdict-status"),
    exEl("span", {}, [
      exNumber(v.value, "verdict-value", 4),
      exEl("span", { cls: "ex-muted", text: " [" + exFmt(v.ci_low, 4) + ", " + exFmt(v.ci_high, 4) + "] (" + Math.round(100 * v.confidence) + "% CI), claim " + side + " " + exFmt(v.threshold, 4) }),
    ]),
  ]));
  box.appendChild(hvIntervalBar(v));
  const rows = [
    ["measure", v.measure],
    ["baseline", v.baseline === null || v.baseline === undefined ? "none (" + v.baseline_source + ")" : exFmt(v.baseline, 4) + " (" + v.baseline_source + ")" + (v.beats_baseline === true ? ": beaten" : v.beats_baseline === false ? ": not beaten" : "")],
    ["held-out", v.split],
    ["model", v.model_name + " @" + v.model_fingerprint],
    ["when", v.timestamp],
  ];
  for (const [k, val] of Object.entries(v.details || {})) rows.push([k, exFmt(val, 4)]);
  const table = exEl("table", { cls: "ex-table hv-details" });
  for (const [k, val] of rows) table.appendChild(exEl("tr", {}, [exEl("th", { text: k }), exEl("td", { text: val })]));
  box.appendChild(table);
  return box;
}

function renderEditor(model, el) {
  const root = exEl("div", { cls: "ex-root hv-editor", attrs: { "data-testid": "hypothesis-widget" } });
  root.appendChild(exErrorBanner(model));

  const claim = exEl("textarea", { cls: "hv-claim", attrs: { rows: 2, "data-testid": "claim" } });
  const units = exEl("input", { cls: "ex-input hv-units", attrs: { "data-testid": "units", placeholder: "head 1.4, neuron 0.37" } });
  const direction = exEl("select", { attrs: { "data-testid": "direction" } }, ["above", "below"].map((d) => exEl("option", { text: d, attrs: { value: d } })));
  const threshold = exEl("input", { cls: "ex-input", attrs: { type: "number", step: "any", "data-testid": "threshold" } });
  const test = exEl("button", { cls: "ex-button ex-active", text: "Test", attrs: { "data-testid": "test" } });
  const badge = exEl("span");
  const info = exEl("div", { cls: "ex-col ex-muted" });
  const verdict = exEl("div");
  const history = exEl("div");

  // Fill the form from the kernel, but never under the cursor of someone typing.
  const fill = () => {
    const pairs = [[claim, "claim"], [units, "units"], [direction, "direction"], [threshold, "threshold"]];
    for (const [node, name] of pairs) if (document.activeElement !== node) node.value = String(model.get(name));
  };
  const update = () => {
    fill();
    const status = model.get("status");
    badge.replaceChildren(hvBadge(status));
    test.disabled = status === "running";
    test.textContent = status === "running" ? "testing…" : "Test";
    info.replaceChildren(
      exEl("span", { text: "measure: " + model.get("measure") }),
      exEl("span", { text: "formed on " + model.get("formation") + "; judged on " + model.get("held_out") }),
      exEl("span", { text: "model: " + model.get("model_name") }),
    );
    verdict.replaceChildren(hvVerdict(model.get("verdict")));
    const past = (model.get("history") || []).slice(0, -1).reverse();
    history.replaceChildren();
    if (past.length) {
      const list = exEl("div", { cls: "ex-col", attrs: { "data-testid": "history" } }, [exEl("span", { cls: "ex-muted", text: "earlier verdicts" })]);
      for (const v of past) {
        list.appendChild(exEl("div", { cls: "ex-row hv-history" }, [
          hvBadge(v.status, "history-status"),
          exEl("span", { text: exFmt(v.value, 4) + " [" + exFmt(v.ci_low, 3) + ", " + exFmt(v.ci_high, 3) + "]" }),
          exEl("span", { cls: "ex-muted", text: v.model_name + " @" + v.model_fingerprint + " · " + v.timestamp }),
        ]));
      }
      history.appendChild(list);
    }
  };

  test.addEventListener("click", () => {
    test.disabled = true;
    test.textContent = "testing…";
    model.send({ action: "test", claim: claim.value, units: units.value, direction: direction.value, threshold: Number(threshold.value) });
  });

  root.appendChild(exEl("div", { cls: "ex-row" }, [exEl("div", { cls: "ex-title", text: "Hypothesis" }), badge]));
  root.appendChild(hvField("claim", claim));
  root.appendChild(exEl("div", { cls: "ex-row" }, [hvField("units", units), hvField("measure is", direction), hvField("threshold", threshold), test]));
  root.appendChild(info);
  root.appendChild(verdict);
  root.appendChild(history);
  el.appendChild(root);
  update();
  const names = ["claim", "units", "direction", "threshold", "status", "verdict", "history", "measure", "formation", "held_out", "model_name", "presses"];
  for (const n of names) model.on("change:" + n, update);
  return () => { for (const n of names) model.off("change:" + n, update); };
}

function renderBoard(model, el) {
  const draw = (root) => {
    const projects = model.get("projects") || [];
    const select = exEl("select", { attrs: { "data-testid": "project" } });
    for (const p of projects.includes(model.get("project")) ? projects : [model.get("project"), ...projects]) {
      const opt = exEl("option", { text: p, attrs: { value: p } });
      if (p === model.get("project")) opt.selected = true;
      select.appendChild(opt);
    }
    select.addEventListener("change", () => exSend(model, { project: select.value }));
    const rerun = exEl("button", { cls: "ex-button ex-active", text: "Re-run all", attrs: { "data-testid": "rerun" } });
    rerun.addEventListener("click", () => { rerun.disabled = true; rerun.textContent = "re-running…"; model.send({ action: "rerun" }); });
    const refresh = exEl("button", { cls: "ex-button", text: "Refresh", attrs: { "data-testid": "refresh" }, onclick: () => model.send({ action: "refresh" }) });
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "Hypotheses" }), select, refresh, rerun,
      exEl("span", { cls: "ex-muted", text: model.get("model_name") ? "on " + model.get("model_name") : "no model to re-run on" }),
    ]));
    if (model.get("message")) root.appendChild(exEl("div", { cls: "ex-muted", text: model.get("message"), attrs: { "data-testid": "message" } }));

    const unreadable = model.get("unreadable") || [];
    if (unreadable.length) {
      const box = exEl("div", { cls: "hv-unreadable", attrs: { "data-testid": "unreadable" } }, [
        exEl("div", { text: unreadable.length + " stored row" + (unreadable.length === 1 ? "" : "s") + " could not be read (the others are shown):" }),
      ]);
      for (const bad of unreadable) box.appendChild(exEl("div", { cls: "ex-muted", text: bad.table + " " + bad.id + ": " + bad.reason, attrs: { "data-testid": "unreadable-row" } }));
      root.appendChild(box);
    }
    const rows = model.get("rows") || [];
    const table = exEl("table", { cls: "ex-table hv-board", attrs: { "data-testid": "board" } });
    table.appendChild(exEl("tr", {}, ["author", "claim", "units", "test", "status", "value [CI]", "baseline", "model", "when"].map((h) => exEl("th", { text: h }))));
    let lastAuthor = null;
    for (const r of rows) {
      const first = r.author !== lastAuthor;
      lastAuthor = r.author;
      const value = r.value === undefined ? "–" : exFmt(r.value, 3) + " [" + exFmt(r.ci_low, 3) + ", " + exFmt(r.ci_high, 3) + "]";
      table.appendChild(exEl("tr", { cls: first ? "hv-author-start" : "", attrs: { "data-testid": "row" } }, [
        exEl("td", { text: first ? r.author || "unknown" : "" }),
        exEl("td", { cls: "hv-claim-cell", text: r.claim }),
        exEl("td", { text: r.units }),
        exEl("td", { text: r.test }),
        exEl("td", {}, [hvBadge(r.status, "row-status")]),
        exEl("td", { text: value }),
        exEl("td", { text: r.baseline === undefined || r.baseline === null ? "–" : exFmt(r.baseline, 3) }),
        exEl("td", { text: r.model || "–" }),
        exEl("td", { text: r.when || "–" }),
      ]));
    }
    if (!rows.length) table.appendChild(exEl("tr", {}, [exEl("td", { cls: "ex-muted", text: "no hypotheses in this project yet", attrs: { colspan: 9 } })]));
    root.appendChild(table);

    const agreement = model.get("agreement") || [];
    if (agreement.length) {
      root.appendChild(exEl("div", { cls: "ex-title", text: "Labels and agreement" }));
      const t = exEl("table", { cls: "ex-table hv-board", attrs: { "data-testid": "agreement" } });
      t.appendChild(exEl("tr", {}, ["unit", "agreement", "kappa", "items", "labels by rater"].map((h) => exEl("th", { text: h }))));
      for (const a of agreement) {
        const labels = exEl("div", { cls: "ex-col" }, Object.entries(a.labels || {}).map(([rater, text]) => exEl("span", { text: rater + ": " + text })));
        t.appendChild(exEl("tr", { attrs: { "data-testid": "agreement-row" } }, [
          exEl("td", { text: a.unit }),
          exEl("td", { text: a.method === "none" ? a.note : a.method + " (" + a.strength + ")" }),
          exEl("td", {}, [exNumber(a.kappa, "kappa", 2)]),
          exEl("td", { text: String(a.n_items) }),
          exEl("td", {}, [labels]),
        ]));
      }
      root.appendChild(t);
    }
  };
  const names = ["error", "project", "projects", "rows", "agreement", "model_name", "message", "requests", "unreadable"];
  return exMount(model, el, "hv-board-root", "hypothesis-board", names, draw);
}

function render({ model, el }) {
  return model.get("board") === true ? renderBoard(model, el) : renderEditor(model, el);
}

export default { render };
