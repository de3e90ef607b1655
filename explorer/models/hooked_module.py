"""Hook points for plain PyTorch models, named in the transformer-lens vocabulary.

A model written without hooks (an MNIST MLP or CNN, a residual MLP) is wrapped, not
rewritten. Its ``forward`` is traced with ``torch.fx``; each hidden layer, a Linear or Conv
module whose output reaches an activation (a module such as ``nn.ReLU`` or a call such as
``F.relu``, ``torch.relu``, ``F.gelu``), possibly through norms and dropout in between,
becomes block ``i`` with ``blocks.{i}.mlp.hook_pre`` (the layer's output) and
``blocks.{i}.mlp.hook_post`` (the activation's output), exactly as an MLP layer in a
transformer. The input is ``hook_input``, the last Linear's output ``hook_logits``. Units of
a conv block are its channels. Hook points are inserted into the traced graph, which is
what runs; the wrapped module's parameters are shared, not copied. In-place activations
are made out-of-place (an in-place ReLU would overwrite a cached pre-activation).

A weighted layer that is not a hidden layer (its output feeds a residual sum, say) is
never dropped silently: ``skipped`` says which and why, and ``wrap_module`` warns. Where
``forward`` cannot be traced (data-dependent control flow), the submodules are walked in
registration order instead (activation modules only), with a warning saying so.

Finding the hidden layers is ``_hidden_layers``'s; what the traced graph proves for batched
sweeps (``fans_out``, ``linear_reader``) is ``_graph_proofs``'s; both are named here too.

>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> list(wrap_module(net).hook_dict)
['hook_input', 'hook_logits', 'blocks.0.mlp.hook_pre', 'blocks.0.mlp.hook_post']
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import fx, nn

from explorer.models._graph_proofs import LinearReader, fans_out, linear_reader
from explorer.models._hidden_layers import WEIGHTED, Block, find, find_blocks, given_nodes
from explorer.models._tl import hook_point_classes

__all__ = ["Block", "LinearReader", "fans_out", "find_blocks", "linear_reader", "wrap_module"]


def wrap_module(module: nn.Module, blocks: Sequence[Block] | None = None) -> nn.Module:
    """Return a ``HookedRootModule`` around ``module`` with transformer-lens hook names.

    Warns when a weighted layer is not taken as a hidden layer (saying which and why) and
    when ``forward`` cannot be traced.
    """
    hook_point_cls, root_cls = hook_point_classes()
    found = find(module)
    named = dict(module.named_modules())
    nodes = found.nodes
    if blocks is not None:
        blocks = list(blocks)
        nodes = given_nodes(found, blocks, named) if found.graph is not None else []
    else:
        blocks = found.blocks
    if not blocks:
        how = (
            f"forward could not be traced ({found.trace_error}), so only activation modules "
            "in registration order count"
            if found.graph is None
            else "forward was traced and no Linear/Conv output reaches an activation "
            "(nn.ReLU, F.relu, F.gelu, ...) through norms or dropout only"
        )
        skipped = f"; skipped: {found.skipped}" if found.skipped else ""
        raise ValueError(
            f"found no hidden layer in {type(module).__name__}: {how}{skipped}. "
            "Pass blocks=[Block(pre, post, width, conv)] to wrap()"
        )
    name = type(module).__name__
    if found.graph is None:
        warnings.warn(
            f"{name}: forward could not be traced ({found.trace_error}); hidden layers were "
            "found by walking submodules in registration order (activation modules only), "
            "and batched sweeps take the exact, slower path",
            stacklevel=3,
        )
    if found.skipped and blocks is found.blocks:
        warnings.warn(
            f"{name}: not taken as hidden layers: " + "; ".join(found.skipped), stacklevel=3
        )

    class HookedModule(root_cls):  # type: ignore[misc, valid-type]
        """A plain module with hook points; runs the traced forward (or the module's own)."""

        def __init__(self) -> None:
            super().__init__()
            self._torch_hooks: list[torch.utils.hooks.RemovableHandle] = []
            self.module = module
            self.hook_input = hook_point_cls()
            self.hook_logits = hook_point_cls()
            self.blocks = nn.ModuleList()
            self.found_blocks = list(blocks)
            pres = {b.pre for b in blocks}
            out_node = found.output_node
            if out_node is not None and str(out_node.target) in pres:
                out_node = None
            if found.graph is not None:
                self.output_layer = None if out_node is None else str(out_node.target)
            else:
                self.output_layer = found.output if blocks is found.blocks else _last(blocks, named)
            self.skipped = tuple(found.skipped)
            self.trace_error = found.trace_error
            for _ in blocks:
                holder = nn.Module()
                holder.mlp = nn.Module()
                holder.mlp.hook_pre = hook_point_cls()
                holder.mlp.hook_post = hook_point_cls()
                self.blocks.append(holder)
            if found.graph is not None:
                self.__dict__["_graph"], self.__dict__["_hook_nodes"] = _hooked_graph(
                    found.graph, named, nodes, out_node, self
                )
            else:
                self.__dict__["_graph"], self.__dict__["_hook_nodes"] = None, {}
                self._attach_all()
            self.__dict__["_tails"] = {}
            self.setup()

        def _attach_all(self) -> None:
            named = dict(self.module.named_modules())
            for i, block in enumerate(self.found_blocks):
                for path in (block.pre, block.post):
                    if path not in named:
                        raise ValueError(f"block {i} names {path!r}, not a submodule of the model")
                act = named[block.post]
                if getattr(act, "inplace", False):
                    act.inplace = False  # type: ignore[assignment]
                self._attach(named[block.pre], self.blocks[i].mlp.hook_pre)
                self._attach(act, self.blocks[i].mlp.hook_post)
            if self.output_layer is not None:
                self._attach(named[self.output_layer], self.hook_logits)

        def _attach(self, leaf: nn.Module, hook_point: nn.Module) -> None:
            self._torch_hooks.append(leaf.register_forward_hook(_through(hook_point)))

        def unwrapped_copy(self) -> nn.Module:
            """A deep copy of the plain module without our forward hooks (to re-wrap)."""
            hooks = list(self._torch_hooks)
            for handle in hooks:
                handle.remove()
            self._torch_hooks.clear()
            try:
                return copy.deepcopy(self.module)
            finally:
                if hooks:
                    self._attach_all()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.hook_input(x)
            graph = self.__dict__["_graph"]
            return self.module(x) if graph is None else _run_as(self.module, graph, x)

    return HookedModule()


def _last(blocks: Sequence[Block], named: dict[str, nn.Module]) -> str | None:
    """For blocks the caller gave: the last weighted module if it is not one of them."""
    weighted = [n for n, m in named.items() if n and isinstance(m, WEIGHTED)]
    last = weighted[-1] if weighted else None
    return last if last not in {b.pre for b in blocks} else None


def _hooked_graph(
    graph: fx.GraphModule,
    named: dict[str, nn.Module],
    nodes: Sequence[tuple[fx.Node, fx.Node]],
    output: fx.Node | None,
    hooked: nn.Module,
) -> tuple[fx.GraphModule, dict[str, fx.Node]]:
    """Insert ``hooked``'s hook points after each block's nodes (and the output layer) in
    the traced graph; activations made out-of-place. Returns the graph and hook -> node."""
    points = []
    for i, (pre, post) in enumerate(nodes):
        if post.op == "call_module" and getattr(named[str(post.target)], "inplace", False):
            named[str(post.target)].inplace = False  # type: ignore[assignment]
        if post.kwargs.get("inplace"):
            post.kwargs = {**post.kwargs, "inplace": False}
        points += [(pre, f"blocks.{i}.mlp.hook_pre"), (post, f"blocks.{i}.mlp.hook_post")]
    if output is not None:
        points.append((output, "hook_logits"))
    hook_nodes = {}
    for k, (node, hook) in enumerate(points):
        target = f"explorer_hook_points.p{k}"
        graph.add_submodule(target, hooked.get_submodule(hook))
        with graph.graph.inserting_after(node):
            new = graph.graph.call_module(target, (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
        hook_nodes[hook] = new
    graph.recompile()
    return graph, hook_nodes


def _run_as(module: nn.Module, graph: fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    """``graph(x)`` with ``module``'s own forward (pre-)hooks run around it, as
    ``module(x)`` would run them."""
    if not (module._forward_pre_hooks or module._forward_hooks):
        return graph(x)
    args: tuple = (x,)
    kwargs: dict = {}
    for key, hook in module._forward_pre_hooks.items():
        if key in module._forward_pre_hooks_with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    out = graph(*args, **kwargs)
    for key, hook in module._forward_hooks.items():
        if key in module._forward_hooks_with_kwargs:
            result = hook(module, args, kwargs, out)
        else:
            result = hook(module, args, out)
        if result is not None:
            out = result
    return out


def _through(hook_point: nn.Module):
    def forward_hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        return hook_point(output)

    return forward_hook
