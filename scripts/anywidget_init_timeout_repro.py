# %% [markdown]
# # anywidget: "[anywidget] Failed to initialize model." after a fixed 2 s
#
# A minimal reproduction for anywidget upstream (0.11.0, JupyterLab 4, ipywidgets 8). It uses
# only anywidget and traitlets. Run it in JupyterLab one cell at a time (the `# %%` markers
# are cells: open it with jupytext, VS Code, or paste the cells into a notebook), with the
# browser's developer console open.
#
# anywidget's front end (`Runtime` in packages/anywidget/src/runtime.ts) starts
# `AbortSignal.timeout(2000)` when the model is created in the page and rejects the model's
# `ready` with "[anywidget] Failed to initialize model." if loading the module and
# `initialize` have not finished by then. The widget still renders when loading finishes, but
# `ready` stays rejected, so `AnyModel._handle_comm_msg` (which awaits it) drops every later
# message from the kernel: the view no longer follows its Python object.
#
# Case 1 is a widget whose `initialize` takes 2.5 s. Case 2 is a widget with a one-line
# module, created while something else keeps the page's main thread busy for 2.5 s in one
# task (here another widget; under heavy CPU load it is JupyterLab's own work).
#
# Expected: each widget renders and then shows `value = 1` after `w.value = 1`.
# Actual: the console shows "[anywidget] Failed to initialize model."; the widget renders
# `value = 0` and never shows `value = 1`.
#
# This file is also run by explorer's tests/browser/test_anywidget_init_timeout.py.

# %%
import anywidget
import traitlets
from IPython.display import display

DRAW = """
  render({ model, el }) {
    const draw = () => { el.textContent = `value = ${model.get("value")}`; };
    model.on("change:value", draw);
    draw();
  },
"""


class Trivial(anywidget.AnyWidget):
    """A one-line module: nothing to load, nothing to initialize."""

    _esm = "export default {" + DRAW + "};"
    value = traitlets.Int(0).tag(sync=True)


class SlowInitialize(Trivial):
    """A legitimate widget whose `initialize` takes 2.5 s (e.g. waiting for a resource)."""

    _esm = (
        "export default {\n"
        "  async initialize() { await new Promise((r) => setTimeout(r, 2500)); },\n" + DRAW + "};"
    )


class Busy(anywidget.AnyWidget):
    """Stands for anything that keeps the page's main thread busy in one long task."""

    _esm = """
export default {
  initialize({ model }) {
    model.on("msg:custom", (msg) => {
      const t0 = performance.now();
      while (performance.now() - t0 < msg.block_ms) {}
    });
  },
  render({ el }) { el.textContent = "busy"; },
};
"""


# %% Case 1: a slow initialize. Console: "[anywidget] Failed to initialize model."
slow = SlowInitialize()
display(slow)

# %% (after 3 s) Expected `value = 1` in the view above; actual: it stays `value = 0`.
slow.value = 1

# %% Case 2: a trivial widget created while the page is busy for 2.5 s. Show `busy` first.
busy = Busy()
display(busy)

# %% Console: "[anywidget] Failed to initialize model."
trivial = Trivial()
busy.send({"block_ms": 2500})
display(trivial)

# %% (after 3 s) Expected `value = 1` in the view above; actual: it stays `value = 0`.
trivial.value = 1
