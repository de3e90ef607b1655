"""Pure analysis: tensors and frozen dataclasses in, tensors and frozen dataclasses out.

Nothing here imports a widget or plotting library (a test enforces it); views call these
functions and draw the results.
"""

from explorer.analysis import metrics
from explorer.analysis.ablation import AblationResult, SweepResult, ablate, ablation_sweep
from explorer.analysis.audit import AuditResult, audit
from explorer.analysis.cache import CacheResult, iter_batches, run_with_cache
from explorer.analysis.circuit_svd import CircuitSVD, circuit_svd
from explorer.analysis.head_detection import HeadDetection, detect_heads
from explorer.analysis.head_scores import HeadScores, head_scores
from explorer.analysis.logit_attribution import LogitAttribution, direct_logit_attribution
from explorer.analysis.logit_lens import LogitLens, logit_lens
from explorer.analysis.neuron_logits import NeuronLogitWeights, neuron_logit_weights
from explorer.analysis.neurons import Histogram, TopKExamples, activation_histogram, top_k_examples
from explorer.analysis.patching import PatchingResult, activation_patching, attribution_patching
from explorer.analysis.path_patching import PathPatchingResult, path_patching
from explorer.analysis.token_attribution import TokenAttribution, attribute_tokens
from explorer.analysis.units import Head, Neuron, ResidPosition, Unit, parse_unit

__all__ = [
    "AblationResult",
    "AuditResult",
    "CacheResult",
    "CircuitSVD",
    "Head",
    "HeadDetection",
    "HeadScores",
    "Histogram",
    "LogitAttribution",
    "LogitLens",
    "Neuron",
    "NeuronLogitWeights",
    "PatchingResult",
    "PathPatchingResult",
    "ResidPosition",
    "SweepResult",
    "TokenAttribution",
    "TopKExamples",
    "Unit",
    "ablate",
    "ablation_sweep",
    "activation_histogram",
    "activation_patching",
    "attribute_tokens",
    "attribution_patching",
    "audit",
    "circuit_svd",
    "detect_heads",
    "direct_logit_attribution",
    "head_scores",
    "iter_batches",
    "logit_lens",
    "metrics",
    "neuron_logit_weights",
    "parse_unit",
    "path_patching",
    "run_with_cache",
    "top_k_examples",
]
