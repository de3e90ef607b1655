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

from explorer.hypotheses.agreement import (
    Agreement,
    Label,
    agreement,
    agreement_by_unit,
    cohen_kappa,
    fleiss_kappa,
    label_counts,
)
from explorer.hypotheses.examples import Examples, Split, split_examples
from explorer.hypotheses.export import (
    ProjectRecord,
    from_json,
    from_markdown,
    to_json,
    to_markdown,
)
from explorer.hypotheses.hypothesis import Hypothesis, random_unit_sets
from explorer.hypotheses.imports import ImportConflict, ImportReport
from explorer.hypotheses.measures import (
    METRICS,
    AblationEffect,
    HeadScore,
    MeasureUnavailable,
    NeuronSelectivity,
    PatchingRecovery,
    UserFunction,
    register_measure,
    register_metric,
    registered_measures,
    registered_metrics,
    unregister_measure,
    unregister_metric,
)
from explorer.hypotheses.rerun import pick_data, rerun_project
from explorer.hypotheses.store import HypothesisStore, StoredHypothesis, UnreadableRow
from explorer.hypotheses.verdict import Verdict

__all__ = [
    "METRICS",
    "AblationEffect",
    "Agreement",
    "Examples",
    "HeadScore",
    "Hypothesis",
    "HypothesisStore",
    "ImportConflict",
    "ImportReport",
    "Label",
    "MeasureUnavailable",
    "NeuronSelectivity",
    "PatchingRecovery",
    "ProjectRecord",
    "Split",
    "StoredHypothesis",
    "UnreadableRow",
    "UserFunction",
    "Verdict",
    "agreement",
    "agreement_by_unit",
    "cohen_kappa",
    "fleiss_kappa",
    "from_json",
    "from_markdown",
    "label_counts",
    "pick_data",
    "random_unit_sets",
    "register_measure",
    "register_metric",
    "registered_measures",
    "registered_metrics",
    "rerun_project",
    "split_examples",
    "to_json",
    "to_markdown",
    "unregister_measure",
    "unregister_metric",
]
