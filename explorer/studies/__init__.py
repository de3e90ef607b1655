"""Recipes of the tutorials and studies: settings, training recipes, shipped checkpoints.

Studies sit above ``training`` and ``hypotheses`` and below ``views``: a recipe may train and
test, never draw. Each study is a module, used by name (``studies.auditing.plant``,
``studies.stdlib_lm.build_model``): studies share words such as ``build_model`` and
``ship_run``, so their functions are not flattened into this package.

>>> from explorer import studies
>>> studies.auditing.random_trigger(seed=3).box == studies.auditing.random_trigger(seed=3).box
True
"""

from explorer.studies import (
    adversarial_mnist,
    attribution_benchmark,
    auditing,
    editing,
    finetuning,
    finetuning_units,
    grokking,
    grokking_fourier,
    grokking_live,
    grokking_phases,
    grokking_shipped,
    grokking_table,
    induction_heads,
    kitchen_sink,
    shipped,
    stdlib_lm,
    stdlib_lm_data,
    stdlib_lm_experiments,
    stdlib_sae,
)

__all__ = [
    "adversarial_mnist",
    "attribution_benchmark",
    "auditing",
    "editing",
    "finetuning",
    "finetuning_units",
    "grokking",
    "grokking_fourier",
    "grokking_live",
    "grokking_phases",
    "grokking_shipped",
    "grokking_table",
    "induction_heads",
    "kitchen_sink",
    "shipped",
    "stdlib_lm",
    "stdlib_lm_data",
    "stdlib_lm_experiments",
    "stdlib_sae",
]
