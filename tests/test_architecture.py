"""The package's shape, read from the source with ``ast`` (nothing is imported).

The rules are docs/architecture.md's:

- Layers point down only. From the bottom: the other top-level modules (``explorer._checks``,
  ``explorer._atomic``, ...: base, importing no explorer module),
  ``data``, ``models``, ``analysis``, then ``hypotheses`` and ``training`` (siblings: neither
  imports the other), ``studies`` (recipes: may use both), ``sweep`` (runs of a study
  across settings, on Ray), ``views``, and the facade
  (``explorer/__init__.py`` and ``explorer._load``).
  A module may import its own package and any package below it, never one above or beside.
- No import cycle between modules. Every import counts, in a function or not; only imports
  under ``if TYPE_CHECKING:`` (they never run) are left out of the cycle check.
- No function-local import of an explorer module: such imports hid cycles. Third-party
  libraries may be imported in a function (transformer-lens, captum, nnsight take seconds)
  with a comment saying it is lazy and why.
- Only ``explorer/models/`` reads the torch module a ``ModelHandle`` wraps. The rule, as
  checked: outside ``explorer/models/``, no code (docstring examples included) reads or
  writes an attribute ``.model`` on anything but the bare name ``self`` (a widget's or a
  result's own field), nor calls ``getattr(x, "model")``. ``model.model``, ``handle.model``
  and ``self.model.model`` all fail. Objects that keep a handle in a field called ``model``
  are listed in ``HANDLE_FIELDS`` with the reason. Analysis asks the handle instead
  (``weight``, ``layer_modules``, ``named_parameters``, ``models.fast_paths``, ...).
"""

from __future__ import annotations

import ast
import doctest
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"

FACADE = {"explorer", "explorer._load"}  # every other top-level module is a base module
# rank of each layer, bottom first; packages of equal rank may not import each other
RANKS = {
    "base": 0,
    "data": 1,
    "models": 2,
    "analysis": 3,
    "hypotheses": 4,
    "training": 4,
    "studies": 5,
    "sweep": 6,
    "views": 7,
    "facade": 8,
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


def lazy_imports_without_a_reason(path: Path) -> list[str]:
    """Third-party imports inside functions with no comment saying they are lazy (on the
    import line, or a comment line right above it or above the imports it is grouped with)."""
    std = set(sys.stdlib_module_names)
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "level", 0):
                continue
            name = node.names[0].name if isinstance(node, ast.Import) else node.module or ""
            if name.split(".")[0] in std | {"explorer"}:
                continue
            i = node.lineno - 1
            said = "lazy" in lines[i].lower()
            while not said and i > 0:
                i -= 1
                above = lines[i].strip()
                if above.startswith("#"):
                    said = "lazy" in above.lower() or "lazily" in above.lower()
                elif not above.startswith(("import ", "from ")):
                    break
            if not said:
                bad.append(f"{path.name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return bad


def test_lazy_third_party_imports_say_so(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    import pandas\n"
        "def g():\n    # lazy: seconds to import\n    import captum\n    import torch\n"
        "def h():\n    import json\n"
    )
    assert lazy_imports_without_a_reason(probe) == ["probe.py:2 import pandas"]
    bad = [b for path in MODULES.values() for b in lazy_imports_without_a_reason(path)]
    assert not bad, (
        "a third-party import inside a function must say it is lazy and why "
        "(# lazy: ...), or move to the top of the module:\n" + "\n".join(bad)
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
    ("explorer.analysis.trigger_examples", "result.model"): "AuditResult.model is a name",
    ("explorer.views.audit_view", "result.model"): "AuditResult.model is a name",
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
        "outside explorer/models/ ask the ModelHandle (weight, layer_modules, "
        "named_parameters, models.fast_paths ...), not its wrapped module:\n" + "\n".join(bad)
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
