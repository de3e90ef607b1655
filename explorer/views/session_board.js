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
  // findings (up) against passes spent (right): the auditing game's trade-off
  const w = 260, h = 150, pad = 28;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("data-testid", "leaderboard-plot");
  const maxP = Math.max(1, ...rows.map((r) => r.passes || 0));
  const maxF = Math.max(1, ...rows.map((r) => r.findings || 0));
  const line = (x1, y1, x2, y2) => { const l = document.createElementNS(ns, "line"); for (const [k, v] of Object.entries({ x1, y1, x2, y2, stroke: "#9ca3af" })) l.setAttribute(k, v); svg.appendChild(l); };
  line(pad, h - pad, w - 8, h - pad); line(pad, 8, pad, h - pad);
  const text = (x, y, s, anchor) => { const t = document.createElementNS(ns, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("font-size", "10"); t.setAttribute("text-anchor", anchor || "start"); t.textContent = s; svg.appendChild(t); };
  text(w - 8, h - 8, "passes (max " + maxP + ")", "end"); text(4, 16, "findings");
  const taken = {};  // people on the same spot: their names stack instead of overprinting
  for (const r of rows) {
    const x = pad + ((w - pad - 16) * (r.passes || 0)) / maxP, y = h - pad - ((h - pad - 16) * (r.findings || 0)) / maxF;
    const spot = x.toFixed(0) + "," + y.toFixed(0);
    const nth = (taken[spot] = (taken[spot] || 0) + 1) - 1;
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", 4);
    // after the reveal: green where a finding names a planted unit, red where none does
    c.setAttribute("fill", r.correct === null || r.correct === undefined ? "#2563eb" : r.correct > 0 ? "#16a34a" : "#dc2626");
    const tip = document.createElementNS(ns, "title"); tip.textContent = r.name + ": " + r.findings + " findings, " + r.passes + " passes"; c.appendChild(tip);
    svg.appendChild(c); text(x + 6, y + 3 + 11 * nth, r.name);
  }
  return svg;
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
      root.appendChild(sbTable("truth", ["what", "value"], Object.entries(truth).map(([k, v]) =>
        exEl("tr", {}, [exEl("td", { text: k }), exEl("td", { text: typeof v === "string" ? v : JSON.stringify(v), attrs: { "data-testid": "truth-value", "data-key": k } })]))));
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
  };
  return exMount(model, el, "sb-root", "session-board", draw);
}


export default { initialize: exInitialize, render };
