"""The package's shape, read from the source with ``ast`` (nothing is imported).

The rules are docs/architecture.md's:

- Layers point down only. From the bottom: ``explorer._checks``/``explorer._atomic`` (base),
  ``data``, ``models``, ``analysis``, then ``hypotheses`` and ``training`` (siblings: neither
  imports the other), ``studies`` (recipes: may use both), ``views``, and the facade
  (``explorer/__init__.py`` and the other top-level modules, e.g. ``explorer._load``).
  A module may import its own package and any package below it, never one above or beside.
- No import cycle between modules. Every import counts, in a function or not; only imports
  under ``if TYPE_CHECKING:`` (they never run) are left out of the cycle check.
- No function-local import of an explorer module: such imports hid cycles. Third-party
  libraries may be imported in a function (transformer-lens, captum, nnsight take seconds).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "explorer"

BASE = {"explorer._checks", "explorer._atomic"}
# rank of each layer, bottom first; packages of equal rank may not import each other
RANKS = {
    "base": 0,
    "data": 1,
    "models": 2,
    "analysis": 3,
    "hypotheses": 4,
    "training": 4,
    "studies": 5,
    "views": 6,
    "facade": 7,
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
    if module in BASE:
        return "base"
    if len(parts) >= 2 and parts[1] in RANKS and (ROOT / parts[1]).is_dir():
        return parts[1]
    return "facade"  # explorer/__init__.py and the other top-level modules


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
