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

The traced graph also proves what batched sweeps assume (``fans_out``, ``linear_reader``):
that everything after a hook depends on that hook alone, and that a hidden layer is read
by a single ``nn.Linear`` and nothing else.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from explorer._repr import compact_repr
from explorer.models._spent import PassCounter
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
class _Found:
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


def _find_in_graph(graph: fx.GraphModule, named: dict[str, nn.Module]) -> _Found:
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
    return _Found(
        blocks,
        None if output is None else str(output.target),
        skipped,
        graph,
        pairs,
        output,
    )


def _find_by_walk(module: nn.Module) -> _Found:
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
    return _Found(blocks, output, skipped)


def find_blocks(module: nn.Module) -> tuple[list[Block], str | None]:
    """Find hidden layers (weighted module then activation) and the output layer, in order.

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))
    >>> find_blocks(net)
    ([Block(pre='0', post='2', width=8, conv=False)], '3')
    """
    found = _find(module)
    return found.blocks, found.output


def _find(module: nn.Module) -> _Found:
    graph, error = _trace(module)
    if graph is None:
        found = _find_by_walk(module)
        found.trace_error = error
        return found
    return _find_in_graph(graph, dict(module.named_modules()))


def _given_nodes(
    found: _Found, blocks: Sequence[Block], named: dict[str, nn.Module]
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


def wrap_module(module: nn.Module, blocks: Sequence[Block] | None = None) -> nn.Module:
    """Return a ``HookedRootModule`` around ``module`` with transformer-lens hook names.

    Warns when a weighted layer is not taken as a hidden layer (saying which and why) and
    when ``forward`` cannot be traced.
    """
    hook_point_cls, root_cls = hook_point_classes()
    found = _find(module)
    named = dict(module.named_modules())
    nodes = found.nodes
    if blocks is not None:
        blocks = list(blocks)
        nodes = _given_nodes(found, blocks, named) if found.graph is not None else []
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
    from torch.nn.modules import module as torch_module

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
