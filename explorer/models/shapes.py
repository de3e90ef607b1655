"""Input shapes of plain image models: what the model takes, and how to show it as an image.

A model's ``input_shape`` is the shape of one input as its ``forward`` takes it: ``(1, 28,
28)`` for a CNN or an MLP that flattens, ``(784,)`` for an MLP whose first layer is a
``Linear`` on flat pixels. Image tools (attribution maps, feature visualisation, weight
images, top examples, audits) work on ``image_shape``, always ``(C, H, W)``; the handle
reshapes between the two. ``image_shape`` is taken from ``input_shape`` when that is
already ``(C, H, W)``, inferred for a flat input of ``H*W`` (one channel, square) or
``3*H*W`` (three channels, square) values, or given to ``explorer.load(image_shape=...)``.

At load, one forward pass on zeros of ``input_shape`` (``dry_forward``) proves the shape
fits; a wrong one fails there with a sentence naming what the first layer expects, not
later with a matrix-multiplication error inside some tool.

>>> infer_image_shape((784,)), infer_image_shape((3072,)), infer_image_shape((10,))
((1, 28, 28), (3, 32, 32), None)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import fx, nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _square(n: int) -> int | None:
    side = math.isqrt(n)
    return side if side >= 2 and side * side == n else None


def infer_image_shape(input_shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    """``(C, H, W)`` for an input of that shape, or of ``H*W`` / ``3*H*W`` flat values with
    ``H == W``; None when no image shape follows from it."""
    if input_shape is None:
        return None
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, *shape)  # type: ignore[return-value]
    if len(shape) != 1:
        return None
    (n,) = shape
    if (side := _square(n)) is not None:
        return (1, side, side)
    if n % 3 == 0 and (side := _square(n // 3)) is not None:
        return (3, side, side)
    return None


def check_image_shape(
    image_shape: Sequence[int] | None, input_shape: Sequence[int] | None
) -> tuple[int, int, int] | None:
    """The image shape to use: the one given (checked to hold as many values as
    ``input_shape``) or the inferred one."""
    if image_shape is None:
        return infer_image_shape(input_shape)
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(
            f"image_shape must be (channels, height, width) of positive ints, got {image_shape!r}"
        )
    if input_shape is not None and math.prod(shape) != math.prod(input_shape):
        raise ValueError(
            f"image_shape {shape} holds {math.prod(shape)} values but input_shape "
            f"{tuple(input_shape)} holds {math.prod(input_shape)}: an image must reshape "
            "to one input"
        )
    return shape  # type: ignore[return-value]


def first_layer(module: nn.Module) -> tuple[str, nn.Module, bool] | None:
    """``(path, layer, reads_input_directly)`` of the first Linear/Conv the forward calls
    (traced with ``torch.fx``; registration order, direct unknown (False), if untraceable)."""
    named = dict(module.named_modules())
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:
        for path, layer in named.items():
            if isinstance(layer, _WEIGHTED):
                return path, layer, False
        return None
    inputs = {n for n in graph.nodes if n.op == "placeholder"}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(named.get(str(node.target)), _WEIGHTED):
            return str(node.target), named[str(node.target)], node.args[:1] == (next(iter(inputs)),)
    return None


def infer_input_shape(module: nn.Module) -> tuple[int, ...] | None:
    """``(in_features,)`` when the model's first call is a Linear on its input; else None
    (a flatten, a conv or anything else first leaves the shape open)."""
    found = first_layer(module)
    if found is not None and found[2] and isinstance(found[1], nn.Linear):
        return (int(found[1].in_features),)
    return None


def leading_unflatten(module: nn.Module) -> tuple[tuple[int, ...], tuple[int, int, int]] | None:
    """``(input_shape, image_shape)`` when the model's first step reshapes a flat input into
    an image: an ``nn.Unflatten(1, (C, H, W))`` module, or ``x.view``/``x.reshape``/
    ``x.unflatten`` with constant sizes (``x.view(-1, 1, 28, 28)``). None otherwise.

    >>> net = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 4, 3), nn.Flatten())
    >>> leading_unflatten(net)
    ((784,), (1, 28, 28))
    """
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception:
        return None
    named = dict(module.named_modules())
    placeholder = next((n for n in graph.nodes if n.op == "placeholder"), None)
    users = list(placeholder.users) if placeholder is not None else []
    if len(users) != 1:
        return None
    node = users[0]
    size: tuple = ()
    if node.op == "call_module" and isinstance(named.get(str(node.target)), nn.Unflatten):
        layer = named[str(node.target)]
        if layer.dim in (1, -1):
            size = tuple(layer.unflattened_size)
    elif node.op == "call_method" and node.target in ("view", "reshape"):
        dims = node.args[1:] if len(node.args) > 2 else node.args[1] if len(node.args) == 2 else ()
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        size = dims[1:] if dims and dims[0] == -1 else ()
    elif node.op == "call_method" and node.target == "unflatten" and node.args[1] in (1, -1):
        size = tuple(node.args[2])
    if len(size) != 3 or not all(isinstance(v, int) and v > 0 for v in size):
        return None
    return (math.prod(size),), size  # type: ignore[return-value]


def expected_input(module: nn.Module) -> str:
    """A sentence on what the first layer takes, for error messages."""
    found = first_layer(module)
    if found is None:
        return "explorer found no Linear or Conv layer to say which shape it expects"
    path, layer, direct = found
    if isinstance(layer, nn.Linear):
        n = int(layer.in_features)
        image = infer_image_shape((n,))
        if direct:
            return f"its first layer {path!r} is Linear(in_features={n}) on the input: pass input_shape=({n},)"
        hint = f" such as {image}" if image is not None else ""
        return (
            f"its first layer {path!r} is Linear(in_features={n}): pass an input_shape whose "
            f"values reshape to {n}{hint}, or ({n},)"
        )
    c = int(layer.in_channels)  # type: ignore[union-attr]
    dims = "C, H, W" if isinstance(layer, nn.Conv2d) else "C, L"
    return f"its first layer {path!r} is {type(layer).__name__}(in_channels={c}): pass input_shape=({dims}) with C = {c}"


@torch.no_grad()
def dry_forward(module: nn.Module, input_shape: Sequence[int], name: str) -> torch.Tensor:
    """Run ``module`` once on zeros ``[1, *input_shape]`` (in eval mode); a failure raises a
    ValueError naming the shape given and the shape expected."""
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = module.training
    module.eval()
    try:
        out = module(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    except (RuntimeError, ValueError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"input_shape={tuple(input_shape)} does not fit {name}: a forward pass on one input "
            f"of that shape failed ({first[:200]}); {expected_input(module)}"
        ) from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        got = f"shape {list(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"input_shape={tuple(input_shape)} does not fit {name}: one input of that shape "
            f"gave outputs of {got}, not [1, classes]; {expected_input(module)}"
        )
    return out
