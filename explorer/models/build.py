"""Handles built from what explorer can construct: a config (seeded) or a plain ``nn.Module``.

``build(cfg)`` turns a ``TransformerConfig``, ``MLPConfig`` or ``CNNConfig`` into a fresh
seeded model (checkpoints rebuild their architecture this way); ``wrap(module)`` gives a
plain module hook points (``hooked_module``) and returns its handle.

>>> from explorer.models.config import MLPConfig
>>> build(MLPConfig(input_shape=(4,), hidden=(8,), n_classes=3)).layer_widths
(8,)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from explorer.models import _tl
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.hooked_module import Block, wrap_module


def wrap(
    module: nn.Module,
    *,
    input_shape: Sequence[int] | None = None,
    config: MLPConfig | CNNConfig | None = None,
    name: str | None = None,
    blocks: Sequence[Block] | None = None,
) -> ModelHandle:
    """Give a plain ``nn.Module`` hook points (see ``hooked_module``) and return its handle."""
    hooked = wrap_module(module, blocks)
    hooked.eval()
    return ModelHandle(
        hooked,
        kind="images",
        config=config,
        input_shape=input_shape,
        name=name or type(module).__name__,
    )


def transformer(cfg: TransformerConfig, name: str = "transformer") -> ModelHandle:
    """A toy transformer from a config (seeded by ``cfg.seed``)."""
    model = _tl.build_transformer(cfg)
    return ModelHandle(model, kind="tokens", config=cfg, vocab=cfg.vocab, name=name)


def build_mlp(cfg: MLPConfig) -> nn.Sequential:
    torch.manual_seed(cfg.seed)
    n_in = 1
    for s in cfg.input_shape:
        n_in *= s
    layers: list[nn.Module] = [nn.Flatten()]
    for width in cfg.hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, cfg.n_classes))
    return nn.Sequential(*layers)


def build_cnn(cfg: CNNConfig) -> nn.Sequential:
    torch.manual_seed(cfg.seed)
    c_in, h, w = cfg.input_shape
    layers: list[nn.Module] = []
    for c_out in cfg.channels:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, h, w = c_out, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c_in * h * w, cfg.n_classes)]
    return nn.Sequential(*layers)


def build(cfg: TransformerConfig | MLPConfig | CNNConfig, name: str | None = None) -> ModelHandle:
    """Build any zoo model from its config (used when loading checkpoints)."""
    if isinstance(cfg, TransformerConfig):
        return transformer(cfg, name=name or "transformer")
    module = build_mlp(cfg) if isinstance(cfg, MLPConfig) else build_cnn(cfg)
    return wrap(module, input_shape=cfg.input_shape, config=cfg, name=name or cfg.family)
