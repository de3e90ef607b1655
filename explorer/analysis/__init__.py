"""Pure analysis: tensors and frozen dataclasses in, tensors and frozen dataclasses out.

The public surface is curated (docs/api.md): about 35 verbs that follow
``verb(model, inputs, *, ...)``, their result types, the unit types, and five named
sub-namespaces for what is not a verb on a model:

- ``metrics``: the ``metric=`` values (metric factories, ``recovery``);
- ``units``: the unit vocabulary (parse, enumerate and check units against a model);
- ``fourier``: Fourier tools for Z_p (grokking) on tensors;
- ``progress``: readers of logged training curves and progress statistics;
- ``color_scales``: a figure's color scale from a result's values.

Names that were exported here before issue 24 still import for one release, with a
``DeprecationWarning`` naming where they live now. Nothing here imports a widget or
plotting library (a test enforces it); views call these functions and draw the results.

>>> from explorer.analysis import head_scores
>>> from explorer.data import repeated_tokens
>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=2, d_vocab=16, n_ctx=16)
>>> scores = head_scores(model, repeated_tokens(4, 6, 16, seed=0))
>>> tuple(scores.get("induction").shape)  # [layer, head]
(2, 2)
"""

import importlib

from explorer._deprecate import moved_names
from explorer.analysis import color_scales, fourier, metrics, progress, units
from explorer.analysis.ablation import (
    AblationResult,
    SweepResult,
    ablate,
    ablate_sets,
    ablation_sweep,
)
from explorer.analysis.attribution import (
    CAPTUM_METHODS,
    AttributionMaps,
    CaptumMethod,
    attribute,
)
from explorer.analysis.attribution_checks import perturbation_curves
from explorer.analysis.audit_result import AuditResult, Meter
from explorer.analysis.backdoor_audit import (
    audit,
    weight_anomaly,
)
from explorer.analysis.cache import (
    CacheResult,
    run_with_cache,
)
from explorer.analysis.circuit_svd import (
    CircuitSVD,
    circuit_svd,
)
from explorer.analysis.comparison import (
    Comparison,
    compare,
)
from explorer.analysis.composition import (
    CompositionScores,
    CopyingScores,
    composition_scores,
    ov_copying_scores,
)
from explorer.analysis.curves import PhaseChange
from explorer.analysis.editing import (
    Confusion,
    confusion,
    error_attribution,
    predict,
    scale_units,
)
from explorer.analysis.feature_steering import SteeringResult, steer
from explorer.analysis.feature_units import Feature
from explorer.analysis.feature_vis import (
    FeatureVisualization,
    Regularization,
    maximize_activation,
)
from explorer.analysis.head_detection import (
    HeadDetection,
    detect_heads,
)
from explorer.analysis.head_scores import (
    HeadScores,
    attention_patterns,
    head_scores,
)
from explorer.analysis.induction import (
    InductionCircuit,
    InductionProgress,
    find_induction_circuit,
    induction_progress,
)
from explorer.analysis.logit_attribution import (
    LogitAttribution,
    direct_logit_attribution,
)
from explorer.analysis.logit_lens import (
    LogitLens,
    logit_lens,
)
from explorer.analysis.neuron_effects import (
    OutputEffect,
    zero_ablation_effect,
)
from explorer.analysis.neuron_logits import (
    NeuronLogitWeights,
    neuron_logit_weights,
)
from explorer.analysis.neurons import (
    ExampleWindows,
    Histogram,
    TopKExamples,
    activation_histogram,
    example_windows,
    layer_activations,
    top_k_examples,
)
from explorer.analysis.patching import (
    PatchingResult,
    activation_patching,
    attribution_patching,
)
from explorer.analysis.path_patching import (
    PathPatchingResult,
    path_patching,
)
from explorer.analysis.probes import (
    Probe,
    ProbeResults,
    linear_probes,
)
from explorer.analysis.token_attribution import (
    TokenAttribution,
    attribute_tokens,
)
from explorer.analysis.trigger_examples import (
    StampedExamples,
    TriggerPlace,
    stamped_examples,
    trigger_place,
)
from explorer.analysis.units import (
    Head,
    Neuron,
    ResidPosition,
    Unit,
    parse_unit,
)
from explorer.analysis.weight_outliers import (
    WeightOutliers,
    weight_outliers,
)

__all__ = [
    "CAPTUM_METHODS",
    "AblationResult",
    "AttributionMaps",
    "AuditResult",
    "CacheResult",
    "CaptumMethod",
    "CircuitSVD",
    "Comparison",
    "CompositionScores",
    "Confusion",
    "CopyingScores",
    "ExampleWindows",
    "Feature",
    "FeatureVisualization",
    "Head",
    "HeadDetection",
    "HeadScores",
    "Histogram",
    "InductionCircuit",
    "InductionProgress",
    "LogitAttribution",
    "LogitLens",
    "Meter",
    "Neuron",
    "NeuronLogitWeights",
    "OutputEffect",
    "PatchingResult",
    "PathPatchingResult",
    "PhaseChange",
    "Probe",
    "ProbeResults",
    "Regularization",
    "ResidPosition",
    "StampedExamples",
    "SteeringResult",
    "SweepResult",
    "TokenAttribution",
    "TopKExamples",
    "TriggerPlace",
    "Unit",
    "WeightOutliers",
    "ablate",
    "ablate_sets",
    "ablation_sweep",
    "activation_histogram",
    "activation_patching",
    "attention_patterns",
    "attribute",
    "attribute_tokens",
    "attribution_patching",
    "audit",
    "circuit_svd",
    "color_scales",
    "compare",
    "composition_scores",
    "confusion",
    "detect_heads",
    "direct_logit_attribution",
    "error_attribution",
    "example_windows",
    "find_induction_circuit",
    "fourier",
    "head_scores",
    "induction_progress",
    "layer_activations",
    "linear_probes",
    "logit_lens",
    "maximize_activation",
    "metrics",
    "neuron_logit_weights",
    "ov_copying_scores",
    "parse_unit",
    "path_patching",
    "perturbation_curves",
    "predict",
    "progress",
    "run_with_cache",
    "scale_units",
    "stamped_examples",
    "steer",
    "top_k_examples",
    "trigger_place",
    "units",
    "weight_anomaly",
    "weight_outliers",
    "zero_ablation_effect",
]

# Exported here before issue 24, by the module they live in now. Those in a sub-namespace
# moved there; the others are internal helpers (importable from their module, not public).
_MOVED = {
    "attribution": "check_images check_targets sobel_edges",
    "audit_scores": "mad_index",
    "cache": "iter_batches",
    "circuit_svd": "low_rank_svd",
    "color_scales": "ColorScale head_score_color_scale patching_color_scale path_patching_color_scale",
    "composition": "composition_score head_circuits random_composition_baseline",
    "editing": "unit_weight_masks",
    "feature_vis": "gaussian_blur mean_pairwise_cosine pairwise_cosine total_variation",
    "fourier": (
        "FourierBasis FourierSpectrum KeyFrequencies excluded_loss fourier_basis "
        "fourier_spectrum key_frequencies restricted_logits restricted_loss "
        "sum_directions"
    ),
    "head_detection": "detection_pattern",
    "head_scores": "repeat_period score_pattern target_mask uniform_baseline",
    "induction": "heads_above",
    "interventions": "clean_metric run_interventions run_sweep sweep_base_hooks",
    "logit_attribution": (
        "describe_direction norm_direction resolve_positions resolve_tokens run_at_positions"
    ),
    "metrics": "in_context_learning_score recovery repeated_half_advantage",
    "neuron_effects": "class_outputs input_image output_effect",
    "neuron_logits": "mean_final_scale",
    "neurons": "histogram unit_values",
    "patching": "grid_axes supports",
    "probes": "default_probe_hooks fit_probe",
    "progress": (
        "accuracy_without_frequencies detect_phase_change first_crossing gini "
        "restricted_accuracy weight_norm"
    ),
    "attribution_checks": "randomize_weights spearman",
    "units": ("all_heads all_neurons check_unit layer_table neuron_index unit_slice units_of_type"),
}


def _where(module: str, name: str) -> str:
    public = name in importlib.import_module(f"explorer.analysis.{module}").__all__
    note = "" if public else " (internal: not public API)"
    return f"explorer.analysis.{module}.{name}{note}"


def _getter(module: str, name: str):
    return lambda: getattr(importlib.import_module(f"explorer.analysis.{module}"), name)


_MOVED_FROM = {name: module for module, names in _MOVED.items() for name in names.split()}


__getattr__ = moved_names(
    "explorer.analysis",
    {
        **{
            name: (_where(module, name), _getter(module, name))
            for name, module in _MOVED_FROM.items()
        },
        **{
            name: (
                f"explorer.studies.grokking_phases.{name}",
                lambda n=name: getattr(progress._phases(), n),
            )
            for name in ("Phase", "Phases", "detect_phases")
        },
    },
)
