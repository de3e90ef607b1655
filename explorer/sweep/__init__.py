"""Sweeps: a study trained at every point of a grid of settings and seeds, on Ray.

``sweep("grokking", {"weight_decay": [0.1, 0.3, 1.0], "train_frac": [0.3, 0.5]},
seeds=[0, 1, 2], folder="wd-frac")`` trains each point as an ordinary explorer run in
``wd-frac/runs/<point>``, in parallel on a local Ray (or a cluster: ``address=``), logging
the progress measures of ``explorer.sweep.measures`` beside the study's own (and, when
asked, the local learning coefficient: ``explorer.sweep.learning_coefficient``); it is
resumable (rerun it and only unfinished points run) and cancellable (Ctrl-C keeps every
finished point). The ``Sweep`` it returns gives the outcomes per point (``phase_diagram``:
an outcome over two settings, seeds and "never" kept) and every curve (``to_dataframe()``;
``sweep_curves``: one measure of every run, grouped by a setting), and indexes the points in a
``HypothesisStore`` (``record(store)``; SQL-queryable, see
``explorer.hypotheses.sweep_index``). Science across runs: ``emergence`` (how step-like
an outcome is in model size, curves chosen on held-out sizes), ``representation_similarity``
and ``match_units`` (CKA and units matched across seeds, ``explorer.sweep.universality``),
``key_frequency_recurrence`` (grokking).
``prediction_table`` (grokking) and ``loss_bump_table`` (induction) turn its runs into the
table a ``explorer.hypotheses.Prediction`` is judged on; ``phase_sweep`` opens the grokking phase
diagram that ships (``explorer.sweep.shipped``). docs/sweeps.md has the details and measured
costs.

>>> from explorer.sweep import STUDIES
>>> STUDIES["grokking"].defaults["p"]
53
"""

from explorer.models.learning_coefficient import LLCSampler
from explorer.sweep.curves import SweepCurves, logged_measures, sweep_curves
from explorer.sweep.emergence import CURVES, Emergence, emergence
from explorer.sweep.execute import SweepProgress, plan_sweep, shutdown_ray, sweep
from explorer.sweep.folder import SweepFolder, failure_record, run_point
from explorer.sweep.key_frequency_recurrence import KeyFrequencyRecurrence, key_frequency_recurrence
from explorer.sweep.learning_coefficient import (
    LLC_FILE,
    measure_learning_coefficients,
    read_learning_coefficients,
)
from explorer.sweep.measures import StepClock, gradient_noise, sweep_measures
from explorer.sweep.phase import (
    OUTCOME_LABELS,
    PhaseDiagram,
    outcome_names,
    phase_diagram,
    swept_settings,
)
from explorer.sweep.points import SweepPoint, expand_points, point_name
from explorer.sweep.predict import (
    HEAD_SCORES,
    INDUCTION_LOSSES,
    INTERNAL_MEASURES,
    loss_bump_table,
    measure_leads,
    prediction_table,
)
from explorer.sweep.result import Sweep
from explorer.sweep.shipped import (
    CHECKPOINT_RUNS,
    INDUCTION_GRID,
    INDUCTION_SEEDS,
    PHASE_BASE,
    PHASE_GRID,
    PHASE_SEEDS,
    SHIPPED_INDUCTION_SWEEP,
    SHIPPED_SWEEP,
    induction_size_sweep,
    phase_sweep,
    ship_sweep,
)
from explorer.sweep.studies import STUDIES, SweepStudy, study_of
from explorer.sweep.universality import (
    RepresentationSimilarity,
    UnitMatching,
    cka_baseline,
    correlations,
    linear_cka,
    match_units,
    representation_similarity,
)

__all__ = [
    "CHECKPOINT_RUNS",
    "CURVES",
    "HEAD_SCORES",
    "INDUCTION_GRID",
    "INDUCTION_LOSSES",
    "INDUCTION_SEEDS",
    "INTERNAL_MEASURES",
    "LLC_FILE",
    "OUTCOME_LABELS",
    "PHASE_BASE",
    "PHASE_GRID",
    "PHASE_SEEDS",
    "SHIPPED_INDUCTION_SWEEP",
    "SHIPPED_SWEEP",
    "STUDIES",
    "Emergence",
    "KeyFrequencyRecurrence",
    "LLCSampler",
    "PhaseDiagram",
    "RepresentationSimilarity",
    "StepClock",
    "Sweep",
    "SweepCurves",
    "SweepFolder",
    "SweepPoint",
    "SweepProgress",
    "SweepStudy",
    "UnitMatching",
    "cka_baseline",
    "correlations",
    "emergence",
    "expand_points",
    "failure_record",
    "gradient_noise",
    "induction_size_sweep",
    "key_frequency_recurrence",
    "linear_cka",
    "logged_measures",
    "loss_bump_table",
    "match_units",
    "measure_leads",
    "measure_learning_coefficients",
    "outcome_names",
    "phase_diagram",
    "phase_sweep",
    "plan_sweep",
    "point_name",
    "prediction_table",
    "read_learning_coefficients",
    "representation_similarity",
    "run_point",
    "ship_sweep",
    "shutdown_ray",
    "study_of",
    "sweep",
    "sweep_curves",
    "sweep_measures",
    "swept_settings",
]
