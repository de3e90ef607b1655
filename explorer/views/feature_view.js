// FeatureView: one SAE feature: top contexts coloured per token, density histogram,
// promoted / suppressed tokens, and a steer / ablate control with its effect on a metric.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function tokenColour(v, scale) {
    const t = scale > 0 ? v / scale : 0;
    return exColour(exDiverging(Math.max(-1, Math.min(1, t))));
  }

  function tokenTable(parent, title, tokens, payload, testid, colour) {
    const vals = exDecode(model.get(payload));
    const toks = model.get(tokens) || [];
    if (!vals.size) return;
    parent.appendChild(exEl("div", { cls: "ex-title", text: title }));
    const table = exEl("table", { cls: "ex-table", attrs: { "data-testid": testid } });
    const maxAbs = Math.max(1e-12, ...Array.from(vals.values, Math.abs));
    for (let i = 0; i < vals.size; i++) {
      const bar = exEl("div", { style: { width: Math.round(80 * Math.abs(vals.values[i]) / maxAbs) + "px", height: "8px", background: colour } });
      table.appendChild(exEl("tr", {}, [exEl("th", { text: exTokenLabel(model, toks[i]), title: exTokenTitle(toks[i]) }), exEl("td", {}, [exNumber(vals.values[i], testid + "-" + i)]), exEl("td", {}, [bar])]));
    }
    parent.appendChild(table);
  }

  function steerControl(parent) {
    parent.appendChild(exEl("div", { cls: "ex-title", text: "steer or ablate this feature" }));
    const mode = exSelect(["add", "clamp", "zero"].map((m) => ({ value: m, text: m === "zero" ? "ablate (zero)" : m })), model.get("steer_mode"), () => {}, { testid: "steer-mode" });
    const amount = exEl("input", { cls: "ex-input", attrs: { type: "number", step: "any", value: model.get("steer_amount"), "data-testid": "steer-amount" } });
    const apply = exEl("button", { cls: "ex-button", text: "run", attrs: { "data-testid": "steer-run" }, onclick: () => {
      exRequest(model, "_page_steer", { mode: mode.value, amount: parseFloat(amount.value) || 0 });
    } });
    parent.appendChild(exEl("div", { cls: "ex-row" }, [mode, amount, apply]));
    const r = model.get("steer_result") || {};
    if (r.metric !== undefined) {
      const what = r.mode === "zero" ? "ablated" : (r.mode === "add" ? "+" + exFmt(r.amount, 3) : "clamped to " + exFmt(r.amount, 3));
      parent.appendChild(exEl("div", { cls: "ex-muted", attrs: { "data-testid": "steer-effect" }, text:
        "feature " + r.feature + " " + what + " on " + r.examples + " inputs: " + r.metric + " " + exFmt(r.before, 4) + " → " + exFmt(r.after, 4) + " (change " + exFmt(r.change, 3) + ")" }));
    }
  }

  function draw(root) {
    const d = model.get("d_sae"), f = model.get("feature");
    const pick = (v) => { if (Number.isInteger(v) && v >= 0 && v < d && v !== f) exSet(model, { feature: v }); };
    const input = exEl("input", { cls: "ex-input", attrs: { type: "number", min: 0, max: d - 1, value: f, "data-testid": "feature-input" } });
    input.addEventListener("change", () => pick(parseInt(input.value, 10)));
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(parseInt(input.value, 10)); });
    const dead = model.get("dead_units") || [], dense = model.get("dense_units") || [];
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "feature " + f, attrs: { "data-testid": "selected-feature" } }),
      exEl("button", { cls: "ex-button", text: "◀", attrs: { "data-testid": "feature-prev" }, onclick: () => pick(Math.max(0, f - 1)) }),
      input,
      exEl("button", { cls: "ex-button", text: "▶", attrs: { "data-testid": "feature-next" }, onclick: () => pick(Math.min(d - 1, f + 1)) }),
      exEl("span", { cls: "ex-muted", text: "of " + d + " in " + model.get("sae_name") + ", over " + model.get("n_examples") + " examples" }),
      exEl("span", { cls: "ex-muted", attrs: { "data-testid": "density" }, text: "· active on " + exFmt(100 * model.get("density"), 3) + "% of tokens" }),
      exEl("span", { cls: "ex-muted", attrs: { "data-testid": "dead-dense" }, text: "· " + dead.length + " dead, " + dense.length + " dense features" }),
    ]));
    if (!model.get("fires")) {
      root.appendChild(exEl("div", { cls: "ex-note", attrs: { "data-testid": "dead-note" }, text: "feature " + f + " never fires on these examples (a dead feature): its contexts below are arbitrary ties at 0" }));
    } else if (dense.includes(f)) {
      root.appendChild(exEl("div", { cls: "ex-note", attrs: { "data-testid": "dense-note" }, text: "feature " + f + " is dense: active on more than 10% of tokens" }));
    }
    const body = exEl("div", { cls: "ex-row" });
    root.appendChild(body);
    const top = exDecode(model.get("top_values"));
    const ids = model.get("example_ids") || [];
    const left = exEl("div", { cls: "ex-col" }, [exEl("div", { cls: "ex-title", text: "top " + top.size + " contexts" })]);
    body.appendChild(left);
    const toks = model.get("example_tokens") || [];
    const acts = exDecode(model.get("example_acts"));
    const width = acts.shape[1] || 0;
    const starts = model.get("example_starts") || [];
    const positions = model.get("example_positions") || [];
    const scale = top.size ? Math.max(Math.abs(top.values[0]), 1e-6) : 1;
    toks.forEach((row, i) => {
      const line = exEl("div", { cls: "ex-tokens" });
      row.forEach((tok, j) => {
        const v = acts.values[i * width + j];
        line.appendChild(exToken(model, tok, {
          cls: starts[i] + j === positions[i] ? "ex-max" : "",
          title: "position " + (starts[i] + j) + ": " + exFmt(v, 4),
          style: { background: tokenColour(v, scale) },
        }));
      });
      left.appendChild(exEl("div", { cls: "ex-example", attrs: { "data-testid": "context-" + i } }, [exNumber(top.values[i], "top-value-" + i, 2), exEl("span", { cls: "ex-muted", text: "#" + ids[i] }), line]));
    });
    if (toks.length) left.appendChild(exLegend(-scale, scale, true, "feature activation at each token (the top context's value = full colour)", { meaning: ["negative", "positive: the feature fires"] }));
    exActivationHistogram(left, model, "activation density");
    const right = exEl("div", { cls: "ex-col", style: { maxWidth: "340px" } });
    body.appendChild(right);
    tokenTable(right, "promotes (W_dec · W_U)", "promoted_tokens", "promoted_values", "promoted", "#2563eb");
    tokenTable(right, "suppresses", "suppressed_tokens", "suppressed_values", "suppressed", "#dc2626");
    steerControl(right);
  }

  return exMount(model, el, "ex-feature", "feature-view", draw);
}

export default { initialize: exInitialize, render };
