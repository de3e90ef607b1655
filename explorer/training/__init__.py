"""Training runs: a loop that logs and checkpoints, and runs on disk.

The grokking study's settings and recipe live in ``explorer.studies.grokking``.

``train(model, loss_fn, steps=...)`` trains any explorer model and returns a ``Run`` (a
folder of safetensors checkpoints, JSON-lines metrics and a manifest) that
``explorer.load(path, step=...)`` and the ``TrainingScrubber`` widget read back.
``train_sae(model, inputs, hook, d_sae=...)`` trains a sparse autoencoder or transcoder with
SAELens's ``SAETrainer`` on a handle's streamed activations, in a resumable ``SAERun``.

>>> from explorer.training import CheckpointSchedule
>>> CheckpointSchedule(n_log=4, every=500).planned(1000)  # log-spaced early, regular later
(0, 1, 10, 100, 500, 1000)
"""

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
from explorer.training.sae_run import SAERun
from explorer.training.sae_stream import ActivationStream
from explorer.training.sae_training import SAE_ARCHITECTURES, train_sae
from explorer.training.schedule import (
    CheckpointSchedule,
    log_spaced,
)

__all__ = [
    "SAE_ARCHITECTURES",
    "ActivationStream",
    "CheckpointSchedule",
    "Curve",
    "OptimizerConfig",
    "Run",
    "RunMetrics",
    "SAERun",
    "classification_eval",
    "classification_loss",
    "has_optimizer_state",
    "last_position_logits",
    "load_optimizer_state",
    "log_spaced",
    "optimizer_files",
    "train",
    "train_sae",
]
