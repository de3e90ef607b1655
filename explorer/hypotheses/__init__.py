"""Hypotheses as first-class objects: claims, held-out tests, verdicts, a store, agreement.

>>> from explorer.hypotheses import Hypothesis, NeuronSelectivity, Split, planted
>>> model, data = planted.concept_neuron_model(), planted.concept_examples(200)
>>> h = Hypothesis(
...     claim="neuron 0.3 detects the planted concept",
...     units="neuron 0.3",
...     measure=NeuronSelectivity("auroc"),
...     threshold=0.9,
...     formation=Split(range(100)),
...     held_out=Split(range(100, 200)),
... )
>>> h.test(model, data).status
'supported'
"""

from explorer.hypotheses import planted
from explorer.hypotheses.agreement import (
    Agreement,
    Label,
    agreement,
    agreement_by_unit,
    cohen_kappa,
    fleiss_kappa,
    label_counts,
)
from explorer.hypotheses.baseline import (
    MIN_BASELINE_SETS,
    BaselineDistribution,
    check_n_baseline,
    eligible_units,
    random_unit_sets,
)
from explorer.hypotheses.board_report import (
    board_html,
    export_html,
)
from explorer.hypotheses.bootstrap import (
    MIN_PER_CLASS,
    Evidence,
    TooFewExamples,
    bootstrap_interval,
    check_enough,
    resample_weights,
    statistic,
    too_few,
)
from explorer.hypotheses.calibration import Calibration, PredictionResult
from explorer.hypotheses.examples import (
    Examples,
    Split,
    as_examples,
    check_disjoint,
    split_examples,
)
from explorer.hypotheses.explanation_scores import (
    ExplanationScores,
    explain_units,
    explanation_labels,
    score_explanations,
    unit_activations,
)
from explorer.hypotheses.explanations import (
    Explanation,
    form_explanation,
    regex_explanation,
    simulation_score,
)
from explorer.hypotheses.export import (
    ProjectRecord,
    from_json,
    from_markdown,
    to_json,
    to_markdown,
)
from explorer.hypotheses.hypothesis import (
    Hypothesis,
    measured,
)
from explorer.hypotheses.imports import (
    ImportConflict,
    ImportReport,
    import_hypotheses,
)
from explorer.hypotheses.input_measures import (
    STAMP_SCORES,
    InputStamp,
    unit_free,
)
from explorer.hypotheses.measures import (
    METRICS,
    AblationEffect,
    HeadScore,
    Measure,
    MeasureUnavailable,
    NeuronSelectivity,
    PatchingRecovery,
    UserFunction,
    build_metric,
    check_metric_name,
    measure_from_dict,
    register_measure,
    register_metric,
    registered_measures,
    registered_metrics,
    unregister_measure,
    unregister_metric,
)
from explorer.hypotheses.prediction import (
    LOSS_FEATURES,
    MIN_HELD_OUT_RUNS,
    MIN_PER_OUTCOME,
    Prediction,
    claim_from_dict,
    split_runs,
)
from explorer.hypotheses.predictors import PREDICTORS, FittedPredictor, fit_predictor
from explorer.hypotheses.rerun import pick_data, rerun_project
from explorer.hypotheses.schema import (
    SchemaVersionError,
)
from explorer.hypotheses.store import (
    HypothesisList,
    HypothesisStore,
    StoreCheck,
    StoreDamagedError,
    StoredHypothesis,
    StoreError,
    UnreadableRow,
)
from explorer.hypotheses.sweep_index import put_sweep_runs, sweep_runs
from explorer.hypotheses.verdict import (
    Verdict,
    decide,
    judge,
    verdict_html,
)
from explorer.hypotheses.versioning import (
    known_fields,
    parse_version,
)

__all__ = [
    "LOSS_FEATURES",
    "METRICS",
    "MIN_BASELINE_SETS",
    "MIN_HELD_OUT_RUNS",
    "MIN_PER_CLASS",
    "MIN_PER_OUTCOME",
    "PREDICTORS",
    "STAMP_SCORES",
    "AblationEffect",
    "Agreement",
    "BaselineDistribution",
    "Calibration",
    "Evidence",
    "Examples",
    "Explanation",
    "ExplanationScores",
    "FittedPredictor",
    "HeadScore",
    "Hypothesis",
    "HypothesisList",
    "HypothesisStore",
    "ImportConflict",
    "ImportReport",
    "InputStamp",
    "Label",
    "Measure",
    "MeasureUnavailable",
    "NeuronSelectivity",
    "PatchingRecovery",
    "Prediction",
    "PredictionResult",
    "ProjectRecord",
    "SchemaVersionError",
    "Split",
    "StoreCheck",
    "StoreDamagedError",
    "StoreError",
    "StoredHypothesis",
    "TooFewExamples",
    "UnreadableRow",
    "UserFunction",
    "Verdict",
    "agreement",
    "agreement_by_unit",
    "as_examples",
    "board_html",
    "bootstrap_interval",
    "build_metric",
    "check_disjoint",
    "check_enough",
    "check_metric_name",
    "check_n_baseline",
    "claim_from_dict",
    "cohen_kappa",
    "decide",
    "eligible_units",
    "explain_units",
    "explanation_labels",
    "export_html",
    "fit_predictor",
    "fleiss_kappa",
    "form_explanation",
    "from_json",
    "from_markdown",
    "import_hypotheses",
    "judge",
    "known_fields",
    "label_counts",
    "measure_from_dict",
    "measured",
    "parse_version",
    "pick_data",
    "planted",
    "put_sweep_runs",
    "random_unit_sets",
    "regex_explanation",
    "register_measure",
    "register_metric",
    "registered_measures",
    "registered_metrics",
    "rerun_project",
    "resample_weights",
    "score_explanations",
    "simulation_score",
    "split_examples",
    "split_runs",
    "statistic",
    "sweep_runs",
    "to_json",
    "to_markdown",
    "too_few",
    "unit_activations",
    "unit_free",
    "unregister_measure",
    "unregister_metric",
    "verdict_html",
]
