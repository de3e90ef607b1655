"""Training runs: a loop that logs and checkpoints, and runs on disk.

The grokking study's settings and recipe live in ``explorer.studies.grokking``.

``train(model, loss_fn, steps=...)`` trains any explorer model and returns a ``Run`` (a
folder of safetensors checkpoints, JSON-lines metrics and a manifest) that
``explorer.load(path, step=...)`` and the ``TrainingScrubber`` widget read back.
"""

from explorer.training.loop import OptimizerConfig, train
from explorer.training.losses import classification_eval, classification_loss, last_position_logits
from explorer.training.run import Curve, Run, RunMetrics
from explorer.training.schedule import CheckpointSchedule, log_spaced

__all__ = [
    "CheckpointSchedule",
    "Curve",
    "OptimizerConfig",
    "Run",
    "RunMetrics",
    "classification_eval",
    "classification_loss",
    "last_position_logits",
    "log_spaced",
    "train",
]
