"""Every module's docstring examples run as shown, and every public module has some.

One place runs them all (einops' habit: the documented examples are tests). A public module
is one whose dotted name has no part starting with ``_``; private modules' examples run too
but they need not have any.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest
import torch

import explorer

MODULES = ["explorer"] + sorted(
    info.name for info in pkgutil.walk_packages(explorer.__path__, "explorer.")
)


def run_examples(name: str) -> tuple[int, int, str]:
    """``(examples run, failures, the failure report)`` for module ``name``."""
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    return runner.tries, runner.failures, "".join(report)


def is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    torch.set_num_threads(1)
    tried, failed, report = run_examples(name)
    assert failed == 0, f"{name}: {failed} of {tried} examples failed\n{report[-4000:]}"
    if is_public(name):
        assert tried > 0, f"public module {name} has no docstring example"


def test_a_wrong_example_is_reported(monkeypatch):
    """The runner above really checks output: a module whose example lies fails."""
    from explorer.analysis import fourier

    def liar():
        """>>> 1 + 1
        3
        """

    liar.__module__ = fourier.__name__
    monkeypatch.setattr(fourier, "liar", liar, raising=False)
    tried, failed, report = run_examples("explorer.analysis.fourier")
    assert failed == 1 and "Got:\n    2" in report


def test_every_module_file_is_collected():
    root = Path(explorer.__file__).parent
    on_disk = {
        ".".join(("explorer", *path.relative_to(root).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in root.rglob("*.py")
    }
    assert set(MODULES) == on_disk
