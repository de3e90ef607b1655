// explorer: keep each view hearing its kernel object when anywidget's start-up window runs out
// (prepended by serialize.esm(), like _common.js).
//
// anywidget (0.11) gives a widget model a fixed 2 s, wall clock from the model's creation in
// the page, to load its module and initialize. On a busy machine one long task on the page's
// main thread (JupyterLab handling a burst of kernel messages, drawing outputs) can outlast
// it; anywidget then rejects the model's `ready` ("[anywidget] Failed to initialize model.",
// an unhandled rejection) and from then on drops every message the kernel sends that model:
// the view draws once and never follows its Python object again.
//
// The link: each explorer model asks anywidget's own gate whether it passes messages, with a
// message no handler acts on (see exProbe). If the gate refuses (the model's window ran
// out), the model hands its comm's messages straight to the widgets' own handler (the one
// anywidget's override calls after its `ready`) and asks its kernel object for its whole
// state once, which replaces what was dropped. The probe is per model: a window can run out
// with no event on the page at all (a kernel message already waiting on `ready` handles the
// rejection, and JupyterLab's message chain logs it). anywidget's unhandled rejection, when
// there is one, relinks every explorer model on the page too. Nothing changes for a model
// whose window did not run out. A front end without the parts this needs (a widget
// manager's get_model, a comm's on_msg) gets a banner saying to re-run the cell instead of
// a view that silently stops following.
const EX_WINDOW_RAN_OUT = "[anywidget] Failed to initialize model.";

function exLinks() {
  // one registry per page, shared by the modules of every view class
  const key = "__explorerLinks";
  if (!globalThis[key]) {
    const links = { ranOut: 0, models: new Set(), relinked: new WeakSet() };
    globalThis[key] = links;
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("unhandledrejection", (event) => {
        const reason = event.reason;
        const text = String((reason && reason.message) || reason);
        if (!text.includes(EX_WINDOW_RAN_OUT)) return;
        links.ranOut += 1;
        for (const model of links.models) exRelink(model);
      });
    }
  }
  return globalThis[key];
}

// The handler anywidget's own _handle_comm_msg overrides: the first one up the prototype
// chain above the class that defines the model's.
function exBaseHandler(real) {
  let owner = real;
  while (owner && !Object.prototype.hasOwnProperty.call(owner, "_handle_comm_msg")) {
    owner = Object.getPrototypeOf(owner);
  }
  const above = owner && Object.getPrototypeOf(owner);
  return above && typeof above._handle_comm_msg === "function" ? above._handle_comm_msg : null;
}

function exRelink(model) {
  const links = exLinks();
  if (links.relinked.has(model)) return;
  links.relinked.add(model);
  const id = model.get("_ex_model_id");
  const manager = model.widget_manager;
  const lost = (why) => {
    console.warn("[explorer] a view cannot hear its kernel object: " + why);
    model.set("error", "This view stopped following the kernel (the page was too busy while it " +
      "started: anywidget's 2 s start-up window ran out, " + why + "). Run its cell again.");
  };
  if (!id || !manager || typeof manager.get_model !== "function") {
    lost("this front end gives no widget manager to relink through");
    return;
  }
  Promise.resolve(manager.get_model(id)).then((real) => {
    const base = real && exBaseHandler(real);
    if (!base || !real.comm || typeof real.comm.on_msg !== "function") {
      lost("this front end's model has no comm handler to relink");
      return;
    }
    real.comm.on_msg((msg) => base.call(real, msg));
    model.send({ type: "ex-resync" }); // the kernel sends the whole state: what was dropped
    console.info("[explorer] relinked view " + id + " to its kernel object after anywidget's start-up window ran out");
  }, (err) => lost("its model was not found (" + err + ")"));
}

// Does anywidget's gate pass this model's messages? The probe goes through anywidget's own
// _handle_comm_msg, which waits for the model's `ready`, then hands it to the widgets'
// handler, which ignores a method it does not know. It fails exactly when `ready` was
// rejected: the window ran out and every kernel message to the model is dropped. The probe
// stays in the page (nothing is sent to the kernel).
function exProbe(model) {
  const id = model.get("_ex_model_id");
  const manager = model.widget_manager;
  // no manager to ask through: a page-level rejection still reaches exRelink, which says so
  if (!id || !manager || typeof manager.get_model !== "function") return;
  Promise.resolve(manager.get_model(id))
    .then((real) => {
      if (!real || typeof real._handle_comm_msg !== "function") return undefined;
      return real._handle_comm_msg({ content: { data: { method: "ex-probe" } }, buffers: [] });
    })
    .catch((err) => {
      const text = String((err && err.message) || err);
      if (text.includes(EX_WINDOW_RAN_OUT)) exRelink(model);
    });
}

// anywidget's initialize hook of every explorer view: register the model, relink it at once
// if a window has already run out on this page, and otherwise probe its own.
function exInitialize({ model }) {
  const links = exLinks();
  links.models.add(model);
  if (links.ranOut > 0) exRelink(model);
  else exProbe(model);
  return () => links.models.delete(model);
}
