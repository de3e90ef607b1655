"""Pure analysis: tensors and frozen dataclasses in, tensors and frozen dataclasses out.

Nothing here imports a widget or plotting library (a test enforces it); views call these
functions and draw the results.
"""

from explorer.analysis import metrics
from explorer.analysis.ablation import AblationResult, SweepResult, ablate, ablation_sweep
from explorer.analysis.cache import CacheResult, iter_batches, run_with_cache
from explorer.analysis.head_scores import HeadScores, head_scores
from explorer.analysis.logit_attribution import LogitAttribution, direct_logit_attribution
from explorer.analysis.logit_lens import LogitLens, logit_lens
from explorer.analysis.neurons import Histogram, TopKExamples, activation_histogram, top_k_examples
from explorer.analysis.patching import PatchingResult, activation_patching, attribution_patching
from explorer.analysis.units import Head, Neuron, ResidPosition, Unit, parse_unit

__all__ = [
    "AblationResult",
    "CacheResult",
    "Head",
    "HeadScores",
    "Histogram",
    "LogitAttribution",
    "LogitLens",
    "Neuron",
    "PatchingResult",
    "ResidPosition",
    "SweepResult",
    "TopKExamples",
    "Unit",
    "ablate",
    "ablation_sweep",
    "activation_histogram",
    "activation_patching",
    "attribution_patching",
    "direct_logit_attribution",
    "head_scores",
    "iter_batches",
    "logit_lens",
    "metrics",
    "parse_unit",
    "run_with_cache",
    "top_k_examples",
]
