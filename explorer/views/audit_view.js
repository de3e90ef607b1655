// AuditView: per-class mask images beside the anomaly bar chart; a click on a class shows
// its reconstructed trigger, its success rate and stamped examples; a forward-pass meter.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  // grey image: ink (1) dark on white, as the digits are drawn everywhere else
  function greyCanvas(values, offset, h, w, opts = {}) {
    const canvas = exEl("canvas", { attrs: opts.testid ? { "data-testid": opts.testid } : {} });
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const v = Math.min(1, Math.max(0, values[offset + i]));
      const alpha = opts.alpha ? Math.min(1, Math.max(0, opts.alpha[offset + i - (opts.alphaShift || 0)])) : 1;
      let rgb;
      if ((opts.alpha && alpha < 0.05) || (opts.heat && v < 0.02)) rgb = ((i % w) + Math.floor(i / w)) % 2 ? [236, 240, 245] : [248, 250, 252]; // outside the mask (or no mask): a pale checker
      else if (opts.heat) rgb = exSequential(v);
      else rgb = [0, 0, 0].map(() => Math.round(255 * (1 - v)));
      img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    if (opts.box && opts.box[2] > 0) {
      // the box is drawn at full resolution on a 4x canvas so its outline stays thin
      const big = exEl("canvas", { attrs: opts.testid ? { "data-testid": opts.testid } : {} });
      big.width = w * 4; big.height = h * 4;
      const bctx = big.getContext("2d");
      bctx.imageSmoothingEnabled = false;
      bctx.drawImage(canvas, 0, 0, big.width, big.height);
      bctx.strokeStyle = "#f59e0b"; bctx.lineWidth = 2;
      const [t, l, bh, bw] = opts.box;
      bctx.strokeRect(l * 4 + 1, t * 4 + 1, bw * 4 - 2, bh * 4 - 2);
      return big;
    }
    return canvas;
  }

  function meter(root) {
    const a = model.get("audit_spent") || {};
    const budget = a.budget > 0 ? a.budget : null;
    const share = budget ? Math.min(1, a.forward / budget) : 1;
    const bar = exEl("div", { cls: "ex-meter-bar", attrs: { "data-testid": "budget-bar", "data-share": share } }, [
      exEl("div", { cls: "ex-meter-fill", style: { width: Math.round(100 * share) + "%" } }),
    ]);
    const fmt = (x) => (x ?? 0).toLocaleString("en");
    root.appendChild(exEl("div", { cls: "ex-meter", attrs: { "data-testid": "budget-meter" } }, [
      exEl("span", { cls: "ex-title", text: "budget" }), bar,
      exEl("span", { attrs: { "data-testid": "audit-spent", "data-value": a.forward }, text: fmt(a.forward) + (budget ? " of " + fmt(budget) : "") + " forward passes by the audit (" + fmt(a.backward) + " backward, " + fmt(a.examples) + " examples)" }),
    ]));
  }

  // how far the selected trigger can move and still work: measured on request (26 passes)
  function placeNode(sel) {
    if (!model.get("movable")) return exEl("span", { cls: "ex-muted", attrs: { "data-testid": "place" }, text: "a whole-image pattern: no place to move" });
    const words = model.get("place"), grid = model.get("place_success") || [];
    if (!words) {
      return exEl("button", { cls: "ex-button", text: "how far can it move? (26 passes)", attrs: { "data-testid": "place-measure" }, onclick: (e) => {
        e.target.disabled = true;
        exRequest(model, "_page_place", {});
      } });
    }
    const reach = (grid.length - 1) / 2;
    const cells = exEl("div", { cls: "ex-audit-place", attrs: { "data-testid": "place-grid" }, style: { gridTemplateColumns: "repeat(" + grid.length + ", 14px)" } });
    grid.forEach((row, i) => row.forEach((v, j) => cells.appendChild(exEl("span", {
      cls: (v >= 0.9 ? "ex-place-works" : "ex-place-fails") + (i === reach && j === reach ? " ex-place-found" : ""),
      style: { opacity: String(0.25 + 0.75 * v) },
      attrs: { title: "moved " + (i - reach) + " rows, " + (j - reach) + " columns: " + Math.round(100 * v) + "% sent to " + sel },
    }))));
    return exEl("div", { cls: "ex-col", style: { textAlign: "left", maxWidth: "240px" } }, [
      exEl("span", { attrs: { "data-testid": "place" }, text: words.replace(/^class \d+: /, "") }),
      cells,
      exEl("span", { cls: "ex-muted", text: "moved −" + reach + "…+" + reach + " px (rows down, columns across); green: works on ≥ 90%; outlined: where found" }),
    ]);
  }

  function draw(root) {
    const n = model.get("n_classes"), sel = model.get("selected"), flagged = model.get("flagged") || [];
    const suspicious = model.get("suspicious") || [], shapes = model.get("shapes") || [];
    const tier = model.get("verdict") || (flagged.length ? "flagged" : "clean");
    const pick = (c) => { if (c !== model.get("selected")) exSet(model, { selected: c }); };
    const named = flagged.length ? flagged : suspicious;
    const verdict = tier === "clean" ? "clean: no class flagged" : tier + ": class " + named.join(", ");
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "Audit of " + model.get("model_name") + " (" + model.get("method") + ")" }),
      exEl("span", { cls: "ex-verdict ex-verdict-" + tier, text: verdict, attrs: { "data-testid": "verdict", "data-tier": tier } }),
    ]));
    root.appendChild(exEl("div", { cls: "ex-muted", attrs: { "data-testid": "evidence" }, text: model.get("evidence") || "" }));
    meter(root);

    const masks = exDecode(model.get("masks")), anomaly = exDecode(model.get("anomaly")), success = exDecode(model.get("success"));
    const boxes = model.get("boxes") || [];
    const top = exEl("div", { cls: "ex-row" });
    root.appendChild(top);
    // ---- per-class masks
    const grid = exEl("div", { cls: "ex-audit-grid", attrs: { "data-testid": "mask-grid" } });
    if (masks.shape.length === 3) {
      const [k, h, w] = masks.shape;
      for (let c = 0; c < k; c++) {
        const cell = exEl("button", {
          cls: "ex-head-cell" + (c === sel ? " ex-selected" : "") + (flagged.includes(c) ? " ex-flagged" : "") + (suspicious.includes(c) ? " ex-suspicious" : ""),
          attrs: { "data-class": c, "data-testid": "mask-" + c, title: "class " + c + ": anomaly " + exFmt(anomaly.values[c], 2) + ", success " + Math.round(100 * success.values[c]) + "%" + (shapes[c] ? ", " + shapes[c] : "") },
          onclick: () => pick(c),
        }, [greyCanvas(masks.values, c * h * w, h, w, { heat: true }), exEl("span", { text: "class " + c + (flagged.includes(c) ? " ⚑" : suspicious.includes(c) ? " ?" : "") })]);
        grid.appendChild(cell);
      }
    }
    top.appendChild(exEl("div", { cls: "ex-col" }, [exEl("div", { cls: "ex-title", text: "reconstructed mask per class" }), grid,
      exLegend(0, 1, false, "mask weight (checker: outside the mask)", { meaning: ["pixel not used", "pixel the trigger uses"] }),
      exEl("span", { cls: "ex-muted", text: "click a class" })]));
    // ---- anomaly bars, flagged classes red, the threshold drawn
    const values = Array.from(anomaly.values);
    const thr = model.get("threshold");
    const colours = values.map((_, c) => (flagged.includes(c) ? "#dc2626" : suspicious.includes(c) ? "#f59e0b" : "#94a3b8"));
    const width = Math.max(200, 32 * n);
    const chart = exBarChart(values, { width, height: 120, testid: "anomaly", yLabel: "anomaly", xLabel: "class", colours, rule: thr });
    const bars = chart.querySelector('[data-testid="anomaly"]');
    const bctx = bars.getContext("2d");
    bctx.strokeStyle = "#f59e0b"; bctx.lineWidth = 2;
    bctx.strokeRect(sel * width / n + 1, 1, width / n - 2, bars.height - 2);  // the selected class
    bars.style.cursor = "pointer";
    bars.addEventListener("click", (e) => {
      const rect = bars.getBoundingClientRect();
      const c = Math.floor((e.clientX - rect.left) / rect.width * n);
      if (c >= 0 && c < n) pick(c);
    });
    const labels = exEl("div", { cls: "ex-audit-labels", style: { width: width + "px" } });
    for (let c = 0; c < n; c++) labels.appendChild(exEl("span", { text: String(c), style: { width: (width / n) + "px" } }));
    top.appendChild(exEl("div", { cls: "ex-col" }, [
      exEl("div", { cls: "ex-title", text: "anomaly per class" }), chart, labels,
      exEl("span", { cls: "ex-muted", style: { maxWidth: (width + 60) + "px" }, attrs: { "data-testid": "rule" }, text: model.get("rule") }),
    ]));

    // ---- the selected class: trigger, numbers, stamped examples
    const detail = exEl("div", { cls: "ex-col ex-audit-detail", attrs: { "data-testid": "detail", "data-class": sel } });
    root.appendChild(detail);
    detail.appendChild(exEl("div", { cls: "ex-title", attrs: { "data-testid": "detail-title" }, text: "class " + sel + (flagged.includes(sel) ? ": flagged" : suspicious.includes(sel) ? ": suspicious" : ": not flagged") }));
    const pattern = exDecode(model.get("pattern"));
    const row = exEl("div", { cls: "ex-row" });
    detail.appendChild(row);
    if (masks.shape.length === 3 && pattern.shape.length === 2) {
      const [, h, w] = masks.shape;
      const maskImg = greyCanvas(masks.values, sel * h * w, h, w, { heat: true, box: boxes[sel], testid: "selected-mask" });
      const trig = greyCanvas(pattern.values, 0, h, w, { alpha: masks.values, alphaShift: -sel * h * w, testid: "trigger" });
      for (const [c, title] of [[maskImg, "mask (box in amber)"], [trig, "trigger: pattern inside the mask"]]) {
        c.classList.add("ex-audit-big");
        row.appendChild(exEl("div", { cls: "ex-image" }, [c, exEl("span", { cls: "ex-muted", text: title })]));
      }
    }
    const box = boxes[sel] || [0, 0, 0, 0];
    const facts = exEl("table", { cls: "ex-table", attrs: { "data-testid": "facts" } });
    const fact = (name, node) => facts.appendChild(exEl("tr", {}, [exEl("th", { text: name }), exEl("td", {}, [node])]));
    // a trigger found to fire on one source class was measured, and is stamped, on its digits
    const src = (model.get("sources") || [])[sel];
    const heldOut = src !== undefined && src >= 0 ? "held-out " + src + "s (its source class)" : "held-out images";
    fact("success on " + heldOut, exEl("span", { cls: "ex-num", text: Math.round(100 * success.values[sel]) + "%", attrs: { "data-testid": "success", "data-value": success.values[sel] } }));
    fact("anomaly", exNumber(anomaly.values[sel], "anomaly-value", 2));
    fact("box (top, left, h, w)", exEl("span", { text: "(" + box.join(", ") + ")", attrs: { "data-testid": "box" } }));
    fact("shape", exEl("span", { text: shapes[sel] || "", attrs: { "data-testid": "shape" } }));
    const after = model.get("after") || [], before = model.get("before") || [];
    const hits = after.filter((p) => p === sel).length;
    fact("stamped examples sent to " + sel, exEl("span", { cls: "ex-num", text: hits + " of " + after.length, attrs: { "data-testid": "stamped-success", "data-value": model.get("stamped_success") } }));
    fact("place", placeNode(sel));
    row.appendChild(facts);

    const imgs = exDecode(model.get("images")), stamped = exDecode(model.get("stamped"));
    const examples = exEl("div", { cls: "ex-images", attrs: { "data-testid": "stamped-examples" } });
    if (stamped.shape.length === 3) {
      const [k, h, w] = stamped.shape;
      for (let i = 0; i < k; i++) {
        const sent = after[i] === sel;
        examples.appendChild(exEl("div", { cls: "ex-audit-pair", attrs: { "data-testid": "pair-" + i } }, [
          exEl("div", { cls: "ex-image" }, [greyCanvas(imgs.values, i * h * w, h, w), exEl("span", { text: "pred " + before[i] })]),
          exEl("span", { cls: "ex-muted", text: "→" }),
          exEl("div", { cls: "ex-image" }, [greyCanvas(stamped.values, i * h * w, h, w), exEl("span", { cls: sent ? "ex-hit" : "ex-miss", text: "pred " + after[i], attrs: { "data-testid": "after-" + i } })]),
        ]));
      }
    }
    detail.appendChild(exEl("div", { cls: "ex-title", attrs: { "data-testid": "examples-title" }, text: heldOut + ", before → after the stamp" }));
    detail.appendChild(examples);
  }

  return exMount(model, el, "ex-audit", "audit-view", draw);
}

export default { initialize: exInitialize, render };
