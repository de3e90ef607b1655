// explorer: controls shared by every widget's ES module (prepended by serialise.esm() after
// _common.js): requests to the kernel, the pending line with Cancel, menus and unit pickers.
// As in _common.js, strings reach the page through textContent or setAttribute only.

// Requests to the kernel go through anywidget's command channel: render() hands each view
// experimental.invoke, and exConnect(model, experimental) keeps it for the model's helpers.
// exRequest(model, name, args) runs the view's Python method `name` (a @page_request command);
// the promise resolves with its reply {outcome, error} and every answered request redraws the
// view (exMount), so a button disabled on click comes back whatever happened. Long requests
// run in the background there; the pending line below shows them and offers Cancel.
// A static snapshot has no kernel: there a request does nothing.
const exConnections = new WeakMap();

function exConnect(model, experimental) {
  const invoke = experimental && experimental.invoke;
  exConnections.set(model, { invoke, answered: new Set() });
}

function exRequest(model, name, args = {}) {
  const link = exConnections.get(model);
  if (!link || !link.invoke) return Promise.resolve(null);
  // no time limit (anywidget's default is 3 s): a kernel busy with a cell answers later
  const signal = new AbortController().signal;
  const answered = (reply) => { link.answered.forEach((f) => f(reply)); return reply; };
  return link.invoke(name, args, { signal }).then(([reply]) => answered(reply), (err) => {
    console.warn("explorer: request " + name + " failed", err);
    return answered(null);
  });
}

// Call f(reply) whenever one of the model's requests is answered; returns the unsubscribe.
function exOnAnswer(model, f) {
  const link = exConnections.get(model);
  if (!link) return () => {};
  link.answered.add(f);
  return () => link.answered.delete(f);
}

// Trait changes whose analysis may take long (a new patching grid on a large model): sent as
// a request, so the view runs them in the background (and puts them back if cancelled).
function exSet(model, changes) {
  return exRequest(model, "_page_set", changes);
}

// "running sweep… 12 s [Cancel]" while model.get("busy") names a request running in the
// kernel; "sweep cancelled after 3.2 s" once one was cancelled. `body` is dimmed meanwhile
// (it cannot be clicked: the view is consistent with what it shows until the run ends).
function exPending(model, body) {
  const node = exEl("div", { cls: "ex-pending", attrs: { role: "status", "data-testid": "pending" } });
  const text = exEl("span", { attrs: { "data-testid": "pending-text" } });
  const cancel = exEl("button", { cls: "ex-button", text: "Cancel", attrs: { "data-testid": "cancel" } });
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    cancel.textContent = "cancelling…";
    exRequest(model, "_page_cancel");
  });
  let timer = null, since = 0;
  const tick = () => {
    text.textContent = "running " + model.get("busy") + "… " + Math.floor((Date.now() - since) / 1000) + " s";
  };
  const update = () => {
    const busy = model.get("busy") || "";
    if (busy) {
      if (timer === null) {
        since = Date.now();
        timer = setInterval(tick, 1000);
        cancel.disabled = false;
        cancel.textContent = "Cancel";
      }
      tick();
      node.replaceChildren(text, cancel);
      node.style.display = "flex";
      if (body) body.classList.add("ex-busy");
      return;
    }
    if (timer !== null) { clearInterval(timer); timer = null; }
    if (body) body.classList.remove("ex-busy");
    const last = model.get("last_run") || {};
    if (last.outcome === "cancelled") {
      node.replaceChildren(exEl("span", { cls: "ex-muted", text: last.action + " cancelled after " + exFmt(last.seconds, 1) + " s: the view shows what it showed before", attrs: { "data-testid": "cancelled" } }));
      node.style.display = "flex";
    } else {
      node.replaceChildren();
      node.style.display = "none";
    }
  };
  update();
  model.on("change:busy", update);
  model.on("change:last_run", update);
  const cleanup = () => {
    if (timer !== null) clearInterval(timer);
    model.off("change:busy", update);
    model.off("change:last_run", update);
  };
  return { node, cleanup };
}

// ------------------------------------------------------------------ shared controls
// A <select> of `options` (plain values, or {value, text}); onChange(value) gets the value
// itself (a number stays a number).
function exSelect(options, current, onChange, opts = {}) {
  const items = options.map((o) => (o !== null && typeof o === "object" ? o : { value: o, text: String(o) }));
  const sel = exEl("select", { cls: opts.cls, attrs: opts.testid ? { "data-testid": opts.testid } : {} });
  for (const item of items) {
    const opt = exEl("option", { text: item.text, attrs: { value: String(item.value) } });
    if (item.value === current) opt.selected = true;
    sel.appendChild(opt);
  }
  if (onChange) sel.addEventListener("change", () => onChange(items[sel.selectedIndex].value));
  return sel;
}

// Pick a neuron: a layer menu (with each layer's width), ◀ index ▶; onPick({layer} or {neuron}).
function exNeuronPicker(widths, layer, neuron, onPick) {
  const layerSel = exSelect(widths.map((w, l) => ({ value: l, text: "layer " + l + " (" + w + ")" })), layer,
    (l) => onPick({ layer: l }), { testid: "layer-select" });
  const input = exEl("input", { cls: "ex-input", attrs: { type: "number", min: 0, max: (widths[layer] || 1) - 1, value: neuron, "data-testid": "neuron-input" } });
  const pick = () => {
    const v = parseInt(input.value, 10);
    if (Number.isInteger(v) && v >= 0 && v < widths[layer] && v !== neuron) onPick({ neuron: v });
  };
  input.addEventListener("change", pick);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
  const step = (d) => onPick({ neuron: Math.min(widths[layer] - 1, Math.max(0, neuron + d)) });
  return [layerSel, exEl("button", { cls: "ex-button", text: "◀", onclick: () => step(-1) }), input,
    exEl("button", { cls: "ex-button", text: "▶", onclick: () => step(1) })];
}

// Pick heads: a layer × head grid of toggle buttons "l.h"; active(l, h) marks the chosen ones.
function exHeadPicker(nL, nH, active, onPick) {
  const grid = exEl("div", { cls: "ex-head-grid", style: { gridTemplateColumns: "repeat(" + nH + ", auto)" } });
  for (let l = 0; l < nL; l++) for (let h = 0; h < nH; h++) {
    grid.appendChild(exEl("button", {
      cls: "ex-button" + (active(l, h) ? " ex-active" : ""), text: l + "." + h,
      attrs: { "data-testid": "unit-head-" + l + "-" + h }, onclick: () => onPick(l, h),
    }));
  }
  return grid;
}

// Type a unit ("head 1.2", "neuron 0.12"): an input and "add"; onAdd(text) on Enter or click.
// `state.text` keeps what was typed across redraws.
function exUnitInput(placeholder, state, onAdd) {
  const input = exEl("input", { cls: "ex-input", attrs: { placeholder, "data-testid": "unit-input", value: state.text || "" } });
  input.addEventListener("input", () => { state.text = input.value; });
  const add = () => { const t = input.value.trim(); if (t) { state.text = ""; onAdd(t); } };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") add(); });
  return exEl("div", { cls: "ex-row" }, [input, exEl("button", { cls: "ex-button", text: "add", attrs: { "data-testid": "unit-add" }, onclick: add })]);
}
