"""``TrainingScrubber``: slide through a run's checkpoints; every linked view follows.

The widget shows the run's metric curves with the current checkpoint marked, and a slider
over the checkpoints. Moving the slider (or clicking a point on a curve, which jumps to the
nearest checkpoint) sets ``step``; the kernel loads that checkpoint's weights into one
model (``scrubber.model``) and calls every ``on_step`` callback with it, so any view (an
attention pattern, a neuron, the embedding spectrum, a plot of your own) follows.
``step`` is an ordinary synced trait: ``traitlets.link`` it to another widget's step.

Curves travel as one float32 payload ``[curve, point]`` (NaN where a curve has no value).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import traitlets

from explorer.models.handle import ModelHandle
from explorer.training.run import Run
from explorer.views._base import ExplorerWidget
from explorer.views._request_queue import in_queue
from explorer.views.serialize import Tensor, esm

StepCallback = Callable[[ModelHandle, int], Any]
DEFAULT_PANELS = (("train_loss", "test_loss"), ("train_acc", "test_acc"))


class StepViewsFailed(RuntimeError):
    """One or more views linked with ``on_step`` failed at the step shown."""


class TrainingScrubber(ExplorerWidget):
    """A slider over a run's checkpoints that drives other views and marks metric curves.

    Args:
        run: a ``Run`` or a run folder.
        panels: groups of metric names, one plot each (default: losses, then accuracies,
            those that were logged). A panel whose names all contain "loss" or "norm" is
            drawn with a log y axis.
        on_step: a callback ``fn(model, step)`` called after each checkpoint is loaded.
        phases: spans ``[(name, start, end), ...]`` (or objects with those attributes, e.g.
            ``Phases.as_list()``) shaded behind the curves.
        step: the checkpoint shown first (default: the last).

    >>> import tempfile
    >>> from explorer.models import zoo
    >>> m = zoo.modular_addition_transformer(p=5, d_model=8)
    >>> run = Run.create(tempfile.mkdtemp() + "/r", m)
    >>> for s in (0, 10):
    ...     run.save_checkpoint(m, s); run.log(s, {"train_loss": 1.0 / (s + 1)})
    >>> scrubber = TrainingScrubber(run)
    >>> scrubber.step = 3       # snaps to the nearest checkpoint
    >>> scrubber.step, scrubber.summary["train_loss"]
    (0, 1.0)
    """

    _esm = esm("scrubber.js")
    # a new step loads a checkpoint and runs every on_step callback (their passes): on the
    # worker thread, with Cancel (the step is put back and its checkpoint reloaded)

    step = traitlets.Int(0, help="training step of the checkpoint shown; snaps to the nearest").tag(
        sync=True
    )
    steps = traitlets.List(traitlets.Int(), help="steps that have a checkpoint").tag(sync=True)
    run_name = traitlets.Unicode("", help="name of the run").tag(sync=True)
    curve_names = traitlets.List(traitlets.Unicode(), help="names of the rows of `curves`").tag(
        sync=True
    )
    curve_steps = Tensor("int32", help="payload [point]: the x of every curve point").tag(sync=True)
    curves = Tensor("float32", help="payload [curve, point]; NaN where not logged").tag(sync=True)
    panels = traitlets.List(
        traitlets.Dict(), help="plots: [{title, names, log_y}] drawn one under another"
    ).tag(sync=True)
    phases = traitlets.List(traitlets.Dict(), help="shaded spans [{name, start, end}]").tag(
        sync=True
    )
    summary = traitlets.Dict(help="metrics logged at (or nearest) the shown step").tag(sync=True)
    log_x = traitlets.Bool(False, help="log-scale step axis").tag(sync=True)

    def __init__(
        self,
        run: Run | str | os.PathLike[str],
        *,
        panels: Sequence[Sequence[str]] | None = None,
        on_step: StepCallback | None = None,
        phases: Sequence[Any] | None = None,
        step: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.run = run if isinstance(run, Run) else Run.open(run)
        if not self.run.steps:
            raise ValueError(f"run {self.run.name} has no checkpoints to scrub through")
        self._callbacks: list[StepCallback] = [on_step] if on_step is not None else []
        self._extra: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.model: ModelHandle = self.run.load_model(self.run.steps[-1])
        self._loaded: int | None = self.run.steps[-1]
        self._panels_asked = [list(p) for p in panels] if panels is not None else None
        super().__init__(
            steps=list(self.run.steps),
            run_name=self.run.name,
            curve_steps=None,
            curves=None,
            phases=[_phase_dict(p) for p in (phases or [])],
            **kwargs,
        )
        self._send_curves()
        target = self.run.nearest_step(step) if step is not None else self.run.steps[-1]
        if self.step == target:
            self._show_step()
        else:
            self.step = target  # the observer loads it

    # ------------------------------------------------------------------ public
    def on_step(self, callback: StepCallback) -> StepCallback:
        """Call ``callback(model, step)`` whenever the shown checkpoint changes (a decorator).

        It is called once right away so the linked view starts in sync.
        """
        if not callable(callback):
            raise TypeError(f"on_step needs a callable fn(model, step), got {callback!r}")
        self._callbacks.append(callback)
        with self._reported():
            self._call_back([callback])
        return callback

    def add_curve(
        self,
        name: str,
        steps: Sequence[int] | torch.Tensor,
        values: Sequence[float] | torch.Tensor,
        *,
        panel: int | None = None,
        log_y: bool | None = None,
    ) -> None:
        """Draw an extra curve (e.g. a progress measure computed per checkpoint).

        ``panel`` adds it to an existing plot (by index); None gives it a plot of its own.
        """
        s = torch.as_tensor(steps).long().flatten()
        v = torch.as_tensor(values, dtype=torch.float32).flatten()
        if s.shape != v.shape:
            raise ValueError(f"steps has {s.numel()} entries but values has {v.numel()}")
        self._extra[name] = (s, v)
        panels = [dict(p) for p in self.panels]
        if panel is None:
            panels.append({"title": name, "names": [name], "log_y": _log_axis([name], log_y)})
        else:
            if not 0 <= panel < len(panels):
                raise ValueError(
                    f"panel {panel} out of range: valid panels are 0..{len(panels) - 1}"
                )
            panels[panel]["names"] = [*panels[panel]["names"], name]
        self._send_curves(panels)

    def refresh(self) -> None:
        """Re-read the run (e.g. while it is still training): new checkpoints and metrics."""
        self.run = Run.open(self.run.path)
        self.steps = list(self.run.steps)
        self._send_curves(self.panels or None)

    # ---------------------------------------------------------------- internals
    @traitlets.validate("step")
    def _snap(self, proposal: dict[str, Any]) -> int:
        return self.run.nearest_step(int(proposal["value"]))

    @traitlets.observe("step")
    @in_queue  # a step from Python waits for the page's; loading a step changes the model
    def _show_step(self, change: dict[str, Any] | None = None) -> None:
        with self._reported():
            if self._loaded != self.step:
                self.run.load_into(self.model, self.step)
                self.model.name = f"{self.run.name}@{self.step}"
                self._loaded = self.step
                self._rebase_model()
            self.summary = self._row_at(self.step)
            self._call_back(self._callbacks)

    def _call_back(self, callbacks: list[StepCallback]) -> None:
        """Run the linked views' callbacks, every one even if some fail; then raise one
        error naming each failure (the view reports it through its one error path)."""
        failures = [msg for msg in (self._call(cb) for cb in callbacks) if msg]
        if failures:
            raise StepViewsFailed("; ".join(failures))

    def _call(self, callback: StepCallback) -> str:
        """Run one view callback; its failure becomes a message instead of an exception."""
        try:
            callback(self.model, self.step)
        except Exception as exc:
            name = getattr(callback, "__name__", "callback")
            self.log.debug("on_step callback %s failed", name, exc_info=True)
            return f"{name} failed at step {self.step}: {type(exc).__name__}: {exc}"
        return ""

    def _row_at(self, step: int) -> dict[str, Any]:
        row: dict[str, Any] = {"step": step}
        metrics = self._metrics
        for name in metrics.names:
            curve = metrics.get(name)
            if bool((curve.steps == step).any()):
                value = curve.at(step)
                row[name] = value if math.isfinite(value) else None
        for name, (s, v) in self._extra.items():
            hit = torch.nonzero(s == step)
            if len(hit):
                value = float(v[hit[0, 0]])
                row[name] = value if math.isfinite(value) else None
        return row

    def _send_curves(self, panels: list[dict[str, Any]] | None = None) -> None:
        self._metrics = metrics = self.run.metrics()
        series: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
            name: (metrics.get(name).steps, metrics.get(name).values) for name in metrics.names
        }
        series.update(self._extra)
        if panels is None:
            asked = self._panels_asked or [[n for n in p if n in series] for p in DEFAULT_PANELS]
            unknown = sorted({n for p in asked for n in p} - set(series))
            if unknown:
                raise ValueError(
                    f"no metric {', '.join(unknown)} in run {self.run.name}; "
                    f"logged: {', '.join(series)}"
                )
            panels = [
                {"title": " / ".join(p), "names": list(p), "log_y": _log_axis(p)}
                for p in asked
                if p
            ]
        names = list(dict.fromkeys(n for p in panels for n in p["names"]))
        xs = sorted({int(s) for n in names for s in series[n][0].tolist()} | set(self.run.steps))
        index = {s: i for i, s in enumerate(xs)}
        grid = torch.full((len(names), len(xs)), float("nan"))
        for row, name in enumerate(names):
            s, v = series[name]
            grid[row, [index[int(x)] for x in s.tolist()]] = v
        self.curve_names = names
        self.curve_steps = torch.tensor(xs, dtype=torch.int32)
        self.curves = grid
        self.panels = panels


def _log_axis(names: Sequence[str], asked: bool | None = None) -> bool:
    if asked is not None:
        return bool(asked)
    return bool(names) and all(("loss" in n or "norm" in n) for n in names)


def _phase_dict(phase: Any) -> dict[str, Any]:
    if isinstance(phase, Mapping):
        name, start, end = phase["name"], phase["start"], phase["end"]
    elif isinstance(phase, (tuple, list)):
        name, start, end = phase
    else:
        name, start, end = phase.name, phase.start, phase.end
    return {"name": str(name), "start": int(start), "end": int(end)}
