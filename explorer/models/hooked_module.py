"""Hook points for plain PyTorch models, named in the transformer-lens vocabulary.

A model written without hooks (an MNIST MLP or CNN) is wrapped, not rewritten: each
hidden layer, a Linear or Conv module followed by an activation module, becomes block
``i`` with ``blocks.{i}.mlp.hook_pre`` (the layer's output) and ``blocks.{i}.mlp.hook_post``
(the activation's output), exactly as an MLP layer in a transformer. The input is
``hook_input``, the last Linear's output ``hook_logits``. Units of a conv block are its
channels. The wrapped module is unchanged except that in-place activations are made
out-of-place (an in-place ReLU would overwrite a cached pre-activation).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from explorer.models._tl import hook_point_classes

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
ACTIVATIONS = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.Softplus,
)
PASS_THROUGH = (nn.Dropout, nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Block:
    """One hidden layer found in a plain module: where its pre- and post-activations live."""

    pre: str
    post: str
    width: int
    conv: bool


def find_blocks(module: nn.Module) -> tuple[list[Block], str | None]:
    """Find hidden layers (weighted module then activation) and the output layer, in order."""
    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]
    blocks: list[Block] = []
    last_weighted: str | None = None
    pending: tuple[str, nn.Module] | None = None
    for name, leaf in leaves:
        if isinstance(leaf, WEIGHTED):
            pending = (name, leaf)
            last_weighted = name
        elif isinstance(leaf, ACTIVATIONS) and pending is not None:
            pre_name, pre = pending
            width = pre.out_features if isinstance(pre, nn.Linear) else pre.out_channels
            blocks.append(Block(pre_name, name, int(width), not isinstance(pre, nn.Linear)))
            pending = None
        elif not isinstance(leaf, PASS_THROUGH):
            pending = None
    output = last_weighted if last_weighted not in {b.pre for b in blocks} else None
    return blocks, output


def wrap_module(module: nn.Module, blocks: Sequence[Block] | None = None) -> nn.Module:
    """Return a ``HookedRootModule`` around ``module`` with transformer-lens hook names."""
    hook_point_cls, root_cls = hook_point_classes()
    found, output = find_blocks(module)
    blocks = list(blocks) if blocks is not None else found
    if not blocks:
        raise ValueError(
            f"found no hidden layer in {type(module).__name__}: explorer looks for a "
            "Linear/Conv module followed by an activation module (nn.ReLU, nn.GELU, ...). "
            "If the model calls F.relu in forward, pass blocks=[Block(pre, post, width, conv)]"
        )

    class HookedModule(root_cls):  # type: ignore[misc, valid-type]
        """A plain module with hook points; forward is the module's own."""

        def __init__(self) -> None:
            super().__init__()
            self._torch_hooks: list[torch.utils.hooks.RemovableHandle] = []
            self.module = module
            self.hook_input = hook_point_cls()
            self.hook_logits = hook_point_cls()
            self.blocks = nn.ModuleList()
            self.found_blocks = list(blocks)
            self.output_layer = output
            named = dict(module.named_modules())
            for i, block in enumerate(blocks):
                for path in (block.pre, block.post):
                    if path not in named:
                        raise ValueError(f"block {i} names {path!r}, not a submodule of the model")
                holder = nn.Module()
                holder.mlp = nn.Module()
                holder.mlp.hook_pre = hook_point_cls()
                holder.mlp.hook_post = hook_point_cls()
                self.blocks.append(holder)
                act = named[block.post]
                if getattr(act, "inplace", False):
                    act.inplace = False  # type: ignore[assignment]
                self._attach(named[block.pre], holder.mlp.hook_pre)
                self._attach(act, holder.mlp.hook_post)
            if output is not None:
                self._attach(named[output], self.hook_logits)
            self.setup()

        def _attach(self, leaf: nn.Module, hook_point: nn.Module) -> None:
            self._torch_hooks.append(leaf.register_forward_hook(_through(hook_point)))

        def unwrapped_copy(self) -> nn.Module:
            """A deep copy of the plain module without our forward hooks (to re-wrap)."""
            for handle in self._torch_hooks:
                handle.remove()
            try:
                return copy.deepcopy(self.module)
            finally:
                named = dict(self.module.named_modules())
                hooks = list(self._torch_hooks)
                self._torch_hooks.clear()
                for i, block in enumerate(self.found_blocks):
                    self._attach(named[block.pre], self.blocks[i].mlp.hook_pre)
                    self._attach(named[block.post], self.blocks[i].mlp.hook_post)
                if self.output_layer is not None:
                    self._attach(named[self.output_layer], self.hook_logits)
                del hooks

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.module(self.hook_input(x))

    return HookedModule()


def _through(hook_point: nn.Module):
    def forward_hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        return hook_point(output)

    return forward_hook


@dataclass(frozen=True)
class LinearReader:
    """``linear`` alone reads a hidden layer's activation; its output is hook ``hook``.
    ``tail(x)`` runs the model on from that output (hooks at ``hook`` itself are not run),
    or is None where the containers carry hooks of their own."""

    hook: str
    linear: nn.Linear
    tail: Callable[[torch.Tensor], torch.Tensor] | None


def linear_reader(hooked: nn.Module, hook: str) -> LinearReader | None:
    """The ``nn.Linear`` that alone reads ``hook`` (``blocks.{i}.mlp.hook_post`` of a module
    from ``wrap_module``), when its output has a hook point; None otherwise.

    Then a change of the activation changes that hook by exactly ``change @ W.T``. This is
    only claimed where the structure proves it: the activation and the Linear are adjacent
    children of an ``nn.Sequential`` whose ancestors are all ``nn.Sequential`` (so forward
    is the plain chain), each appears once in the model, neither carries any forward hook
    but ours (nor are there global hooks), and the Linear's output is the next block's
    ``hook_pre`` or ``hook_logits``. Callers then fall back to editing the activation.
    """
    parts = hook.split(".")
    blocks = getattr(hooked, "found_blocks", None)
    root = getattr(hooked, "module", None)
    if blocks is None or not isinstance(root, nn.Module) or len(parts) != 4:
        return None
    if parts[0] != "blocks" or parts[2:] != ["mlp", "hook_post"] or not parts[1].isdigit():
        return None
    layer = int(parts[1])
    if layer >= len(blocks) or blocks[layer].conv:
        return None
    *ancestry, key = blocks[layer].post.split(".")
    chain = [root]
    for name in ancestry:
        child = chain[-1]._modules.get(name)
        if child is None:
            return None
        chain.append(child)
    if any(type(m).forward is not nn.Sequential.forward for m in chain):
        return None
    keys = list(chain[-1]._modules)
    at = keys.index(key) if key in keys else -1
    if at < 0 or at + 1 >= len(keys):
        return None
    act, linear = chain[-1]._modules[key], chain[-1]._modules[keys[at + 1]]
    if type(linear) is not nn.Linear:
        return None
    path = ".".join([*ancestry, keys[at + 1]])
    readers = {b.pre: f"blocks.{i}.mlp.hook_pre" for i, b in enumerate(blocks)}
    if getattr(hooked, "output_layer", None) is not None:
        readers[hooked.output_layer] = "hook_logits"  # type: ignore[index]
    if path not in readers:
        return None
    if _uses(root, act) != 1 or _uses(root, linear) != 1:
        return None
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return None
    if len(act._forward_hooks) != 1 or len(linear._forward_hooks) != 1:
        return None
    if linear._forward_pre_hooks or linear._forward_hooks_with_kwargs:
        return None
    containers = [hooked, *chain]
    if any(m._forward_hooks or m._forward_pre_hooks for m in containers):
        return LinearReader(readers[path], linear, None)
    rest: list[nn.Module] = []  # what runs after the Linear, innermost container first
    for container, name in zip(reversed(chain), [keys[at + 1], *reversed(ancestry)]):
        names = list(container._modules)
        rest += [container._modules[n] for n in names[names.index(name) + 1 :]]

    def tail(x: torch.Tensor) -> torch.Tensor:
        for module in rest:
            x = module(x)
        return x

    return LinearReader(readers[path], linear, tail)


def _uses(module: nn.Module, target: nn.Module) -> int:
    """How many times ``target`` sits in ``module``'s tree (a module may be registered twice)."""
    return (module is target) + sum(
        _uses(m, target) for m in module._modules.values() if m is not None
    )
