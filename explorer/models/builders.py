"""Handles built from what explorer can construct: a config (seeded) or a plain ``nn.Module``.

``build(cfg)`` turns a ``TransformerConfig``, ``MLPConfig`` or ``CNNConfig`` into a fresh
seeded model (checkpoints rebuild their architecture this way); ``wrap(module)`` gives a
plain module hook points (``hooked_module``) and returns its handle.

>>> from explorer.models.config import MLPConfig
>>> build(MLPConfig(input_shape=(4,), hidden=(8,), n_classes=3)).layer_widths
(8,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from explorer.models import _tl, shapes
from explorer.models import light as _light
from explorer.models.config import CNNConfig, MLPConfig, TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.models.hooked_module import Block, wrap_module

__all__ = ["build", "build_cnn", "build_mlp", "transformer", "wrap"]


def wrap(
    module: nn.Module,
    *,
    input_shape: Sequence[int] | None = None,
    image_shape: Sequence[int] | None = None,
    config: MLPConfig | CNNConfig | None = None,
    name: str | None = None,
    blocks: Sequence[Block] | None = None,
) -> ModelHandle:
    """Give a plain ``nn.Module`` hook points (see ``hooked_module``) and return its handle.

    The input and image shapes are taken, inferred and checked by one forward pass on zeros
    (``models.shapes``): a shape that does not fit fails here, naming the shape expected.
    """
    name = name or type(module).__name__
    input_shape, image = _shapes(module, input_shape, image_shape, name)
    hooked = wrap_module(module, blocks)
    hooked.eval()
    return ModelHandle(
        hooked,
        kind="images",
        config=config,
        input_shape=input_shape,
        image_shape=image,
        name=name,
    )


def _shapes(
    module: nn.Module,
    input_shape: Sequence[int] | None,
    image_shape: Sequence[int] | None,
    name: str,
) -> tuple[tuple[int, ...] | None, tuple[int, int, int] | None]:
    """``(input_shape, image_shape)`` of a plain module: the ones given, checked by a dry
    forward; or inferred (a first Linear on the input gives ``(in_features,)``; an image
    shape, given or inferred from the first Linear's width, is tried as it is, then flat)."""
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if not input_shape or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise ValueError(
                f"input_shape must be a tuple of positive ints (one input, no batch axis), "
                f"got {input_shape!r}"
            )
        image = shapes.check_image_shape(image_shape, input_shape)
        shapes.dry_forward(module, input_shape, name)
        return input_shape, image
    unflattened = shapes.leading_unflatten(module)
    if unflattened is not None and image_shape is None:
        shapes.dry_forward(module, unflattened[0], name)
        return unflattened
    inferred = shapes.infer_input_shape(module)
    if inferred is not None:
        image = shapes.check_image_shape(image_shape, inferred)
        shapes.dry_forward(module, inferred, name)
        return inferred, image
    image = shapes.check_image_shape(image_shape, None)
    if image is None:
        first = shapes.first_layer(module)
        if first is not None and isinstance(first[1], nn.Linear):
            image = shapes.infer_image_shape((int(first[1].in_features),))
        if image is None:
            return None, None
    for candidate in (image, (math.prod(image),)):
        try:
            shapes.dry_forward(module, candidate, name)
        except ValueError:
            continue
        return candidate, image
    if image_shape is None:
        return None, None  # a guess that did not fit: leave the shape open, as before
    raise ValueError(
        f"image_shape={tuple(image_shape)} does not fit {name}: neither images of that shape "
        f"nor {math.prod(image)} flat values run; {shapes.expected_input(module)}"
    )


def transformer(
    cfg: TransformerConfig, name: str = "transformer", *, light: bool = False
) -> ModelHandle:
    """A toy transformer from a config (seeded by ``cfg.seed``).

    ``light=True`` (for weights about to be loaded): an empty ``light.LightTransformer``
    where it covers ``cfg``, so transformer-lens is not imported (see ``light``)."""
    if light and _light.supports(cfg):
        model = _light.build(cfg)
        return ModelHandle(model, kind="tokens", config=cfg, vocab=cfg.vocab, name=name)
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


def build(
    cfg: TransformerConfig | MLPConfig | CNNConfig, name: str | None = None, *, light: bool = False
) -> ModelHandle:
    """Build any zoo model from its config (used when loading checkpoints; ``light`` as in
    ``transformer``)."""
    if isinstance(cfg, TransformerConfig):
        return transformer(cfg, name=name or "transformer", light=light)
    module = build_mlp(cfg) if isinstance(cfg, MLPConfig) else build_cnn(cfg)
    return wrap(module, input_shape=cfg.input_shape, config=cfg, name=name or cfg.family)
