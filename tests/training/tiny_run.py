"""A tiny MLP run the run-folder tests share: 12 examples, 3 classes, a checkpoint every
``every`` steps."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from explorer.models import zoo
from explorer.models.config import MLPConfig
from explorer.training import CheckpointSchedule, OptimizerConfig, train

X = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
Y = torch.arange(12) % 3


def tiny_model(seed: int = 0):
    return zoo.build(MLPConfig(input_shape=(4,), hidden=(8,), n_classes=3, seed=seed), name="tiny")


def tiny_loss(model, step):
    return F.cross_entropy(model(X), Y)


def train_tiny(path: Path, steps: int, every: int, **kwargs):
    return train(
        tiny_model(),
        tiny_loss,
        steps=steps,
        run=path,
        optimizer=OptimizerConfig(lr=0.05),
        checkpoints=CheckpointSchedule(n_log=0, every=every),
        eval_every=1,
        progress=False,
        **kwargs,
    )
