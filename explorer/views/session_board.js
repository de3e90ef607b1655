// SessionBoard: the live board of a session, redrawn whenever the kernel pushes a new board.
function sbTable(testid, headers, rows) {
  const t = exEl("table", { cls: "ex-table hv-board", attrs: { "data-testid": testid } });
  t.appendChild(exEl("tr", {}, headers.map((h) => exEl("th", { text: h }))));
  for (const row of rows) t.appendChild(row);
  return t;
}

function sbBudget(spent, budget) {
  const share = budget > 0 ? Math.min(1, spent / budget) : 0;
  const bar = exEl("div", { cls: "sb-bar", attrs: { title: spent + " of " + budget + " passes" } }, [
    exEl("div", { cls: "sb-fill" + (budget > 0 && spent >= budget ? " sb-full" : ""), style: { width: (100 * share).toFixed(1) + "%" } }),
  ]);
  return exEl("div", { cls: "ex-row sb-budget" }, [bar, exEl("span", { text: spent + " / " + (budget || "∞"), attrs: { "data-testid": "budget-text" } })]);
}

function sbScatter(rows) {
  // findings (up) against passes spent (right): the auditing game's trade-off. The axes run a
  // little past the largest value so no point sits on the frame, and people on one spot share
  // one label ("bo, cy") instead of overprinting or running off the plot.
  const w = 300, h = 160, left = 30, right = 12, top = 12, bottom = 30;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("data-testid", "leaderboard-plot");
  const maxP = Math.max(1, ...rows.map((r) => r.passes || 0));
  const maxF = Math.max(1, ...rows.map((r) => r.findings || 0));
  const sx = (p) => left + ((w - left - right) * p) / (1.15 * maxP);
  const sy = (f) => h - bottom - ((h - bottom - top) * f) / (1.15 * maxF);
  const line = (x1, y1, x2, y2) => { const l = document.createElementNS(ns, "line"); for (const [k, v] of Object.entries({ x1, y1, x2, y2, stroke: "#9ca3af" })) l.setAttribute(k, v); svg.appendChild(l); };
  line(left, h - bottom, w - right, h - bottom); line(left, top, left, h - bottom);
  const text = (x, y, s, anchor, testid) => {
    const t = document.createElementNS(ns, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "10");
    t.setAttribute("text-anchor", anchor || "start"); if (testid) t.setAttribute("data-testid", testid); t.textContent = s; svg.appendChild(t);
  };
  text(left, h - bottom + 12, "0", "middle"); text(sx(maxP), h - bottom + 12, String(maxP), "middle");
  text(left - 4, h - bottom + 3, "0", "end"); text(left - 4, sy(maxF) + 3, String(maxF), "end");
  text(w - right, h - 4, "passes spent", "end"); text(left + 4, top + 2, "findings");
  const spots = new Map();  // "x,y" -> the rows on that spot
  for (const r of rows) {
    const key = (r.passes || 0) + "," + (r.findings || 0);
    if (!spots.has(key)) spots.set(key, []);
    spots.get(key).push(r);
  }
  for (const group of spots.values()) {
    const x = sx(group[0].passes || 0), y = sy(group[0].findings || 0);
    for (const r of group) {
      const c = document.createElementNS(ns, "circle");
      c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", 4);
      // after the reveal: green where a finding names a planted unit, red where none does
      c.setAttribute("fill", r.correct === null || r.correct === undefined ? "#2563eb" : r.correct > 0 ? "#16a34a" : "#dc2626");
      const tip = document.createElementNS(ns, "title"); tip.textContent = r.name + ": " + r.findings + " findings, " + r.passes + " passes"; c.appendChild(tip);
      svg.appendChild(c);
    }
    const names = group.map((r) => r.name).join(", ");
    const onRight = x > w / 2;  // a label runs towards the middle, never off the plot
    text(onRight ? x - 7 : x + 7, y - 6, names, onRight ? "end" : "start", "leader-label");
  }
  return svg;
}

// A revealed truth, readable: "planted.concept_neuron_model, seed 0: neuron 0.3".
function sbTruth(v) {
  if (v && typeof v === "object" && "study" in v) {
    const units = Array.isArray(v.units) && v.units.length ? ": " + v.units.join(", ") : "";
    const extra = Object.entries(v).filter(([k]) => !["study", "seed", "units"].includes(k)).map(([k, x]) => k + " " + (typeof x === "string" ? x : JSON.stringify(x)));
    return v.study + (v.seed === undefined ? "" : ", seed " + v.seed) + units + (extra.length ? " (" + extra.join("; ") + ")" : "");
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}

function render({ model, el, experimental }) {
  exConnect(model, experimental);
  const draw = (root) => {
    const head = [exEl("div", { cls: "ex-title", text: model.get("title") || "Live session" }),
      exEl("span", { text: "join code " }), exEl("code", { cls: "sb-code", text: model.get("code"), attrs: { "data-testid": "join-code" } }),
      exEl("span", { cls: model.get("live") ? "sb-live" : "ex-muted", text: model.get("live") ? "● live" : "not live", attrs: { "data-testid": "live" } }),
      exEl("span", { cls: "ex-muted", text: model.get("n_records") + " records, version " + model.get("version"), attrs: { "data-testid": "n-records", "data-value": model.get("n_records") } })];
    if (model.get("can_reveal") && !model.get("revealed")) {
      const reveal = exEl("button", { cls: "ex-button ex-active", text: "Reveal", attrs: { "data-testid": "reveal" } });
      reveal.addEventListener("click", () => { reveal.disabled = true; exRequest(model, "_page_reveal"); });
      head.push(reveal);
    }
    root.appendChild(exEl("div", { cls: "ex-row" }, head));

    const people = model.get("participants") || [];
    root.appendChild(exEl("div", { cls: "ex-title", text: "Participants" }));
    root.appendChild(sbTable("participants", ["name", "hypotheses", "verdicts", "passes / budget"], people.map((p) =>
      exEl("tr", { attrs: { "data-testid": "participant", "data-name": p.name } }, [
        exEl("td", { text: p.name }),
        exEl("td", { text: String(p.hypotheses), attrs: { "data-testid": "hypotheses", "data-value": p.hypotheses } }),
        exEl("td", {}, [exEl("div", { cls: "ex-row sb-verdicts" }, Object.entries(p.verdicts || {}).map(([s, n]) => exEl("span", {}, [hvBadge(s, "verdict-" + s), exEl("span", { text: " ×" + n })])))]),
        exEl("td", {}, [sbBudget(p.passes_spent || 0, p.budget || 0)]),
      ]))));
    if (!people.length) root.appendChild(exEl("div", { cls: "ex-muted", text: "nobody has joined yet: share the join code" }));

    const units = model.get("units") || [];
    if (units.length) {
      root.appendChild(exEl("div", { cls: "ex-title", text: "Labels and the room's agreement" }));
      root.appendChild(sbTable("units", ["unit", "kappa", "raters", "labels"], units.map((u) =>
        exEl("tr", { attrs: { "data-testid": "unit", "data-unit": u.unit } }, [
          exEl("td", { text: u.unit }),
          exEl("td", {}, [u.kappa === null || u.kappa === undefined ? exEl("span", { cls: "ex-muted", text: "n/a", attrs: { "data-testid": "kappa" } }) : exNumber(u.kappa, "kappa", 2)]),
          exEl("td", { text: String(u.raters) }),
          exEl("td", {}, [exEl("div", { cls: "ex-col" }, Object.entries(u.labels || {}).map(([who, text]) => exEl("span", { text: who + ": " + text, attrs: { "data-testid": "label" } })))]),
        ]))));
    }

    const leaders = model.get("leaderboard") || [];
    if (leaders.length) {
      root.appendChild(exEl("div", { cls: "ex-title", text: "Leaderboard: findings against passes" }));
      const table = sbTable("leaderboard", ["name", "findings", "passes", "correct"], leaders.map((r) =>
        exEl("tr", { attrs: { "data-testid": "leader", "data-name": r.name } }, [
          exEl("td", { text: r.name }), exEl("td", { text: String(r.findings) }), exEl("td", { text: String(r.passes) }),
          exEl("td", { text: r.correct === null || r.correct === undefined ? "hidden" : String(r.correct), attrs: { "data-testid": "correct" } }),
        ])));
      root.appendChild(exEl("div", { cls: "ex-row" }, [table, sbScatter(leaders)]));
    }

    const truth = model.get("truth") || {};
    if (model.get("revealed")) {
      root.appendChild(exEl("div", { cls: "ex-title", text: "The truth (revealed)" }));
      const planted = Object.entries(truth);
      if (planted.length) {
        root.appendChild(sbTable("truth", ["who", "their model and its planted units"], planted.map(([k, v]) =>
          exEl("tr", {}, [exEl("td", { text: k }), exEl("td", { text: sbTruth(v), attrs: { "data-testid": "truth-value", "data-key": k } })]))));
      } else {
        root.appendChild(exEl("div", { cls: "ex-muted", text: "nothing to show: nobody was handed a model", attrs: { "data-testid": "truth-empty" } }));
      }
    } else {
      root.appendChild(exEl("div", { cls: "ex-muted", text: "the truth stays hidden until the mentor reveals it", attrs: { "data-testid": "truth-hidden" } }));
    }

    const records = model.get("records") || [];
    root.appendChild(exEl("div", { cls: "ex-title", text: "Latest records" }));
    const list = exEl("div", { cls: "ex-col sb-records", attrs: { "data-testid": "records" } });
    for (const r of records.slice().reverse()) {
      const when = r.committed_at ? new Date(1000 * r.committed_at).toLocaleTimeString() : "";
      list.appendChild(exEl("div", { cls: "sb-record", text: when + "  " + r.author + " " + r.kind + " " + r.id, attrs: { "data-testid": "record", "data-record": r.kind + ":" + r.id, "data-author": r.author } }));
    }
    root.appendChild(list);
    if (!records.length) list.appendChild(exEl("div", { cls: "ex-muted", text: "none yet" }));
  };
  return exMount(model, el, "sb-root", "session-board", draw);
}


export default { initialize: exInitialize, render };
