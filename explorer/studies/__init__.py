"""Recipes of the tutorials and studies: settings, training recipes, shipped checkpoints.

Studies sit above ``training`` and ``hypotheses`` and below ``views``: a recipe may train and
test, never draw.

>>> from explorer.studies import random_trigger
>>> random_trigger(seed=3).box == random_trigger(seed=3).box  # drawn from the seed alone
True
"""

from explorer.studies.attribution_benchmark import (
    AttributionBenchmark,
    benchmark_attributions,
    perturbation_curves,
    randomize_weights,
    spearman,
)
from explorer.studies.auditing import (
    Planted,
    Trigger,
    add_trigger,
    attack_success,
    box_iou,
    load_truth,
    make_cnn,
    make_mlp,
    patch_enrichment,
    plant,
    random_trigger,
    save_truth,
)
from explorer.studies.editing import (
    EditComparison,
    fine_tune_units,
    repair_set,
    targeted_edit,
)
from explorer.studies.grokking import (
    GrokkingProgress,
    GrokkingSetting,
    accuracy_without_frequencies,
    all_pair_logits,
    embedding_sparsity,
    grokking_data,
    grokking_progress,
    grokking_summary,
    restricted_accuracy,
    train_grokking,
)
from explorer.studies.induction import next_token_training_loss
from explorer.studies.kitchen_sink import (
    fit,
    kitchen_sink_split,
    shifted,
)
from explorer.studies.shipped import (
    Recipe,
    parameter_norms,
    rebuild,
    train_kitchen_sink_cnn,
    train_kitchen_sink_mlp,
    train_quickstart_induction,
    train_quickstart_mnist_mlp,
)
from explorer.studies.stdlib_lm import (
    StdlibLM,
    StdlibLMData,
    StdlibLMSetting,
    TokenWindows,
    build_model,
    copy_spans,
    load_stdlib_lm,
    next_token_loss,
    ship_run,
    stdlib_lm_data,
    train_stdlib_lm,
)
from explorer.studies.stdlib_lm_experiments import (
    ConceptNeurons,
    concept_mask,
    induction_examples,
    induction_head_dla,
    last_token_examples,
    neuron_concept_auroc,
    pick_induction_prediction,
    repeated_text,
    top_example_text,
)

__all__ = [
    "AttributionBenchmark",
    "ConceptNeurons",
    "EditComparison",
    "GrokkingProgress",
    "GrokkingSetting",
    "Planted",
    "Recipe",
    "StdlibLM",
    "StdlibLMData",
    "StdlibLMSetting",
    "TokenWindows",
    "Trigger",
    "accuracy_without_frequencies",
    "add_trigger",
    "all_pair_logits",
    "attack_success",
    "benchmark_attributions",
    "box_iou",
    "build_model",
    "concept_mask",
    "copy_spans",
    "embedding_sparsity",
    "fine_tune_units",
    "fit",
    "grokking_data",
    "grokking_progress",
    "grokking_summary",
    "induction_examples",
    "induction_head_dla",
    "kitchen_sink_split",
    "last_token_examples",
    "load_stdlib_lm",
    "load_truth",
    "make_cnn",
    "make_mlp",
    "neuron_concept_auroc",
    "next_token_loss",
    "next_token_training_loss",
    "parameter_norms",
    "patch_enrichment",
    "perturbation_curves",
    "pick_induction_prediction",
    "plant",
    "random_trigger",
    "randomize_weights",
    "rebuild",
    "repair_set",
    "repeated_text",
    "restricted_accuracy",
    "save_truth",
    "shifted",
    "ship_run",
    "spearman",
    "stdlib_lm_data",
    "targeted_edit",
    "top_example_text",
    "train_grokking",
    "train_kitchen_sink_cnn",
    "train_kitchen_sink_mlp",
    "train_quickstart_induction",
    "train_quickstart_mnist_mlp",
    "train_stdlib_lm",
]
