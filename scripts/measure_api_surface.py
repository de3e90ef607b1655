"""Measure explorer.analysis's public surface (docs/architecture.md, "Measured surface").

Run from the repository root: ``PYTHONPATH=. python scripts/measure_api_surface.py``. "Used"
means the name appears in a tutorial, notebook, doc, the README or a layer above analysis.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import explorer.analysis as analysis


def _corpus(root: Path) -> str:
    globs = ("tutorials/*.ipynb", "notebooks/*.ipynb", "docs/*.md")
    texts = [p.read_text() for g in globs for p in root.glob(g)]
    texts.append((root / "README.md").read_text())
    texts += [p.read_text() for p in root.glob("explorer/**/*.py") if "analysis" not in p.parts]
    return "\n".join(texts)


def main() -> None:
    sys.path.insert(0, "tests")
    convention = importlib.import_module("test_api_convention")
    corpus = _corpus(Path("."))
    names = analysis.__all__
    top = {n: getattr(analysis, n) for n in names if inspect.isfunction(getattr(analysis, n))}
    subs = {
        n: getattr(analysis, n) for n in names if isinstance(getattr(analysis, n), types.ModuleType)
    }
    sub_funcs = {
        f"{s}.{n}": getattr(m, n)
        for s, m in subs.items()
        for n in m.__all__
        if inspect.isfunction(getattr(m, n))
    }

    def unused(found: dict) -> list[str]:
        pattern = r"(?<![\w]){}(?![\w])"
        return sorted(n for n in found if not re.search(pattern.format(n.split(".")[-1]), corpus))

    on = [n for n, f in top.items() if convention.on_convention(f)]
    every = {**top, **sub_funcs}
    classes = sum(inspect.isclass(getattr(analysis, n)) for n in names)
    print(f"names in __all__: {len(names)}; functions {len(top)}; classes {classes}")
    print(f"sub-namespaces: {sorted(subs)} with {len(sub_funcs)} functions")
    print(f"exported functions used by no caller: {unused(top) + unused(sub_funcs)}")
    print(f"convention: top level {len(on)}/{len(top)}; with sub-namespaces {len(on)}/{len(every)}")
    print(f"not on it (listed exceptions): {sorted(set(top) - set(on))}")
    print(f"exceptions listed: {len(convention.EXCEPTIONS)}")


if __name__ == "__main__":
    main()
