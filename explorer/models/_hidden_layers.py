"""Finding a plain module's hidden layers: the weighted module, then its activation.

``forward`` is traced with ``torch.fx``; a Linear or Conv module whose output reaches an
activation (a module such as ``nn.ReLU`` or a call such as ``F.relu``), possibly through
norms and dropout, is a hidden layer (a ``Block``). Where ``forward`` cannot be traced the
leaf modules are walked in registration order instead. ``hooked_module.wrap_module`` puts
hook points on what this finds; ``find_blocks`` is its public face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["WEIGHTED", "Block", "Found", "find", "find_blocks", "given_nodes"]

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
    nn.Mish,
    nn.ReLU6,
)
ACTIVATION_CALLS = {
    F.relu,
    torch.relu,
    F.gelu,
    F.silu,
    F.tanh,
    torch.tanh,
    F.sigmoid,
    torch.sigmoid,
    F.leaky_relu,
    F.elu,
    F.softplus,
    F.mish,
    F.relu6,
}
ACTIVATION_METHODS = {"relu", "tanh", "sigmoid"}
NORMS = (
    nn.LayerNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
PASS_THROUGH = (nn.Dropout, nn.Identity, *NORMS)
PASS_THROUGH_CALLS = {F.layer_norm, F.batch_norm, F.group_norm, F.dropout}


@dataclass(frozen=True)
class Block:
    """One hidden layer found in a plain module: where its pre- and post-activations live.

    ``pre`` is the weighted module's path; ``post`` the activation module's path, or for a
    function called in ``forward`` (``F.relu``) the name of that call in the traced graph.
    """

    pre: str
    post: str
    width: int
    conv: bool


@dataclass
class Found:
    """What finding the hidden layers gave: blocks, the output layer, what was skipped and
    why; with a traced graph, the graph nodes of each block (pre, post) and the output."""

    blocks: list[Block]
    output: str | None
    skipped: list[str] = field(default_factory=list)
    graph: fx.GraphModule | None = None
    nodes: list[tuple[fx.Node, fx.Node]] = field(default_factory=list)
    output_node: fx.Node | None = None
    trace_error: str | None = None


def _width(layer: nn.Module) -> int:
    return int(layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels)


def _describe(node: fx.Node, named: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(named[str(node.target)]).__name__})"
    if node.op == "call_function":
        return f"{getattr(node.target, '__name__', node.target)}()"
    if node.op == "call_method":
        return f".{node.target}()"
    return "the model's output" if node.op == "output" else node.name


def _is_activation(node: fx.Node, named: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(named.get(str(node.target)), ACTIVATIONS)
    if node.op == "call_function":
        return node.target in ACTIVATION_CALLS
    return node.op == "call_method" and node.target in ACTIVATION_METHODS


def _is_pass_through(node: fx.Node, named: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(named.get(str(node.target)), PASS_THROUGH)
    return node.op == "call_function" and node.target in PASS_THROUGH_CALLS


def _trace(module: nn.Module) -> tuple[fx.GraphModule | None, str | None]:
    try:
        return fx.symbolic_trace(module), None
    except Exception as err:
        lines = str(err).strip().splitlines()
        return None, f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def _find_in_graph(graph: fx.GraphModule, named: dict[str, nn.Module]) -> Found:
    """Weighted modules whose output reaches an activation (through norms/dropout only)."""
    weighted = [
        n
        for n in graph.graph.nodes
        if n.op == "call_module" and isinstance(named.get(str(n.target)), WEIGHTED)
    ]
    pairs: list[tuple[fx.Node, fx.Node]] = []
    why: dict[fx.Node, str] = {}
    for node in weighted:
        cur = node
        while True:
            users = list(cur.users)
            if len(users) != 1:
                why[node] = f"its output{'' if cur is node else ' after ' + cur.name} is used by "
                why[node] += f"{len(users)} operations, not by one activation"
                break
            user = users[0]
            if user.args[:1] != (cur,):
                why[node] = f"it feeds {_describe(user, named)}, not an activation"
            elif _is_activation(user, named):
                pairs.append((node, user))
            elif _is_pass_through(user, named):
                cur = user
                continue
            else:
                why[node] = f"it feeds {_describe(user, named)}, not an activation"
            break
    pres = {pre for pre, _ in pairs}
    output = weighted[-1] if weighted and weighted[-1] not in pres else None
    blocks = [
        Block(
            str(pre.target),
            str(post.target) if post.op == "call_module" else post.name,
            _width(named[str(pre.target)]),
            not isinstance(named[str(pre.target)], nn.Linear),
        )
        for pre, post in pairs
    ]
    skipped = [
        f"{_describe(n, named)}: {why[n]}" for n in weighted if n not in pres and n is not output
    ]
    return Found(
        blocks,
        None if output is None else str(output.target),
        skipped,
        graph,
        pairs,
        output,
    )


def _find_by_walk(module: nn.Module) -> Found:
    """Without a graph: leaf modules in registration order, a weighted one then an
    activation module (norms and dropout may sit between)."""
    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]
    blocks: list[Block] = []
    skipped: list[str] = []
    last_weighted: str | None = None
    pending: tuple[str, nn.Module] | None = None
    for name, leaf in leaves:
        if isinstance(leaf, WEIGHTED):
            if pending is not None:
                skipped.append(
                    f"{pending[0]} ({type(pending[1]).__name__}): no activation after it"
                )
            pending = (name, leaf)
            last_weighted = name
        elif isinstance(leaf, ACTIVATIONS) and pending is not None:
            pre_name, pre = pending
            blocks.append(Block(pre_name, name, _width(pre), not isinstance(pre, nn.Linear)))
            pending = None
        elif not isinstance(leaf, PASS_THROUGH) and pending is not None:
            skipped.append(
                f"{pending[0]} ({type(pending[1]).__name__}): followed by {name} "
                f"({type(leaf).__name__}), not an activation"
            )
            pending = None
    output = last_weighted if last_weighted not in {b.pre for b in blocks} else None
    skipped = [s for s in skipped if output is None or not s.startswith(f"{output} (")]
    return Found(blocks, output, skipped)


def find_blocks(module: nn.Module) -> tuple[list[Block], str | None]:
    """Find hidden layers (weighted module then activation) and the output layer, in order.

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))
    >>> find_blocks(net)
    ([Block(pre='0', post='2', width=8, conv=False)], '3')
    """
    found = find(module)
    return found.blocks, found.output


def find(module: nn.Module) -> Found:
    graph, error = _trace(module)
    if graph is None:
        found = _find_by_walk(module)
        found.trace_error = error
        return found
    return _find_in_graph(graph, dict(module.named_modules()))


def given_nodes(
    found: Found, blocks: Sequence[Block], named: dict[str, nn.Module]
) -> list[tuple[fx.Node, fx.Node]]:
    """The graph nodes of blocks the caller named (module paths, or call names for ``post``)."""
    assert found.graph is not None
    nodes = list(found.graph.graph.nodes)
    calls = [n.name for n in nodes if n.op in ("call_function", "call_method")]
    out = []
    for i, block in enumerate(blocks):
        pre = next((n for n in nodes if n.op == "call_module" and n.target == block.pre), None)
        if pre is None:
            raise ValueError(f"block {i} names {block.pre!r}, not a submodule the model calls")
        after = nodes[nodes.index(pre) + 1 :]
        post = next(
            (
                n
                for n in after
                if (n.op == "call_module" and n.target == block.post) or n.name == block.post
            ),
            None,
        )
        if post is None:
            raise ValueError(
                f"block {i} names {block.post!r}, neither a submodule called after "
                f"{block.pre!r} nor a traced call (calls: {calls[:12]})"
            )
        out.append((pre, post))
    return out
