// AttentionView: head grid (thumbnail + scores) and the selected head's pattern.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  let shownKind = null; // the score written under each thumbnail (front-end choice only)

  function draw(root) {
    const nL = model.get("n_layers"), nH = model.get("n_heads");
    const layer = model.get("layer"), head = model.get("head");
    const kinds = model.get("score_names") || [];
    const scores = exDecode(model.get("scores"));
    const score = (k, l, h) => (scores.size ? scores.values[(k * nL + l) * nH + h] : NaN);
    if (shownKind === null || !kinds.includes(shownKind)) shownKind = kinds.includes("induction") ? "induction" : kinds[0];
    const tokens = model.get("tokens") || [];

    // ---- header (a new prompt is a forward pass: a "set" request, in the background with
    // Cancel; a head or a window only slices the cached patterns and is set directly)
    const header = exEl("div", { cls: "ex-row" });
    header.appendChild(exEl("div", { cls: "ex-title", text: "Attention heads" }));
    if (model.get("n_prompts") > 1) {
      const prompts = Array.from({ length: model.get("n_prompts") }, (_, i) => ({ value: i, text: "prompt " + i }));
      header.appendChild(exSelect(prompts, model.get("prompt"), (i) => exSet(model, { prompt: i }), { testid: "prompt-select" }));
    }
    if (kinds.length) {
      const options = kinds.map((k) => ({ value: k, text: "score: " + k }));
      header.appendChild(exSelect(options, shownKind, (k) => { shownKind = k; redraw(); }, { testid: "kind-select" }));
    }
    root.appendChild(header);

    const body = exEl("div", { cls: "ex-row" });
    root.appendChild(body);
    // ---- head grid
    const gridBox = exEl("div", { cls: "ex-col" });
    const grid = exEl("div", { cls: "ex-head-grid", style: { gridTemplateColumns: "auto repeat(" + nH + ", auto)" } });
    const thumbs = exDecode(model.get("thumbnails"));
    const t = thumbs.shape.length === 4 ? thumbs.shape[2] : 0, tc = thumbs.shape.length === 4 ? thumbs.shape[3] : 0;
    const kIndex = kinds.indexOf(shownKind);
    grid.appendChild(exEl("div"));
    for (let h = 0; h < nH; h++) grid.appendChild(exEl("div", { cls: "ex-muted", text: "H" + h, style: { textAlign: "center" } }));
    for (let l = 0; l < nL; l++) {
      grid.appendChild(exEl("div", { cls: "ex-muted", text: "L" + l, style: { alignSelf: "center" } }));
      for (let h = 0; h < nH; h++) {
        const canvas = exEl("canvas");
        if (t) {
          const off = (l * nH + h) * t * tc;
          exDrawHeatmap(canvas, thumbs.values.subarray(off, off + t * tc), t, tc, { vmin: 0, vmax: 1, cellW: 2 });
        }
        const s = kIndex >= 0 ? score(kIndex, l, h) : NaN;
        const title = "head " + l + "." + h + "\n" + kinds.map((k, i) => k + ": " + exFmt(score(i, l, h))).join("\n");
        const cell = exEl("button", {
          cls: "ex-head-cell" + (l === layer && h === head ? " ex-selected" : ""),
          title,
          attrs: { "data-testid": "head-" + l + "-" + h, "data-layer": l, "data-head": h, "data-score": s },
          onclick: () => exSend(model, { layer: l, head: h }),
        }, [canvas, exEl("span", {
          cls: "ex-num", text: kIndex >= 0 ? exFmt(s, 2) : l + "." + h,
          // the score's colour on the fixed 0..1 scale of the legend below the grid
          style: kIndex >= 0 && Number.isFinite(s) ? { background: exColour(exSequential(s)), color: s > 0.6 ? "#fff" : "#111", padding: "0 2px" } : {},
        })]);
        grid.appendChild(cell);
      }
    }
    gridBox.appendChild(grid);
    const scale = (model.get("score_scales") || [])[kIndex];
    if (scale) gridBox.appendChild(exScaleLegend(scale, false, { testid: "score-legend" }));
    if (model.get("score_note")) gridBox.appendChild(exEl("div", { cls: "ex-muted", text: model.get("score_note") }));
    body.appendChild(gridBox);

    // ---- selected head
    const panel = exEl("div", { cls: "ex-col" });
    panel.appendChild(exEl("div", { cls: "ex-title", text: "head " + layer + "." + head, attrs: { "data-testid": "selected-head" } }));
    const table = exEl("table", { cls: "ex-table" });
    kinds.forEach((k, i) => {
      const row = exEl("tr", {}, [exEl("th", { text: k }), exEl("td", {}, [exNumber(score(i, layer, head), "score-" + k)])]);
      table.appendChild(row);
    });
    panel.appendChild(table);
    const pat = exDecode(model.get("pattern"));
    const [start, stop] = model.get("pattern_rows") || [0, 0];
    if (pat.shape.length === 2 && pat.size) {
      const rows = pat.shape[0], cols = pat.shape[1];
      let maxV = -Infinity, maxR = 0, maxC = 0;
      // the first query can only attend to itself: leave it out of "strongest"
      for (let i = start === 0 && rows > 1 ? cols : 0; i < pat.size; i++) if (pat.values[i] > maxV) { maxV = pat.values[i]; maxR = Math.floor(i / cols); maxC = i % cols; }
      const raw = (i) => (i < tokens.length ? tokens[i] : String(i));
      const label = (i) => exTokenLabel(model, raw(i));
      const hm = exHeatmapView({
        values: pat.values, rows, cols, vmin: 0, vmax: 1, testid: "pattern",
        cell: Math.max(3, Math.min(16, Math.floor(480 / Math.max(rows, cols)))),
        rowLabels: Array.from({ length: rows }, (_, r) => label(start + r)),
        colLabels: Array.from({ length: cols }, (_, c) => label(c)),
        sameAxes: true, rowOffset: start,  // the same positions labelled down and across
        hoverText: (r, c, v) => "query " + (start + r) + " " + JSON.stringify(raw(start + r)) + " → key " + c + " " + JSON.stringify(raw(c)) + "\nattention " + exFmt(v, 4),
      });
      hm.canvas.setAttribute("data-row-start", start);
      panel.appendChild(hm.node);
      panel.appendChild(exEl("div", { cls: "ex-muted" }, [
        exEl("span", { text: "rows = queries, columns = keys · strongest: query " + (start + maxR) + " → key " + maxC + " = " }),
        exNumber(maxV, "pattern-max", 4),
      ]));
      panel.appendChild(exLegend(0, 1, false, "attention", { meaning: ["none", "all of the query's attention"] }));
    }
    const note = model.get("window_note");
    if (note) {
      const n = tokens.length, w = model.get("window");
      const bar = exEl("div", { cls: "ex-row" }, [
        exEl("span", { cls: "ex-note", text: note, attrs: { "data-testid": "window-note" } }),
        exEl("button", { cls: "ex-button", text: "◀ earlier", attrs: { "data-testid": "window-earlier" }, onclick: () => exSend(model, { query_start: Math.max(0, start - w) }) }),
        exEl("button", { cls: "ex-button", text: "later ▶", attrs: { "data-testid": "window-later" }, onclick: () => exSend(model, { query_start: Math.min(n - w, start + w) }) }),
      ]);
      panel.appendChild(bar);
    }
    body.appendChild(panel);
  }

  let body = null;
  const redraw = () => { body.replaceChildren(); draw(body); };
  const cleanup = exMount(model, el, "ex-attention", "attention-view", (b) => { body = b; draw(b); });
  return cleanup;
}

export default { initialize: exInitialize, render };
