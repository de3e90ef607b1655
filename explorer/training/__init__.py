"""Training runs: a loop that logs and checkpoints, runs on disk, and the grokking study.

``train(model, loss_fn, steps=...)`` trains any explorer model and returns a ``Run`` (a
folder of safetensors checkpoints, JSON-lines metrics and a manifest) that
``explorer.load(path, step=...)`` and the ``TrainingScrubber`` widget read back.
"""

from explorer.training.grokking import (
    CI_SETTING,
    DEFAULT_SETTING,
    PAPER_SETTING,
    GrokkingProgress,
    GrokkingSetting,
    grokking_data,
    grokking_progress,
    grokking_summary,
    train_grokking,
)
from explorer.training.loop import OptimizerConfig, train
from explorer.training.losses import classification_eval, classification_loss, last_position_logits
from explorer.training.run import Curve, Run, RunMetrics
from explorer.training.schedule import CheckpointSchedule, log_spaced

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
    "classification_eval",
    "classification_loss",
    "grokking_data",
    "grokking_progress",
    "grokking_summary",
    "last_position_logits",
    "log_spaced",
    "train",
    "train_grokking",
]
