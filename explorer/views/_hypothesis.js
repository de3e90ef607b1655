// Helpers shared by HypothesisWidget and HypothesisBoard (prepended to both modules): status
// badges, form fields and a verdict with its interval. Every string from users or the store
// reaches the page through textContent (exEl's text) or an input's value, never innerHTML.

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
  // the cutoff a supported claim must beat: the random sets' 95th percentile (else the baseline)
  const cut = v.baseline_p95 !== null && v.baseline_p95 !== undefined ? v.baseline_p95 : v.baseline;
  if (cut !== null && cut !== undefined) pts.push(cut);
  let lo = Math.min(...pts), hi = Math.max(...pts);
  const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 0.1;
  lo -= pad; hi += pad;
  const at = (x) => (100 * (x - lo) / (hi - lo)).toFixed(2) + "%";
  const bar = exEl("div", { cls: "hv-axis", attrs: { "data-testid": "interval" } });
  bar.appendChild(exEl("div", { cls: "hv-ci hv-" + v.status, style: { left: at(v.ci_low), width: "calc(" + at(v.ci_high) + " - " + at(v.ci_low) + ")" } }));
  bar.appendChild(exEl("div", { cls: "hv-mark hv-value", title: "value " + exFmt(v.value, 4), style: { left: at(v.value) } }));
  bar.appendChild(exEl("div", { cls: "hv-mark hv-threshold", title: "threshold " + exFmt(v.threshold, 4), style: { left: at(v.threshold) } }));
  if (cut !== null && cut !== undefined) {
    bar.appendChild(exEl("div", { cls: "hv-mark hv-baseline", title: "baseline cutoff " + exFmt(cut, 4), style: { left: at(cut) } }));
  }
  const legend = exEl("div", { cls: "ex-muted hv-legend", text: "bar: " + Math.round(100 * v.confidence) + "% interval · black: value · red: threshold · grey: baseline cutoff (the random sets' 95th pct, 5th for a claim below)" });
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
    ["baseline", v.baseline === null || v.baseline === undefined ? "none (" + v.baseline_source + ")" : (v.baseline_n_sets ? (v.direction === "above" ? "95th" : "5th") + " pct " + exFmt(v.baseline_p95, 4) + ", mean " + exFmt(v.baseline, 4) : exFmt(v.baseline, 4)) + " (" + v.baseline_source + ")" + (v.beats_baseline === true ? ": beaten" : v.beats_baseline === false ? ": not beaten" : "")],
    ["rule", v.rule || ""],
    ["held-out", v.split],
    ["model", v.model_name + " @" + v.model_fingerprint],
    ["when", v.timestamp],
  ];
  if (v.note) rows.unshift(["why", v.note]);
  for (const [k, val] of Object.entries(v.details || {})) rows.push([k, exFmt(val, 4)]);
  const table = exEl("table", { cls: "ex-table hv-details" });
  for (const [k, val] of rows) table.appendChild(exEl("tr", {}, [exEl("th", { text: k }), exEl("td", { text: val })]));
  box.appendChild(table);
  return box;
}

