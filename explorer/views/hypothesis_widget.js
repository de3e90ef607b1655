// HypothesisWidget: edit a claim, press Test, see the verdict (helpers in _hypothesis.js).
function render({ model, el, experimental }) {
  exConnect(model, experimental);
  const root = exEl("div", { cls: "ex-root hv-editor", attrs: { "data-testid": "hypothesis-widget" } });
  root.appendChild(exErrorBanner(model));
  const form = exEl("div");
  const pending = exPending(model, form);
  root.appendChild(pending.node);

  const claim = exEl("textarea", { cls: "hv-claim", attrs: { rows: 2, "data-testid": "claim" } });
  const units = exEl("input", { cls: "ex-input hv-units", attrs: { "data-testid": "units", placeholder: "head 1.4, neuron 0.37" } });
  const direction = exSelect(["above", "below"], model.get("direction"), null, { testid: "direction" });
  const threshold = exEl("input", { cls: "ex-input", attrs: { type: "number", step: "any", "data-testid": "threshold" } });
  const test = exEl("button", { cls: "ex-button ex-active", text: "Test", attrs: { "data-testid": "test" } });
  const badge = exEl("span");
  const info = exEl("div", { cls: "ex-col ex-muted" });
  const verdict = exEl("div");
  const history = exEl("div");

  // Fill the form from the kernel, but never under the cursor of someone typing.
  const fill = () => {
    const pairs = [[claim, "claim"], [units, "units"], [direction, "direction"], [threshold, "threshold"]];
    for (const [node, name] of pairs) if (document.activeElement !== node) node.value = String(model.get(name));
  };
  const update = () => {
    fill();
    const status = model.get("status");
    badge.replaceChildren(hvBadge(status));
    const running = status === "running" || model.get("busy") === "test";
    test.disabled = running;
    test.textContent = running ? "testing…" : "Test";
    info.replaceChildren(
      exEl("span", { text: "measure: " + model.get("measure") }),
      exEl("span", { text: "formed on " + model.get("formation") + "; judged on " + model.get("held_out") }),
      exEl("span", { text: "model: " + model.get("model_name") }),
    );
    const id = model.get("hypothesis_id") || "";
    const parent = model.get("parent_id") || "";
    info.appendChild(exEl("span", {  // an edit after a verdict is a new version, linked to its parent
      text: "version " + id.slice(0, 8) + (parent ? ", edited from " + parent.slice(0, 8) + " (which keeps its verdicts)" : ""),
      attrs: { "data-testid": "version", "data-id": id, "data-parent": parent },
    }));
    const spent = model.get("budget_spent") || {};
    if (spent.forward !== undefined) {  // the passes run on the model before the claim was written
      const fmt = (x) => (x ?? 0).toLocaleString("en");
      info.appendChild(exEl("span", {
        text: "written after " + fmt(spent.forward + spent.backward) + " passes (" + fmt(spent.forward) + " forward, " + fmt(spent.backward) + " backward, " + fmt(spent.examples) + " examples)",
        attrs: { "data-testid": "budget-spent", "data-value": spent.forward + spent.backward },
      }));
    }
    verdict.replaceChildren(hvVerdict(model.get("verdict")));
    const past = (model.get("history") || []).slice(0, -1).reverse();
    history.replaceChildren();
    if (past.length) {
      const list = exEl("div", { cls: "ex-col", attrs: { "data-testid": "history" } }, [exEl("span", { cls: "ex-muted", text: "earlier verdicts" })]);
      for (const v of past) {
        list.appendChild(exEl("div", { cls: "ex-row hv-history" }, [
          hvBadge(v.status, "history-status"),
          exEl("span", { text: exFmt(v.value, 4) + " [" + exFmt(v.ci_low, 3) + ", " + exFmt(v.ci_high, 3) + "]" }),
          exEl("span", { cls: "ex-muted", text: v.model_name + " @" + v.model_fingerprint + " · " + v.timestamp }),
        ]));
      }
      history.appendChild(list);
    }
  };

  test.addEventListener("click", () => {
    test.disabled = true;
    test.textContent = "testing…";
    exRequest(model, "_page_test", { claim: claim.value, units: units.value, direction: direction.value, threshold: Number(threshold.value) });
  });

  root.appendChild(exEl("div", { cls: "ex-row" }, [exEl("div", { cls: "ex-title", text: "Hypothesis" }), badge]));
  form.appendChild(hvField("claim", claim));
  form.appendChild(exEl("div", { cls: "ex-row" }, [hvField("units", units), hvField("measure is", direction), hvField("threshold", threshold), test]));
  form.appendChild(info);
  form.appendChild(verdict);
  form.appendChild(history);
  root.appendChild(form);
  el.appendChild(root);
  update();
  // any synced trait changing, or a request answered (Test comes back), updates the form
  model.on("change", update);
  const unanswer = exOnAnswer(model, update);
  return () => { pending.cleanup(); unanswer(); model.off("change", update); };
}


export default { initialize: exInitialize, render };
