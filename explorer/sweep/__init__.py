"""Sweeps: a study trained at every point of a grid of settings and seeds, on Ray.

``sweep("grokking", {"weight_decay": [0.1, 0.3, 1.0], "train_frac": [0.3, 0.5]},
seeds=[0, 1, 2], folder="wd-frac")`` trains each point as an ordinary explorer run in
``wd-frac/runs/<point>``, in parallel on a local Ray (or a cluster: ``address=``), logging
the progress measures of ``explorer.sweep.measures`` beside the study's own; it is
resumable (rerun it and only unfinished points run) and cancellable (Ctrl-C keeps every
finished point). The ``Sweep`` it returns gives the outcomes per point (a phase diagram is
a pivot of ``outcomes()``) and every curve (``to_dataframe()``), and indexes the points in a
``HypothesisStore`` (``record(store)``; SQL-queryable, see
``explorer.hypotheses.sweep_index``). ``prediction_table`` turns its runs into the table a
``explorer.hypotheses.Prediction`` is judged on; ``phase_sweep`` opens the grokking phase
diagram that ships (``explorer.sweep.shipped``). docs/sweeps.md has the details and measured
costs.

>>> from explorer.sweep import STUDIES
>>> STUDIES["grokking"].defaults["p"]
53
"""

from explorer.sweep.execute import SweepProgress, shutdown_ray, sweep
from explorer.sweep.folder import SweepFolder, failure_record, run_point
from explorer.sweep.measures import StepClock, gradient_noise, sweep_measures
from explorer.sweep.points import SweepPoint, expand_points, point_name
from explorer.sweep.predict import INTERNAL_MEASURES, measure_leads, prediction_table
from explorer.sweep.result import Sweep
from explorer.sweep.shipped import (
    CHECKPOINT_RUNS,
    INDUCTION_GRID,
    INDUCTION_SEEDS,
    PHASE_BASE,
    PHASE_GRID,
    PHASE_SEEDS,
    SHIPPED_SWEEP,
    induction_size_sweep,
    phase_sweep,
    ship_sweep,
)
from explorer.sweep.studies import STUDIES, SweepStudy, study_of

__all__ = [
    "CHECKPOINT_RUNS",
    "INDUCTION_GRID",
    "INDUCTION_SEEDS",
    "INTERNAL_MEASURES",
    "PHASE_BASE",
    "PHASE_GRID",
    "PHASE_SEEDS",
    "SHIPPED_SWEEP",
    "STUDIES",
    "StepClock",
    "Sweep",
    "SweepFolder",
    "SweepPoint",
    "SweepProgress",
    "SweepStudy",
    "expand_points",
    "failure_record",
    "gradient_noise",
    "induction_size_sweep",
    "measure_leads",
    "phase_sweep",
    "point_name",
    "prediction_table",
    "run_point",
    "ship_sweep",
    "shutdown_ray",
    "study_of",
    "sweep",
    "sweep_measures",
]
