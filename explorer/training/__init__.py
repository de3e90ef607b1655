"""Training runs: a loop that logs and checkpoints, runs on disk, and the grokking study.

``train(model, loss_fn, steps=...)`` trains any explorer model and returns a ``Run`` (a
folder of safetensors checkpoints, JSON-lines metrics and a manifest) that
``explorer.load(path, step=...)`` and the ``TrainingScrubber`` widget read back.

>>> from explorer.training import CI_SETTING, grokking_data
>>> data = grokking_data(CI_SETTING)  # a + b mod 53, half the pairs for training
>>> len(data.train_labels) + len(data.test_labels) == 53 * 53
True
"""

from explorer.training.grokking import (
    CI_SETTING,
    DEFAULT_SETTING,
    PAPER_SETTING,
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
from explorer.training.loop import (
    OptimizerConfig,
    train,
)
from explorer.training.losses import (
    classification_eval,
    classification_loss,
    last_position_logits,
)
from explorer.training.optim_state import (
    has_optimizer_state,
    load_optimizer_state,
    optimizer_files,
)
from explorer.training.run import (
    Curve,
    Run,
    RunMetrics,
)
from explorer.training.schedule import (
    CheckpointSchedule,
    log_spaced,
)

__all__ = [
    "CI_SETTING",
    "DEFAULT_SETTING",
    "PAPER_SETTING",
    "CheckpointSchedule",
    "Curve",
    "GrokkingProgress",
    "GrokkingSetting",
    "OptimizerConfig",
    "Run",
    "RunMetrics",
    "accuracy_without_frequencies",
    "all_pair_logits",
    "classification_eval",
    "classification_loss",
    "embedding_sparsity",
    "grokking_data",
    "grokking_progress",
    "grokking_summary",
    "has_optimizer_state",
    "last_position_logits",
    "load_optimizer_state",
    "log_spaced",
    "optimizer_files",
    "restricted_accuracy",
    "train",
    "train_grokking",
]
