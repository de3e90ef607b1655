"""The package's shape, read from the source with ``ast`` (nothing is imported).

The rules are docs/architecture.md's:

- Layers point down only. From the bottom: the other top-level modules (``explorer._checks``,
  ``explorer._atomic``, ...: base, importing no explorer module),
  ``data``, ``models``, ``features`` (SAEs on a handle: below analysis, whose units can
  name features), ``analysis``, then ``hypotheses`` and ``training`` (siblings: neither
  imports the other), ``studies`` (recipes: may use both), ``sweep`` (runs of a study
  across settings, on Ray) and ``session`` (a live room: roles, hand-outs, its board;
  siblings), ``views``, and the facade
  (``explorer/__init__.py`` and ``explorer._load``).
  A module may import its own package and any package below it, never one above or beside.
- No import cycle between modules. Every import counts, in a function or not; only imports
  under ``if TYPE_CHECKING:`` (they never run) are left out of the cycle check.
- No function-local import of an explorer module: such imports hid cycles. Any other
  module may be imported in a function (transformer-lens, captum, nnsight take seconds) with
  a comment ``# lazy: <reason>`` saying why this site waits; the standard library too (it
  almost never has a reason: move it to the top). The same reason on more than
  ``MAX_COPIES`` comments is a copy, not a reason, unless ``SHARED_REASONS`` lists it.
- No layer imports another layer's private module (``explorer.analysis._x``); the base
  modules (``explorer._display``, ``explorer._checks``, ...) are every layer's helpers.
- Only ``explorer/models/`` reads the torch module a ``ModelHandle`` wraps. The rule, as
  checked: outside ``explorer/models/``, no code (docstring examples included) reads or
  writes an attribute ``.model`` on anything but the bare name ``self`` (a widget's or a
  result's own field), nor calls ``getattr(x, "model")``. ``model.model``, ``handle.model``
  and ``self.model.model`` all fail. Objects that keep a handle in a field called ``model``
  are listed in ``HANDLE_FIELDS`` with the reason. Analysis asks the handle instead
  (``weight``, ``unit_weights``, ``run_sweep``, ``named_parameters``, ...).
- Outside ``explorer/models/`` code programs against the handle protocol
  (``models.protocol.Handle``, issue 24): no ``isinstance``/``issubclass`` against
  ``torch.nn`` types, no ``.weight`` / ``.bias`` reads of modules (``self``'s own fields
  and the handle's ``weight(...)`` method aside), no backend parameter names (``W_Q``,
  ``W_U``, ``b_O``, ... as strings or attributes; ``"blocks."`` paths other than hook
  names), no ``layer_modules()``; ``as_torch_module()`` / ``token_embedding()`` in
  attribution only (captum takes a module). ``test_the_handle_rules_catch_each_offence``
  plants each offence.
"""

from __future__ import annotations

import ast
import doctest
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"

FACADE = {"explorer", "explorer._load"}  # every other top-level module is a base module
# rank of each layer, bottom first; packages of equal rank may not import each other
RANKS = {
    "base": 0,
    "data": 1,
    "models": 2,
    "features": 3,
    "analysis": 4,
    "hypotheses": 5,
    "training": 5,
    "studies": 6,
    "sweep": 7,
    "session": 7,
    "views": 8,
    "facade": 9,
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest one that exists)
    line: int
    local: bool  # inside a function body
    typing_only: bool  # under ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The explorer module ``name`` names, or the nearest enclosing one (an attribute)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, local: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True, typing_only)
                continue
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), local, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), local, typing_only)
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule when there is one
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                    for a in child.names
                ]
            for name in names:
                target = resolve(name) if name.split(".")[0] == "explorer" else None
                edge = Import(module, target or "", child.lineno, local, typing_only)
                if target is not None and target != module and edge not in found:
                    found.append(edge)
            visit(child, local, typing_only)

    visit(ast.parse(path.read_text(encoding="utf-8")), False, False)
    return found


EDGES = [imp for m in MODULES for imp in imports_of(m)]


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in FACADE:
        return "facade"
    if len(parts) >= 2 and parts[1] in RANKS and (ROOT / parts[1]).is_dir():
        return parts[1]
    return "base"  # explorer/_checks.py, _atomic.py, ...: they import no explorer module


def test_the_parser_sees_the_imports_it_must():
    """The checks below are only as good as the import reader: spot-check it."""
    edges = {(e.source, e.target) for e in EDGES}
    assert ("explorer.analysis.ablation", "explorer.models.handle") in edges
    assert ("explorer", "explorer._load") in edges
    assert ("explorer._load", "explorer.training.run") in edges
    assert ("explorer.models.zoo", "explorer.models.builders") in edges  # from pkg import sub
    assert any(e.typing_only for e in EDGES)
    assert layer_of("explorer.analysis.units") == "analysis"
    assert layer_of("explorer._checks") == "base"
    assert layer_of("explorer._load") == "facade"
    assert len(MODULES) > 80


def test_every_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(RANKS), f"packages without a layer: {sorted(packages - set(RANKS))}"


def test_imports_point_down_only():
    bad = []
    for e in EDGES:
        here, there = layer_of(e.source), layer_of(e.target)
        if here == there:
            continue
        if RANKS[there] >= RANKS[here]:
            side = "beside" if RANKS[there] == RANKS[here] else "above"
            bad.append(f"{e.source}:{e.line} imports {e.target} ({there} is {side} {here})")
    assert not bad, "upward imports (see docs/architecture.md):\n" + "\n".join(bad)


def private_imports_across_layers(edges: list[Import]) -> list[str]:
    """Imports of another layer's private module (a part of its name starts with ``_``).
    The base modules (``explorer._display``, ``explorer._checks``, ...) are every layer's
    helpers, so importing them is allowed; a layer's own private modules are its own."""
    bad = []
    for e in edges:
        there = layer_of(e.target)
        if there == "base" or there == layer_of(e.source):
            continue
        if any(part.startswith("_") for part in e.target.split(".")[1:]):
            bad.append(f"{e.source}:{e.line} imports {e.target}, private to {there}")
    return bad


def test_no_layer_imports_another_layers_private_module():
    planted = [
        Import("explorer.studies.probe", "explorer.analysis._display", 3, False, False),
        Import("explorer.studies.probe", "explorer._display", 4, False, False),
        Import("explorer.analysis.probe", "explorer.analysis._shown", 5, False, False),
    ]
    assert private_imports_across_layers(planted) == [
        "explorer.studies.probe:3 imports explorer.analysis._display, private to analysis"
    ]
    bad = private_imports_across_layers(EDGES)
    assert not bad, (
        "import another layer's public names, or move a shared helper to the base "
        "(explorer._display is the display layer every result uses):\n" + "\n".join(bad)
    )


@dataclass(frozen=True)
class LocalImport:
    """An import statement inside a function, and the ``# lazy: <reason>`` that explains it."""

    where: str  # "file.py:line"
    code: str
    reason: str | None  # the text after "lazy:", lower-cased, spaces collapsed
    reason_at: int | None  # the line of that comment (one comment may cover a group)


def function_local_imports(path: Path) -> list[LocalImport]:
    """Every import inside a function of ``path``, with its reason: a comment holding
    ``lazy: <reason>`` on the import line, or on a comment line right above it or above the
    imports it is grouped with."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: dict[int, LocalImport] = {}
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in found:
                continue
            i = node.lineno - 1
            reason, reason_at = _lazy_reason(lines[i]), node.lineno
            while reason is None and i > 0:
                i -= 1
                above = lines[i].strip()
                if above.startswith("#"):
                    reason, reason_at = _lazy_reason(above), i + 1
                    if reason is None:
                        continue  # another comment line of the same block
                elif not above.startswith(("import ", "from ")):
                    break
            found[node.lineno] = LocalImport(
                f"{path.name}:{node.lineno}",
                lines[node.lineno - 1].strip(),
                reason,
                reason_at if reason is not None else None,
            )
    return [found[line] for line in sorted(found)]


def _lazy_reason(line: str) -> str | None:
    if "#" not in line or "lazy:" not in line.split("#", 1)[1]:
        return None
    text = " ".join(line.split("lazy:", 1)[1].split()).lower()
    return text or None


# A reason is about its site: why *this* import waits. The same words on more than
# MAX_COPIES comments were copied, not thought about; a reason that truly fits every site
# (one optional library behind many doors) is listed here with why.
MAX_COPIES = 2
SHARED_REASONS: dict[str, str] = {}


def unexplained_local_imports(paths: list[Path]) -> list[str]:
    """Function-local imports (standard library too) with no ``# lazy: <reason>``."""
    return [
        f"{imp.where} {imp.code}"
        for path in paths
        for imp in function_local_imports(path)
        if imp.reason is None
    ]


def copied_reasons(paths: list[Path]) -> list[str]:
    """Reasons written on more than ``MAX_COPIES`` comments and not in ``SHARED_REASONS``."""
    sites: dict[str, set[str]] = {}
    for path in paths:
        for imp in function_local_imports(path):
            if imp.reason is not None:
                sites.setdefault(imp.reason, set()).add(f"{path.name}:{imp.reason_at}")
    return [
        f"{len(where)} x 'lazy: {reason}' ({', '.join(sorted(where))})"
        for reason, where in sorted(sites.items())
        if len(where) > MAX_COPIES and reason not in SHARED_REASONS
    ]


def test_the_local_import_rules_catch_their_offences(tmp_path, monkeypatch):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    import json\n"  # standard library, no reason
        "def g():\n    import pandas  # lazy\n"  # says lazy, not why
        "def h():\n    # lazy: seconds to import\n    import captum\n    import torch\n"
        "def k():\n    # why not\n    import numpy  # lazy: only k draws\n"
        "def m():\n    import os  # noqa: F401\n"
    )
    assert unexplained_local_imports([probe]) == [
        "probe.py:2 import json",
        "probe.py:4 import pandas  # lazy",
        "probe.py:13 import os  # noqa: F401",
    ]
    (h,) = [i for i in function_local_imports(probe) if i.code == "import torch"]
    assert (h.reason, h.reason_at) == ("seconds to import", 6)  # the group's comment
    copies = tmp_path / "copies.py"
    copies.write_text(
        "".join(f"def f{n}():\n    # lazy: Slow  import\n    import captum\n" for n in range(3))
    )
    assert copied_reasons([copies]) == [
        "3 x 'lazy: slow import' (copies.py:2, copies.py:5, copies.py:8)"
    ]
    assert copied_reasons([probe]) == []  # one comment over a group is one site
    monkeypatch.setitem(SHARED_REASONS, "slow import", "listed on purpose")
    assert copied_reasons([copies]) == []


def test_function_local_imports_say_why():
    bad = unexplained_local_imports(list(MODULES.values()))
    assert not bad, (
        "an import inside a function must say why it waits (# lazy: <reason>), or move to the "
        "top of the module (standard-library imports almost always can):\n" + "\n".join(bad)
    )


def test_lazy_reasons_are_each_sites_own():
    bad = copied_reasons(list(MODULES.values()))
    assert not bad, (
        f"the same lazy reason on more than {MAX_COPIES} comments: say what this site needs "
        "(or list the reason in SHARED_REASONS with why it fits every site):\n" + "\n".join(bad)
    )


def test_no_function_local_explorer_imports():
    bad = [f"{e.source}:{e.line} imports {e.target} in a function" for e in EDGES if e.local]
    assert not bad, "import explorer modules at the top of the module:\n" + "\n".join(bad)


def find_cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def test_find_cycles_finds_a_cycle():
    assert find_cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert find_cycles([("a", "b"), ("b", "c")]) == []


def test_no_import_cycles():
    cycles = find_cycles([(e.source, e.target) for e in EDGES if not e.typing_only])
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# ``x.model`` reads of a field that is not the wrapped torch module: why
HANDLE_FIELDS = {
    ("explorer.studies.auditing", "p.model"): "Planted.model is the planted ModelHandle",
    ("explorer.session.handout", "p.model"): "Planted.model is the planted ModelHandle",
    ("explorer.analysis.trigger_examples", "result.model"): "AuditResult.model is a name",
    ("explorer.views.audit_view", "result.model"): "AuditResult.model is a name",
    ("explorer.studies.stdlib_sae", "lm.model"): "StdlibLM.model is the ModelHandle",
}


def _sources(path: Path) -> list[tuple[int, ast.AST]]:
    """The module's tree, and the tree of every docstring example (with its line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, ast.AST]] = [(0, tree)]
    parser = doctest.DocTestParser()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=False)
        if not doc or ">>>" not in doc:
            continue
        line = node.body[0].lineno if node.body else 0
        for example in parser.get_examples(doc):
            try:
                found.append((line + example.lineno, ast.parse(example.source)))
            except SyntaxError:
                continue
    return found


def wrapped_module_reads(module: str) -> list[str]:
    """``module:line expression`` for every read of a handle's wrapped torch module."""
    bad = []
    for offset, tree in _sources(MODULES[module]):
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Attribute) and node.attr == "model":
                if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                    target = node
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "model"
            ):
                target = node
            if target is None:
                continue
            expr = ast.unparse(target)
            if (module, expr) in HANDLE_FIELDS:
                continue
            bad.append(f"{module}:{offset + target.lineno} {expr}")
    return bad


def test_the_wrapped_module_rule_catches_what_it_must(tmp_path, monkeypatch):
    source = (
        '"""\n>>> m.model.blocks\n"""\n'
        "def f(model, handle, self):\n"
        "    return model.model, handle.model.cfg, self.model.model, getattr(model, 'model')\n"
        "def g(self):\n"
        "    return self.model.n_layers\n"
    )
    file = tmp_path / "probe.py"
    file.write_text(source)
    monkeypatch.setitem(MODULES, "explorer.analysis.probe", file)
    found = [b.split(" ", 1)[1] for b in wrapped_module_reads("explorer.analysis.probe")]
    assert sorted(found) == sorted(
        ["m.model", "model.model", "handle.model", "self.model.model", "getattr(model, 'model')"]
    )


def test_only_models_reads_the_wrapped_torch_module():
    bad = [
        read
        for module in MODULES
        if layer_of(module) != "models"
        for read in wrapped_module_reads(module)
    ]
    assert not bad, (
        "outside explorer/models/ ask the handle (weight, unit_weights, run_sweep, "
        "named_parameters ...), not its wrapped module:\n" + "\n".join(bad)
    )


MAX_LINES = 400


def oversized(modules: dict[str, Path]) -> list[str]:
    """Modules over ``MAX_LINES`` lines whose top docstring has no line starting "Size:"."""
    bad = []
    for module, path in modules.items():
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith("Size:") for line in doc.splitlines()):
            bad.append(f"{module}: {n} lines")
    return bad


def test_the_size_rule_reads_the_reason(tmp_path):
    long_body = "x = 1\n" * (MAX_LINES + 1)
    (tmp_path / "a.py").write_text('"""A module."""\n' + long_body)
    (tmp_path / "b.py").write_text(
        '"""A module.\n\nSize: one table, kept whole.\n"""\n' + long_body
    )
    (tmp_path / "c.py").write_text('"""A module."""\n' + "x = 1\n" * 10)
    found = oversized({n: tmp_path / f"{n}.py" for n in ("a", "b", "c")})
    assert found == [f"a: {MAX_LINES + 2} lines"]


def test_modules_stay_small_or_say_why():
    bad = oversized(MODULES)
    assert not bad, (
        f"modules over {MAX_LINES} lines: split them by concern, or give the reason in a line "
        "of the module docstring starting with 'Size:':\n" + "\n".join(bad)
    )


# --------------------------------------------------------------- the handle protocol (issue 24)
# Outside explorer/models/, analysis asks the handle protocol (``models.protocol.Handle``):
# no backend module types, no module weights, no backend parameter names.
BACKEND_PARAMS = {
    "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_gate", "W_U", "W_E", "W_pos",
}  # fmt: skip
# ``as_torch_module()`` / ``token_embedding()`` hand a torch module to a library that takes
# one (captum): only attribution may call them
TORCH_MODULE_CALLS = {"as_torch_module", "token_embedding", "layer_modules"}
TORCH_MODULE_CALLERS = {
    "as_torch_module": {"explorer.analysis.attribution"},
    "token_embedding": {"explorer.analysis.token_attribution"},
    "layer_modules": set(),
}


def _is_param_name(text: str) -> bool:
    """A backend parameter name, alone or at the end of a dotted path (``unembed.W_U``)."""
    last = text.rsplit(".", 1)[-1]
    return last in BACKEND_PARAMS or (last.startswith("b_") and len(last) > 2)


def _string_of(node: ast.AST) -> str | None:
    """A string constant's text, or an f-string's with ``{}`` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _string_of(body[0].value) is not None:
                found.add(id(body[0].value))
    return found


def _nn_names(tree: ast.AST) -> set[str]:
    """Names bound to ``torch.nn`` or a class of it (``from torch import nn``, ...)."""
    names = {"nn"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch.nn", "torch.nn.modules"):
            names |= {a.asname or a.name for a in node.names}
        if isinstance(node, ast.Import):
            names |= {a.asname for a in node.names if a.name == "torch.nn" and a.asname}
    return names


def _is_nn_type(node: ast.AST, nn_names: set[str]) -> bool:
    if isinstance(node, ast.Tuple):
        return any(_is_nn_type(e, nn_names) for e in node.elts)
    text = ast.unparse(node)
    return text.split(".")[0] in nn_names or text.startswith("torch.nn.")


def handle_offences(module: str) -> list[str]:
    """``module:line rule: expression`` for each place that reaches past the handle protocol."""
    bad = []
    for offset, tree in _sources(MODULES[module]):
        docs, nn_names = _docstrings(tree), _nn_names(tree)
        parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            rule = None
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
                and _is_nn_type(node.args[1], nn_names)
            ):
                rule = "torch module type check"
            elif isinstance(node, ast.Attribute) and node.attr in ("weight", "bias"):
                called = isinstance(parents.get(id(node)), ast.Call) and (
                    parents[id(node)].func is node  # type: ignore[attr-defined]
                )
                own = isinstance(node.value, ast.Name) and node.value.id == "self"
                if not called and not own:
                    rule = "module weight read"
            elif isinstance(node, ast.Attribute) and _is_param_name(node.attr):
                rule = "backend parameter name"
            elif (text := _string_of(node)) is not None and id(node) not in docs:
                if isinstance(parents.get(id(node)), ast.JoinedStr):
                    continue  # the f-string is read whole
                words = text.replace("{}", " ").replace("/", " ").split()
                if any(_is_param_name(w) for w in words) or (
                    "blocks." in text and "hook_" not in text
                ):
                    rule = "backend parameter name"
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in TORCH_MODULE_CALLS
                and module not in TORCH_MODULE_CALLERS[node.func.attr]
            ):
                rule = f"{node.func.attr}() outside attribution"
            if rule is not None:
                bad.append(f"{module}:{offset + node.lineno} {rule}: {ast.unparse(node)[:60]}")
    return bad


PLANTED = '''"""A module that reaches past the handle.

>>> m.layer_modules(0).outgoing.weight
"""
from torch import nn
import torch
from torch.nn import Conv2d


def offences(model, layer, t, l):
    isinstance(layer, nn.Linear)
    isinstance(layer, (int, torch.nn.Module))
    issubclass(t, Conv2d)
    w = layer.weight
    layer.bias[0] = 1.0
    model.model.W_U
    model.weight("W_Q", 0)
    params = dict(model.named_parameters())["unembed.b_U"]
    attn = "blocks.0.attn."
    key = f"blocks.{l}.attn.W_O"
    model.as_torch_module()
    model.token_embedding()
    model.layer_modules(0)


def fine(self, model, l):
    """Reads ``W_O`` and ``W_U`` as in the papers."""
    W_E = model.weight("embed")
    self.weight, self.bias = W_E, None
    return f"blocks.{l}.attn.hook_z", model.check_hook("blocks.0.hook_resid_pre"), "blocks"
'''


def test_the_handle_rules_catch_each_offence(tmp_path, monkeypatch):
    """Each rule of ``handle_offences`` catches its offence in a planted module, and
    leaves the protocol's own vocabulary (hook names, neutral weight names) alone."""
    file = tmp_path / "planted.py"
    file.write_text(PLANTED)
    monkeypatch.setitem(MODULES, "explorer.analysis.planted_probe", file)
    found = sorted(b.split(" ", 1)[1] for b in handle_offences("explorer.analysis.planted_probe"))
    assert found == sorted(
        [
            "torch module type check: isinstance(layer, nn.Linear)",
            "torch module type check: isinstance(layer, (int, torch.nn.Module))",
            "torch module type check: issubclass(t, Conv2d)",
            "module weight read: layer.weight",
            "module weight read: layer.bias",
            "module weight read: m.layer_modules(0).outgoing.weight",
            "layer_modules() outside attribution: m.layer_modules(0)",
            "layer_modules() outside attribution: model.layer_modules(0)",
            "backend parameter name: model.model.W_U",
            "backend parameter name: 'W_Q'",
            "backend parameter name: 'unembed.b_U'",
            "backend parameter name: 'blocks.0.attn.'",
            "backend parameter name: f'blocks.{l}.attn.W_O'",
            "as_torch_module() outside attribution: model.as_torch_module()",
            "token_embedding() outside attribution: model.token_embedding()",
        ]
    )


def test_nothing_outside_models_reaches_past_the_handle():
    bad = [
        offence
        for module in MODULES
        if layer_of(module) != "models"
        for offence in handle_offences(module)
    ]
    assert not bad, (
        "outside explorer/models/ program against the handle protocol (models.protocol."
        "Handle: weight('unembed'), unit_weights, run_sweep, ...), not a backend's modules, "
        "weights or parameter names:\n" + "\n".join(bad)
    )


def test_as_torch_module_is_called_by_attribution_only(tmp_path, monkeypatch):
    """``as_torch_module()`` hands captum a torch module: attribution may call it, no other
    module; and the allowance is not stale (attribution does call it)."""
    source = "def f(model):\n    return model.as_torch_module()\n"
    for module, allowed in (
        ("explorer.analysis.attribution", True),
        ("explorer.analysis.neurons", False),
        ("explorer.views.neuron_view", False),
    ):
        file = tmp_path / f"{module}.py"
        file.write_text(source)
        monkeypatch.setitem(MODULES, module, file)
        assert (handle_offences(module) == []) is allowed, module
    monkeypatch.undo()
    for call, callers in TORCH_MODULE_CALLERS.items():
        for module in callers:
            assert f".{call}(" in MODULES[module].read_text(encoding="utf-8"), (module, call)
