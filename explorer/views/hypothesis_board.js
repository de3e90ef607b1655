// HypothesisBoard: every hypothesis of a project, agreement of labels, re-run all.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  const draw = (root) => {
    const projects = model.get("projects") || [];
    const shown = projects.includes(model.get("project")) ? projects : [model.get("project"), ...projects];
    const select = exSelect(shown, model.get("project"), (p) => exSend(model, { project: p }), { testid: "project" });
    const rerun = exEl("button", { cls: "ex-button ex-active", text: "Re-run all", attrs: { "data-testid": "rerun" } });
    rerun.addEventListener("click", () => { rerun.disabled = true; rerun.textContent = "re-running…"; exRequest(model, "_page_rerun"); });
    const refresh = exEl("button", { cls: "ex-button", text: "Refresh", attrs: { "data-testid": "refresh" }, onclick: () => exRequest(model, "_page_refresh") });
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
        exEl("td", { cls: "hv-claim-cell", text: r.claim + (r.parent_id ? " (edit of " + r.parent_id.slice(0, 8) + ")" : ""), attrs: { title: "id " + r.id + (r.parent_id ? ", edited from " + r.parent_id : "") } }),
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
  return exMount(model, el, "hv-board-root", "hypothesis-board", draw);
}


export default { initialize: exInitialize, render };
