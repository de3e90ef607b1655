"""``SweepView``: a sweep's phase diagram and curves; click a run to scrub through it.

The phase diagram is ``explorer.sweep.phase_diagram``: a grid over two settings the sweep
changes (``columns`` and ``rows``, chosen in menus), coloured by an ``outcome`` (``test_95``: the
step test accuracy first passed 95%). Each cell is split into one strip per run (its seeds),
so their spread shows; a run that finished without reaching the outcome is "never" (hatched
grey), one not finished yet is blank. The cell's text is its median and range. Beside it,
``explorer.sweep.sweep_curves``: one logged ``measure`` of every run, overlaid, coloured by
the setting ``color_by``. Clicking a strip or a curve sets ``selected_run`` and opens that
run in a ``TrainingScrubber`` (``view.scrubber``) beside the view: displaying the view shows
``view.beside``, a box of the view and its scrubber.

``SweepView.launch(study, grid, folder=..., ...)`` starts the sweep on a background thread
and returns the view at once: ``progress`` says how many runs are done and running and the
time left; finished points appear as they finish; the Stop button (``cancel_sweep()``)
cancels the sweep, keeping every finished run (running it again runs only the others).

>>> import tempfile
>>> from explorer.sweep import sweep
>>> s = sweep("grokking", {"lr": [1e-3, 3e-2], "train_frac": [0.3, 0.9]},
...           folder=tempfile.mkdtemp() + "/s", executor="serial", progress=False,
...           base={"p": 7, "steps": 10, "d_model": 16, "eval_every": 5})
>>> view = SweepView(s, outcome="train_99")
>>> view.columns, view.rows, view.column_labels, view.cell_state["shape"]
('lr', 'train_frac', ['0.001', '0.03'], [2, 2, 1])
>>> view.open_run("lr=0.03_train_frac=0.9")
>>> view.scrubber.run.path.name
'lr=0.03_train_frac=0.9'
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import ipywidgets
import traitlets
from anywidget.experimental import command

from explorer.sweep.curves import logged_measures, sweep_curves
from explorer.sweep.execute import SweepProgress, plan_sweep, sweep
from explorer.sweep.phase import outcome_names, phase_diagram, swept_settings
from explorer.sweep.result import Sweep
from explorer.sweep.studies import SweepStudy
from explorer.views._base import ExplorerWidget
from explorer.views._reporting import Reply, reports_errors
from explorer.views.scrubber import TrainingScrubber
from explorer.views.serialize import Tensor, esm

__all__ = ["SweepView"]

_PREFERRED = {"outcome": ("test_95", "phase_change"), "measure": ("test_acc", "train_loss")}
# sweep() arguments launch sets itself (a caller's on_progress is chained to its own)
_OWN = ("folder", "progress", "cancel")


class SweepView(ExplorerWidget):
    """A sweep's phase diagram and curves, with a scrubber on the run clicked.

    Args:
        sweep: a ``Sweep`` (what ``sweep(...)`` returns) or a sweep folder.
        columns, rows: the settings of the diagram's columns and rows (default: the first
            two the sweep changes other than ``seed``; ``rows=""``: one row).
        outcome: what colours it (default ``test_95`` where recorded).
        measure: the curves' measure (default ``test_acc`` where logged).
        color_by: the setting that colours the curves (default ``columns``).
        scrubber_options: keyword arguments of the ``TrainingScrubber`` a click opens.
    """

    _esm = esm("sweep_view.js")
    _page_read_only: ClassVar[frozenset[str]] = ExplorerWidget._page_read_only | {
        "progress",
        "sweeping",
    }

    folder = traitlets.Unicode("", help="the sweep's folder").tag(sync=True)
    study = traitlets.Unicode("", help="the study swept").tag(sync=True)
    settings = traitlets.List(
        traitlets.Unicode(),
        help="settings the sweep changes: the choices of columns, rows, color_by",
    ).tag(sync=True)
    outcome_names = traitlets.List(
        traitlets.Unicode(), help="outcomes the finished runs recorded"
    ).tag(sync=True)
    measures = traitlets.List(traitlets.Unicode(), help="measures the finished runs logged").tag(
        sync=True
    )
    columns = traitlets.Unicode("", help="setting of the diagram's columns").tag(sync=True)
    rows = traitlets.Unicode("", help="setting of the diagram's rows; empty: one row").tag(
        sync=True
    )
    outcome = traitlets.Unicode("", help="outcome colouring the diagram").tag(sync=True)
    measure = traitlets.Unicode("", help="measure drawn as curves").tag(sync=True)
    color_by = traitlets.Unicode("", help="setting colouring the curves; empty: one colour").tag(
        sync=True
    )
    log_x = traitlets.Bool(False, help="log-scale step axis of the curves").tag(sync=True)
    log_y = traitlets.Bool(False, help="log-scale value axis of the curves").tag(sync=True)
    column_labels = traitlets.List(traitlets.Unicode(), help="the columns' values").tag(sync=True)
    row_labels = traitlets.List(traitlets.Unicode(), help="the rows' values").tag(sync=True)
    cell_runs = traitlets.List(help="[row][col][k]: the runs of each cell, by seed").tag(sync=True)
    cell_value = Tensor("float32", help="[row, col, k]: each run's outcome (NaN: none)").tag(
        sync=True
    )
    cell_state = Tensor(
        "int32", help="[row, col, k]: 0 reached, 1 never, 2 unfinished, 3 no run"
    ).tag(sync=True)
    cell_median = Tensor("float32", help="[row, col]: median (inf: never)").tag(sync=True)
    cell_text = traitlets.List(help="[row][col]: median and range as text").tag(sync=True)
    color_scale = traitlets.Dict(help="the diagram's ColorScale (vmin, vmax, label, ...)").tag(
        sync=True
    )
    curve_runs = traitlets.List(traitlets.Unicode(), help="runs of curve_values' rows").tag(
        sync=True
    )
    curve_steps = Tensor("int32", help="[point]: the steps of the curves").tag(sync=True)
    curve_values = Tensor("float32", help="[run, point]: the measure; NaN where not logged").tag(
        sync=True
    )
    curve_groups = traitlets.List(
        traitlets.Unicode(), help="values of color_by, one colour each"
    ).tag(sync=True)
    curve_group_of = traitlets.List(traitlets.Int(), help="each curve's group").tag(sync=True)
    selected_run = traitlets.Unicode("", help="the run open in the scrubber; empty: none").tag(
        sync=True
    )
    progress = traitlets.Dict(
        help="the running sweep: SweepProgress fields and text; outcome done or cancelled at the end"
    ).tag(sync=True)
    sweeping = traitlets.Bool(False, help="a sweep launched from the view is running").tag(
        sync=True
    )

    def __init__(
        self,
        sweep: Sweep | str | os.PathLike[str],
        *,
        columns: str | None = None,
        rows: str | None = None,
        outcome: str | None = None,
        measure: str | None = None,
        color_by: str | None = None,
        scrubber_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(sweep, (Sweep, str, os.PathLike)):
            raise TypeError(
                f"SweepView shows a Sweep or a sweep folder, got {type(sweep).__name__}"
            )
        self.sweep = sweep if isinstance(sweep, Sweep) else Sweep.open(sweep)
        self.scrubber: TrainingScrubber | None = None
        self._scrubber_options = dict(scrubber_options or {})
        self._beside: ipywidgets.HBox | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._seen_finished = -1
        settings = swept_settings(self.sweep)
        plain = [s for s in settings if s != "seed"] or list(settings)
        if columns is None:
            columns = plain[0] if plain else ""
        if rows is None:
            rows = next((s for s in plain if s != columns), "")
        super().__init__(
            folder=str(self.sweep.folder), study=self.sweep.study, settings=list(settings),
            **self._choices(), columns=columns, rows=rows,
            color_by=columns if color_by is None else color_by,
            **kwargs,
        )  # fmt: skip
        self.outcome = self._default("outcome", outcome, self.outcome_names)
        self.measure = self._default("measure", measure, self.measures)
        self._show_phase()
        self._show_curves()

    # ------------------------------------------------------------------ public
    @classmethod
    def launch(
        cls,
        study: str | SweepStudy,
        grid: Mapping[str, Sequence[Any]] | None = None,
        *,
        folder: str | os.PathLike[str],
        points: Sequence[Mapping[str, Any]] | None = None,
        seeds: Sequence[int] | None = None,
        base: Mapping[str, Any] | None = None,
        view_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SweepView:
        """Start ``sweep(study, grid, folder=..., ...)`` on a background thread and return
        its view at once (``view_options``: the view's own keywords). ``options`` are
        ``sweep``'s other keywords (``executor``, ``workers``, ``address``, ``store`` ...)."""
        given = sorted(set(options) & set(_OWN))
        if given:
            raise TypeError(f"launch sets {', '.join(given)} itself: leave them out")
        planned = plan_sweep(study, grid, points=points, folder=folder, seeds=seeds, base=base)
        view = cls(planned, **dict(view_options or {}))
        arguments = dict(study=study, grid=grid, points=points, seeds=seeds, base=base, **options)
        view._start_sweep(arguments)
        return view

    def cancel_sweep(self) -> None:
        """Stop the sweep launched from the view: running points stop (saved, resumable),
        finished ones are kept."""
        self._stop.set()

    def wait_sweep(self, timeout: float | None = None) -> bool:
        """Wait for the launched sweep to end; False if it still runs after ``timeout``."""
        if self._sweeper is not None:
            self._sweeper.join(timeout)
            return not self._sweeper.is_alive()
        return True

    def open_run(self, name: str) -> None:
        """Open run ``name`` in the scrubber beside the view (``""``: close it)."""
        self.selected_run = name

    @reports_errors
    def refresh(self) -> None:
        """Read the sweep's folder again (points finished since) and redraw."""
        self.sweep = Sweep.open(self.sweep.folder, names=self.sweep.names).with_call(
            ran=self.sweep.ran, reused=self.sweep.reused, failed=self.sweep.failed,
            interrupted=self.sweep.interrupted,
        )  # fmt: skip
        self._redraw()

    @property
    def beside(self) -> ipywidgets.HBox:
        """The view with its scrubber (once a run is open) beside it: what displays."""
        if self._beside is None:
            children = [self] + ([self.scrubber] if self.scrubber is not None else [])
            self._beside = ipywidgets.HBox(
                children, layout=ipywidgets.Layout(flex_flow="row wrap", align_items="flex-start")
            )
        return self._beside

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.beside._repr_mimebundle_(**kwargs)

    # ---------------------------------------------------------------- drawing
    def _choices(self) -> dict[str, list[str]]:
        return {
            "outcome_names": list(outcome_names(self.sweep)),
            "measures": list(logged_measures(self.sweep)),
        }

    @staticmethod
    def _default(what: str, asked: str | None, known: Sequence[str]) -> str:
        if asked is not None:
            return asked
        return next((n for n in _PREFERRED[what] if n in known), known[0] if known else "")

    def _redraw(self) -> None:
        self._results.clear()
        with self.hold_trait_notifications():
            for name, value in self._choices().items():
                setattr(self, name, value)
            if not self.outcome or self.outcome not in self.outcome_names:
                self.outcome = self._default("outcome", None, self.outcome_names)
            if not self.measure or self.measure not in self.measures:
                self.measure = self._default("measure", None, self.measures)
        self._show_phase()
        self._show_curves()

    @traitlets.validate("columns", "rows", "color_by")
    def _valid_setting(self, proposal: dict[str, Any]) -> str:
        value, name = proposal["value"], proposal["trait"].name
        if value and value not in self.settings:
            raise traitlets.TraitError(
                f"{name}={value!r} is not a setting this sweep changes: choose one of "
                f"{', '.join(self.settings)}"
            )
        return value

    @traitlets.validate("selected_run")
    def _valid_run(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value and value not in self.sweep.names:
            shown = ", ".join(self.sweep.names[:6]) + (" ..." if len(self.sweep.names) > 6 else "")
            raise traitlets.TraitError(f"no run {value!r} in this sweep: its runs are {shown}")
        return value

    @traitlets.observe("columns", "rows", "outcome")
    @reports_errors
    def _show_phase(self, change: dict[str, Any] | None = None) -> None:
        if not self.columns:
            return
        key = ("phase", self.columns, self.rows, self.outcome)
        d = self._results.get(
            key,
            lambda: phase_diagram(
                self.sweep, columns=self.columns, rows=self.rows or None, outcome=self.outcome
            ),
        )
        with self.hold_sync():
            self.column_labels = list(d.column_labels)
            self.row_labels = list(d.row_labels)
            self.cell_runs = [[list(c) for c in row] for row in d.runs]
            self.cell_value = d.value
            self.cell_state = d.state
            self.cell_median = d.median
            self.cell_text = [
                [d.cell_text(i, j) for j in range(len(d.column_values))]
                for i in range(len(d.row_values))
            ]
            self.color_scale = d.scale.to_dict()

    @traitlets.observe("measure", "color_by")
    @reports_errors
    def _show_curves(self, change: dict[str, Any] | None = None) -> None:
        if not self.measure:
            return
        key = ("curves", self.measure, self.color_by)
        c = self._results.get(
            key, lambda: sweep_curves(self.sweep, self.measure, color_by=self.color_by or None)
        )
        with self.hold_sync():
            self.curve_runs = list(c.runs)
            self.curve_steps = c.steps
            self.curve_values = c.values
            self.curve_groups = list(c.groups)
            self.curve_group_of = list(c.group_of)
            if change is not None and change["name"] == "measure":
                self.log_y = "loss" in self.measure or "norm" in self.measure

    @traitlets.observe("selected_run")
    @reports_errors
    def _open(self, change: dict[str, Any] | None = None) -> None:
        old = self.scrubber
        name = self.selected_run
        self.scrubber = (
            TrainingScrubber(self.sweep.run(name), **self._scrubber_options) if name else None
        )
        self.beside.children = (self,) if self.scrubber is None else (self, self.scrubber)
        if old is not None:
            old.close()

    # ---------------------------------------------------------------- the sweep
    def _start_sweep(self, arguments: dict[str, Any]) -> None:
        callback = arguments.pop("on_progress", None)

        def progressed(p: SweepProgress) -> None:
            self._progressed(p)
            if callback is not None:
                callback(p)

        def work() -> None:
            try:
                result = sweep(
                    **arguments, folder=self.sweep.folder, progress=False,
                    on_progress=progressed, cancel=self._stop,
                )  # fmt: skip
            except BaseException as exc:
                with self._request():
                    self._fail(exc)
                    text = f"failed: {type(exc).__name__}: {exc}"
                    self.progress = {**self.progress, "outcome": "failed", "text": text}
            else:
                with self._request():
                    self.sweep = result
                    self._redraw()
                    kept = len(result.finished)
                    outcome = "cancelled" if result.interrupted else "done"
                    self.progress = {
                        **self.progress, "outcome": outcome, "running": 0, "finished": kept,
                        "text": f"{outcome}: {kept} of {len(result.names)} runs finished"
                        + (" (kept; run again to finish the rest)" if result.interrupted else ""),
                    }  # fmt: skip
            finally:
                self.sweeping = False

        self._stop = threading.Event()
        self.sweeping = True
        self._sweeper = threading.Thread(target=work, name="explorer SweepView.sweep", daemon=True)
        self._sweeper.start()

    def _progressed(self, p: SweepProgress) -> None:
        self.progress = {**dataclasses.asdict(p), "text": str(p), "outcome": "running"}
        if p.done + p.failed != self._seen_finished:
            self._seen_finished = p.done + p.failed
            if p.done:
                self.refresh()

    @command
    def _page_cancel_sweep(self, _msg: Any, _buffers: list[bytes]) -> Reply:
        """The page's Stop: not queued, so it reaches the sweep whatever else runs."""
        self.cancel_sweep()
        return {"outcome": "done", "error": ""}, []
