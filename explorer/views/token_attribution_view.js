// TokenAttributionView: each prompt as coloured tokens (blue raises the logit, red lowers it).
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function draw(root) {
    const input = (name, label) => {
      const box = exEl("input", { cls: "ex-input", attrs: { "data-testid": name + "-input", value: model.get(name), placeholder: label } });
      box.addEventListener("change", () => exSet(model, { [name]: box.value }));
      return box;
    };
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "Token attribution (integrated gradients)" }),
      exEl("span", { cls: "ex-muted", text: "target" }), input("target", "token"),
      exEl("span", { cls: "ex-muted", text: "minus" }), input("against", "(none)"),
    ]));
    root.appendChild(exEl("div", { cls: "ex-muted", text: model.get("direction") + " at position " + model.get("target_position") + ", " + model.get("n_steps") + " steps", attrs: { "data-testid": "direction" } }));
    const s = exDecode(model.get("scores"));
    if (s.shape.length !== 2 || !s.size) return;
    const [n, pos] = s.shape;
    const m = Math.max(...Array.from(s.values).map(Math.abs), 1e-12);
    const tokens = model.get("tokens") || [], delta = model.get("delta") || [];
    const value = model.get("value") || [], base = model.get("baseline_value") || [];
    const selP = model.get("prompt"), selT = model.get("position");
    for (let b = 0; b < n; b++) {
      const spans = (tokens[b] || []).map((t, p) => {
        const x = s.values[b * pos + p];
        const shade = x / m;
        return exToken(model, t, {
          cls: b === selP && p === selT ? "ex-max" : "",
          title: "position " + p + "\nscore " + exFmt(x, 4),
          style: { background: exColour(exDiverging(shade)), color: Math.abs(shade) > 0.6 ? "#fff" : "#111", cursor: "pointer" },
          attrs: { "data-testid": "token-" + b + "-" + p, "data-value": x },
          onclick: () => exSend(model, { prompt: b, position: p }),
        });
      });
      root.appendChild(exEl("div", { cls: "ex-example" }, [
        exEl("div", { cls: "ex-tokens", attrs: { "data-testid": "prompt-" + b } }, spans),
        exEl("span", { cls: "ex-muted", text: "f " + exFmt(value[b], 3) + " (baseline " + exFmt(base[b], 3) + "), delta " + exFmt(delta[b], 4) }),
      ]));
    }
    root.appendChild(exLegend(-m, m, true, "attribution to the explained logit", { meaning: ["lowers the logit", "raises it"] }));
    if (selP < n && selT < pos) {
      root.appendChild(exEl("div", { text: "selected " + exTokenLabel(model, (tokens[selP] || [])[selT]) + " (prompt " + selP + ", position " + selT + "): score ", attrs: { "data-testid": "selected-token" } }, [exNumber(s.values[selP * pos + selT], "selected-score", 4)]));
    }
  }
  return exMount(model, el, "ex-token-attribution", "token-attribution-view", draw);
}

export default { initialize: exInitialize, render };
