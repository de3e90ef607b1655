// LogitLensView: rows = lens rows (layers), columns = positions; each cell's top token,
// coloured by the target's rank there. A click selects the cell and lists its top-k.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function draw(root) {
    const input = exEl("input", { cls: "ex-input", attrs: { "data-testid": "target-input", value: model.get("target"), placeholder: "model's answer" } });
    // a new target is a lens pass (background, Cancel); prompt, window and cell only slice it
    input.addEventListener("change", () => exSet(model, { target: input.value }));
    const header = exEl("div", { cls: "ex-row" }, [exEl("div", { cls: "ex-title", text: "Logit lens" }), exEl("span", { cls: "ex-muted", text: "target" }), input]);
    if (model.get("n_prompts") > 1) {
      const prompts = Array.from({ length: model.get("n_prompts") }, (_, i) => ({ value: i, text: "prompt " + i }));
      header.appendChild(exSelect(prompts, model.get("prompt"), (i) => exSend(model, { prompt: i }), { testid: "prompt-select" }));
    }
    const start = model.get("position_start"), n = model.get("n_positions"), win = model.get("window");
    if (n > win) {
      const step = (to) => exSend(model, { position_start: Math.max(0, Math.min(n - 1, to)) });
      header.appendChild(exEl("span", { cls: "ex-muted", text: "positions " + start + "–" + (Math.min(n, start + win) - 1) + " of " + n, attrs: { "data-testid": "window" } }));
      header.appendChild(exEl("button", { cls: "ex-button", text: "◀", attrs: { "data-testid": "window-prev" }, onclick: () => step(start - win) }));
      header.appendChild(exEl("button", { cls: "ex-button", text: "▶", attrs: { "data-testid": "window-next" }, onclick: () => step(start + win) }));
    }
    root.appendChild(header);
    const rank = exDecode(model.get("target_rank")), logits = exDecode(model.get("top_logits"));
    const tlogit = exDecode(model.get("target_logit"));
    if (rank.shape.length !== 2 || !rank.size) return;
    const [rows, cols] = rank.shape, k = logits.shape[2];
    const top = model.get("top_tokens") || [], tokens = model.get("tokens") || [], targets = model.get("target_tokens") || [];
    const labels = model.get("row_labels") || [];
    const selRow = model.get("row"), selPos = model.get("position");
    const table = exEl("table", { cls: "ex-lens", attrs: { "data-testid": "lens-grid" } });
    const head = exEl("tr", {}, [exEl("th")]);
    const lbl = (t) => exTokenLabel(model, t ?? "");
    tokens.forEach((t, p) => head.appendChild(exEl("th", { text: lbl(t), title: exTokenTitle(t, "position " + (start + p) + "\ntarget " + JSON.stringify(targets[p] ?? "")) })));
    table.appendChild(head);
    for (let r = rows - 1; r >= 0; r--) {
      const tr = exEl("tr", {}, [exEl("th", { text: labels[r] })]);
      for (let p = 0; p < cols; p++) {
        const rk = rank.values[r * cols + p];
        const shade = 1 / (1 + Math.log2(1 + rk));
        const word = top[(r * cols + p) * k];
        const td = exEl("td", {
          cls: "ex-lens-cell" + (r === selRow && start + p === selPos ? " ex-selected" : ""), text: lbl(word),
          title: labels[r] + " @ " + (start + p) + "\ntop: " + top.slice((r * cols + p) * k, (r * cols + p + 1) * k).map((t) => JSON.stringify(t)).join(" | ") + "\ntarget " + JSON.stringify(targets[p] ?? "") + " rank " + rk + ", logit " + exFmt(tlogit.values[r * cols + p]),
          style: { background: exColour(exSequential(shade)), color: shade > 0.6 ? "#fff" : "#111" },
          attrs: { "data-row": r, "data-pos": start + p },
          onclick: () => exSend(model, { row: r, position: start + p }),
        });
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    root.appendChild(exEl("div", { style: { overflowX: "auto", maxWidth: "100%" } }, [table]));
    root.appendChild(exLegend(0, 1, false, "1 / (1 + log2(1 + rank of the target))", { meaning: ["target ranked low", "target is the top-1 token (better)"] }));
    const at = selPos - start;
    if (selRow < rows && at >= 0 && at < cols) {
      const off = (selRow * cols + at) * k;
      const list = exEl("table", { cls: "ex-table", attrs: { "data-testid": "selected-top" } });
      for (let i = 0; i < k; i++) list.appendChild(exEl("tr", {}, [exEl("td", { text: lbl(top[off + i]), title: exTokenTitle(top[off + i]) }), exEl("td", { text: exFmt(logits.values[off + i], 3) })]));
      root.appendChild(exEl("div", { cls: "ex-row" }, [
        exEl("div", { text: "selected " + labels[selRow] + " at position " + selPos + " (" + lbl(tokens[at]) + "): target " + lbl(targets[at]) + " rank " + rank.values[selRow * cols + at], attrs: { "data-testid": "selected-cell" } }),
        list,
      ]));
    }
  }
  return exMount(model, el, "ex-logit-lens", "logit-lens-view", draw);
}

export default { initialize: exInitialize, render };
