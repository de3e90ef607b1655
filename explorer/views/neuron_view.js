// NeuronView: top examples (coloured tokens or images), histogram, effect on outputs.
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  function tokenColour(v, scale) {
    const t = scale > 0 ? v / scale : 0;
    return exColour(exDiverging(Math.max(-1, Math.min(1, t))));
  }

  function drawImage(values, offset, h, w, opts = {}) {
    const canvas = exEl("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    let scale = 1;
    if (opts.diverging) {
      scale = 1e-12;
      for (let i = 0; i < h * w; i++) scale = Math.max(scale, Math.abs(values[offset + i]));
    }
    for (let i = 0; i < h * w; i++) {
      const v = values[offset + i];
      const rgb = opts.diverging ? exDiverging(v / scale) : [v, v, v].map((x) => Math.round(255 * (1 - Math.min(1, Math.max(0, (x - opts.lo) / ((opts.hi - opts.lo) || 1))))));
      img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function draw(root) {
    const widths = model.get("widths") || [];
    const layer = model.get("layer"), neuron = model.get("neuron");
    // ---- header: layer / neuron pickers
    root.appendChild(exEl("div", { cls: "ex-row" }, [
      exEl("div", { cls: "ex-title", text: "neuron " + layer + "." + neuron, attrs: { "data-testid": "selected-neuron" } }),
      ...exNeuronPicker(widths, layer, neuron, (change) => exSet(model, change)),
      exEl("span", { cls: "ex-muted", text: "over " + model.get("n_examples") + " examples" }),
      (model.get("dead_units") || []).length ? exEl("span", { cls: "ex-muted", attrs: { "data-testid": "dead-count" }, text: "· " + model.get("dead_units").length + " of " + widths[layer] + " in this layer never fire" }) : null,
    ]));
    if (!model.get("fires")) {
      root.appendChild(exEl("div", { cls: "ex-note", attrs: { "data-testid": "dead-note" }, text: "neuron " + layer + "." + neuron + " never fires on these " + model.get("n_examples") + " examples (a dead unit): its top examples below are arbitrary ties at 0" }));
    }

    const body = exEl("div", { cls: "ex-row" });
    root.appendChild(body);
    const top = exDecode(model.get("top_values"));
    const ids = model.get("example_ids") || [];
    const left = exEl("div", { cls: "ex-col" }, [exEl("div", { cls: "ex-title", text: "top " + top.size + " examples" })]);
    body.appendChild(left);
    if (model.get("input_kind") === "tokens") {
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
          const isMax = starts[i] + j === positions[i];
          line.appendChild(exToken(model, tok, {
            cls: isMax ? "ex-max" : "",
            title: "position " + (starts[i] + j) + ": " + exFmt(v, 4),
            style: { background: tokenColour(v, scale) },
          }));
        });
        left.appendChild(exEl("div", { cls: "ex-example" }, [
          exNumber(top.values[i], "top-value-" + i, 2),
          exEl("span", { cls: "ex-muted", text: "#" + ids[i] }),
          line,
        ]));
      });
      if (toks.length) left.appendChild(exLegend(-scale, scale, true, "activation at each token (the top example's value = full colour)", { meaning: ["negative", "positive: the neuron fires"] }));
    } else {
      const imgs = exDecode(model.get("top_images"));
      const row = exEl("div", { cls: "ex-images" });
      if (imgs.shape.length >= 3) {
        const [k, h, w] = imgs.shape;
        const lo = model.get("top_images").lo ?? 0, hi = model.get("top_images").hi ?? 1;
        for (let i = 0; i < k; i++) {
          row.appendChild(exEl("div", { cls: "ex-image" }, [
            drawImage(imgs.values, i * h * w, h, w, { lo, hi }),
            exNumber(top.values[i], "top-value-" + i, 2),
            exEl("span", { cls: "ex-muted", text: "#" + ids[i] }),
          ]));
        }
      }
      left.appendChild(row);
      const wimg = exDecode(model.get("weight_image"));
      if (wimg.shape.length === 2) {
        const [h, w] = wimg.shape;
        const canvas = drawImage(wimg.values, 0, h, w, { diverging: true });
        canvas.style.width = "84px"; canvas.style.height = "84px";
        left.appendChild(exEl("div", { cls: "ex-row", style: { alignItems: "center", gap: "8px" } }, [
          exEl("div", { cls: "ex-image", attrs: { "data-testid": "weight-image" } }, [canvas]),
          exEl("div", { cls: "ex-col" }, [
            exEl("div", { cls: "ex-title", text: "input weights" }),
            exEl("span", { cls: "ex-muted", text: "blue: the pixel raises the neuron" }),
            exEl("span", { cls: "ex-muted", text: "red: it lowers it" }),
          ]),
        ]));
      }
    }

    // ---- histogram, under the examples (the effect tables fill the column beside them)
    exActivationHistogram(left, model, "activation histogram");
    // a narrow column (long titles wrap) so that it stays beside the examples
    const right = exEl("div", { cls: "ex-col", style: { maxWidth: "340px" } });
    body.appendChild(right);
    // ---- what the neuron writes to, and (vision) its effect on the class outputs
    effectTable(right, "effect_title", "effect_labels", "effect_values", "effect");
    effectTable(right, "ablation_title", "ablation_labels", "ablation_values", "ablation");
  }

  // A ranked table of signed values with bars: blue raises the output, red lowers it.
  function effectTable(parent, titleName, labelsName, valuesName, testid) {
    const eff = exDecode(model.get(valuesName));
    const labels = model.get(labelsName) || [];
    if (!eff.size) return;
    parent.appendChild(exEl("div", { cls: "ex-title", text: model.get(titleName) }));
    const table = exEl("table", { cls: "ex-table", attrs: { "data-testid": testid + "s" } });
    const maxAbs = Math.max(1e-12, ...Array.from(eff.values, Math.abs));
    for (let i = 0; i < eff.size; i++) {
      const v = eff.values[i];
      const bar = exEl("div", { style: { width: Math.round(80 * Math.abs(v) / maxAbs) + "px", height: "8px", background: v < 0 ? "#dc2626" : "#2563eb" } });
      table.appendChild(exEl("tr", {}, [exEl("th", { text: exTokenLabel(model, labels[i]), title: exTokenTitle(labels[i]) }), exEl("td", {}, [exNumber(v, testid + "-" + i)]), exEl("td", {}, [bar])]));
    }
    parent.appendChild(table);
  }

  return exMount(model, el, "ex-neuron", "neuron-view", draw);
}

export default { initialize: exInitialize, render };
