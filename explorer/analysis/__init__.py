"""Pure analysis: tensors and frozen dataclasses in, tensors and frozen dataclasses out.

Nothing here imports a widget or plotting library (a test enforces it); views call these
functions and draw the results.

>>> from explorer.analysis import head_scores
>>> from explorer.data import repeated_tokens
>>> from explorer.models import zoo
>>> model = zoo.attention_only_transformer(n_layers=2, d_model=32, n_heads=2, d_vocab=16, n_ctx=16)
>>> scores = head_scores(model, repeated_tokens(4, 6, 16, seed=0))
>>> tuple(scores.get("induction").shape)  # [layer, head]
(2, 2)
"""

from explorer.analysis import metrics
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
    check_images,
    check_targets,
    sobel_edges,
)
from explorer.analysis.audit_result import AuditResult, Meter, apply_trigger
from explorer.analysis.backdoor_audit import (
    audit,
    mad_index,
    weight_anomaly,
)
from explorer.analysis.cache import (
    CacheResult,
    iter_batches,
    run_with_cache,
)
from explorer.analysis.circuit_svd import (
    CircuitSVD,
    circuit_svd,
    low_rank_svd,
)
from explorer.analysis.color_scales import (
    ColorScale,
    head_score_color_scale,
    patching_color_scale,
    path_patching_color_scale,
)
from explorer.analysis.composition import (
    CompositionScores,
    CopyingScores,
    composition_score,
    composition_scores,
    head_circuits,
    ov_copying_scores,
    random_composition_baseline,
)
from explorer.analysis.editing import (
    Confusion,
    confusion,
    error_attribution,
    predict,
    scale_units,
    unit_weight_masks,
)
from explorer.analysis.feature_vis import (
    FeatureVisualization,
    Regularization,
    gaussian_blur,
    maximize_activation,
    mean_pairwise_cosine,
    pairwise_cosine,
    total_variation,
)
from explorer.analysis.fourier import (
    FourierBasis,
    FourierSpectrum,
    KeyFrequencies,
    excluded_loss,
    fourier_basis,
    fourier_spectrum,
    key_frequencies,
    restricted_logits,
    restricted_loss,
    sum_directions,
)
from explorer.analysis.head_detection import (
    HeadDetection,
    detect_heads,
    detection_pattern,
)
from explorer.analysis.head_scores import (
    HeadScores,
    attention_patterns,
    head_scores,
    repeat_period,
    score_pattern,
    target_mask,
    uniform_baseline,
)
from explorer.analysis.induction import (
    InductionCircuit,
    InductionProgress,
    PhaseChange,
    detect_phase_change,
    find_induction_circuit,
    heads_above,
    in_context_learning_score,
    induction_progress,
    repeated_half_advantage,
)
from explorer.analysis.interventions import (
    clean_metric,
    run_interventions,
    run_sweep,
    sweep_base_hooks,
)
from explorer.analysis.logit_attribution import (
    LogitAttribution,
    describe_direction,
    direct_logit_attribution,
    norm_direction,
    resolve_positions,
    resolve_tokens,
    run_at_positions,
)
from explorer.analysis.logit_lens import (
    LogitLens,
    logit_lens,
)
from explorer.analysis.mask_shapes import MaskShape, connected_components, mask_shape
from explorer.analysis.neuron_effects import (
    OutputEffect,
    class_outputs,
    input_image,
    output_effect,
    zero_ablation_effect,
)
from explorer.analysis.neuron_logits import (
    NeuronLogitWeights,
    mean_final_scale,
    neuron_logit_weights,
)
from explorer.analysis.neurons import (
    ExampleWindows,
    Histogram,
    TopKExamples,
    activation_histogram,
    example_windows,
    histogram,
    layer_activations,
    top_k_examples,
    unit_values,
)
from explorer.analysis.patching import (
    PatchingResult,
    activation_patching,
    attribution_patching,
    grid_axes,
    recovery,
    supports,
)
from explorer.analysis.path_patching import (
    PathPatchingResult,
    path_patching,
)
from explorer.analysis.probes import (
    Probe,
    ProbeResults,
    default_probe_hooks,
    fit_probe,
    linear_probes,
)
from explorer.analysis.progress import (
    Phase,
    Phases,
    detect_phases,
    first_crossing,
    gini,
    weight_norm,
)
from explorer.analysis.token_attribution import (
    TokenAttribution,
    attribute_tokens,
)
from explorer.analysis.trigger_examples import (
    StampedExamples,
    stamped_examples,
)
from explorer.analysis.units import (
    Head,
    Neuron,
    ResidPosition,
    Unit,
    all_heads,
    all_neurons,
    check_unit,
    layer_table,
    neuron_index,
    parse_unit,
    unit_slice,
    units_of_type,
)
from explorer.analysis.weight_outliers import (
    WeightOutliers,
    first_layer_pixel_norms,
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
    "ColorScale",
    "CompositionScores",
    "Confusion",
    "CopyingScores",
    "ExampleWindows",
    "FeatureVisualization",
    "FourierBasis",
    "FourierSpectrum",
    "Head",
    "HeadDetection",
    "HeadScores",
    "Histogram",
    "InductionCircuit",
    "InductionProgress",
    "KeyFrequencies",
    "LogitAttribution",
    "LogitLens",
    "MaskShape",
    "Meter",
    "Neuron",
    "NeuronLogitWeights",
    "OutputEffect",
    "PatchingResult",
    "PathPatchingResult",
    "Phase",
    "PhaseChange",
    "Phases",
    "Probe",
    "ProbeResults",
    "Regularization",
    "ResidPosition",
    "StampedExamples",
    "SweepResult",
    "TokenAttribution",
    "TopKExamples",
    "Unit",
    "WeightOutliers",
    "ablate",
    "ablate_sets",
    "ablation_sweep",
    "activation_histogram",
    "activation_patching",
    "all_heads",
    "all_neurons",
    "apply_trigger",
    "attention_patterns",
    "attribute",
    "attribute_tokens",
    "attribution_patching",
    "audit",
    "check_images",
    "check_targets",
    "check_unit",
    "circuit_svd",
    "class_outputs",
    "clean_metric",
    "composition_score",
    "composition_scores",
    "confusion",
    "connected_components",
    "default_probe_hooks",
    "describe_direction",
    "detect_heads",
    "detect_phase_change",
    "detect_phases",
    "detection_pattern",
    "direct_logit_attribution",
    "error_attribution",
    "example_windows",
    "excluded_loss",
    "find_induction_circuit",
    "first_crossing",
    "first_layer_pixel_norms",
    "fit_probe",
    "fourier_basis",
    "fourier_spectrum",
    "gaussian_blur",
    "gini",
    "grid_axes",
    "head_circuits",
    "head_score_color_scale",
    "head_scores",
    "heads_above",
    "histogram",
    "in_context_learning_score",
    "induction_progress",
    "input_image",
    "iter_batches",
    "key_frequencies",
    "layer_activations",
    "layer_table",
    "linear_probes",
    "logit_lens",
    "low_rank_svd",
    "mad_index",
    "mask_shape",
    "maximize_activation",
    "mean_final_scale",
    "mean_pairwise_cosine",
    "metrics",
    "neuron_index",
    "neuron_logit_weights",
    "norm_direction",
    "output_effect",
    "ov_copying_scores",
    "pairwise_cosine",
    "parse_unit",
    "patching_color_scale",
    "path_patching",
    "path_patching_color_scale",
    "predict",
    "random_composition_baseline",
    "recovery",
    "repeat_period",
    "repeated_half_advantage",
    "resolve_positions",
    "resolve_tokens",
    "restricted_logits",
    "restricted_loss",
    "run_at_positions",
    "run_interventions",
    "run_sweep",
    "run_with_cache",
    "scale_units",
    "score_pattern",
    "sobel_edges",
    "stamped_examples",
    "sum_directions",
    "supports",
    "sweep_base_hooks",
    "target_mask",
    "top_k_examples",
    "total_variation",
    "uniform_baseline",
    "unit_slice",
    "unit_values",
    "unit_weight_masks",
    "units_of_type",
    "weight_anomaly",
    "weight_norm",
    "weight_outliers",
    "zero_ablation_effect",
]
