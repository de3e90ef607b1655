"""What the traced graph of a wrapped plain module proves about running copies through it.

``fans_out``: copies stacked at a hook (``[copies * batch, ...]``) run through the rest of
the model as a stack, because nothing after the hook reads the input except through it.
``linear_reader``: a hidden layer is read by one ``nn.Linear`` and nothing else, so a change
of its activation changes that Linear's (hooked) output by exactly ``change @ W.T``. Both are
claimed only where the graph shows it; ``hooked_module`` builds the graph they read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn.modules import module as torch_module

from explorer._display import compact_repr
from explorer.models._spent import PassCounter

__all__ = ["LinearReader", "fans_out", "linear_reader"]


def _downstream_of(hooked: nn.Module, start: fx.Node) -> list[fx.Node] | None:
    """``_downstream`` of the traced graph of ``hooked``, computed once per node."""
    known = hooked.__dict__.setdefault("_downstream", {})
    if start not in known:
        known[start] = _downstream(hooked.__dict__["_graph"], start)
    return known[start]


def _downstream(graph: fx.GraphModule, start: fx.Node) -> list[fx.Node] | None:
    """The nodes that run after ``start`` and the constants they read, in order, when
    everything the output depends on after ``start`` depends on nothing else computed from
    the input; None otherwise (a residual connection around ``start``, say)."""
    const: set[fx.Node] = set()
    after: set[fx.Node] = set()
    order: list[fx.Node] = []
    for node in graph.graph.nodes:
        inputs = node.all_input_nodes
        if node is start:
            continue
        if node.op == "get_attr" or (
            node.op not in ("placeholder", "output") and all(a in const for a in inputs)
        ):
            const.add(node)
            order.append(node)
        elif any(a is start or a in after for a in inputs):
            if not all(a is start or a in after or a in const for a in inputs):
                return None
            after.add(node)
            order.append(node)
    return order if any(n.op == "output" for n in after) else None


def fans_out(hooked: nn.Module, hook: str) -> bool:
    """Whether a stack of copies written at ``hook`` (``[copies * batch, ...]``) runs through
    the rest of the model as a stack: nothing after ``hook`` reads the input except through
    it. Proven from the traced graph; False where there is none."""
    if hook == "hook_input":
        return True
    nodes = hooked.__dict__.get("_hook_nodes") or {}
    graph = hooked.__dict__.get("_graph")
    return hook in nodes and graph is not None and _downstream_of(hooked, nodes[hook]) is not None


@dataclass(frozen=True)
class LinearReader:
    """``linear`` alone reads a hidden layer's activation; its output is hook ``hook``.
    ``tail(x)`` runs the model on from that output (hooks at ``hook`` itself are not run),
    or is None where the module or wrapper carries forward hooks of its own."""

    __repr__ = compact_repr

    hook: str
    linear: nn.Linear
    tail: Callable[[torch.Tensor], torch.Tensor] | None


def linear_reader(hooked: nn.Module, hook: str) -> LinearReader | None:
    """The ``nn.Linear`` that alone reads ``hook`` (``blocks.{i}.mlp.hook_post`` of a module
    from ``wrap_module``), when its output has a hook point; None otherwise.

    Then a change of the activation changes that hook by exactly ``change @ W.T``. This is
    only claimed where the traced graph proves it: the activation's only consumer is one
    call of an ``nn.Linear`` (no forward hooks on it, nor global ones) whose output is a
    hook point (the next block's ``hook_pre`` or ``hook_logits``) that the rest of the
    model reads and nothing computed before it (``fans_out``). Callers then fall back to
    editing the activation, or to copies of the whole batch.
    """
    nodes = hooked.__dict__.get("_hook_nodes") or {}
    graph = hooked.__dict__.get("_graph")
    parts = hook.split(".")
    if graph is None or hook not in nodes or parts[2:] != ["mlp", "hook_post"]:
        return None
    if hooked.found_blocks[int(parts[1])].conv:
        return None
    users = list(nodes[hook].users)
    if len(users) != 1 or users[0].op != "call_module":
        return None
    call = users[0]
    linear = graph.get_submodule(str(call.target))
    if type(linear) is not nn.Linear or call.args != (nodes[hook],) or call.kwargs:
        return None
    if linear._forward_pre_hooks or linear._forward_hooks:
        return None
    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return None
    readers = {node: name for name, node in nodes.items()}
    out = list(call.users)
    if len(out) != 1 or out[0] not in readers:
        return None
    rest = _downstream_of(hooked, out[0])
    if rest is None:
        return None
    root = hooked.module
    if any(_own_hooks(m) for m in (hooked, root)):
        return LinearReader(readers[out[0]], linear, None)
    return LinearReader(readers[out[0]], linear, _tail(hooked, graph, out[0], rest))


def _tail(
    hooked: nn.Module, graph: fx.GraphModule, start: fx.Node, rest: list[fx.Node]
) -> fx.GraphModule:
    """The model from ``start``'s output on, as a module of that one tensor (cached)."""
    tails = hooked.__dict__["_tails"]
    if start not in tails:
        new = fx.Graph()
        env = {start: new.placeholder("x")}
        for node in rest:
            env[node] = new.node_copy(node, lambda a: env[a])
        tails[start] = fx.GraphModule(graph, new)
    return tails[start]


def _own_hooks(module: nn.Module) -> bool:
    """Whether ``module`` carries forward hooks besides a handle's pass counter (``_spent``),
    which ``tail`` need not run: ``fast_paths`` counts the passes a tail makes itself."""
    hooks = [*module._forward_hooks.values(), *module._forward_pre_hooks.values()]
    return any(not isinstance(getattr(h, "__self__", None), PassCounter) for h in hooks)
