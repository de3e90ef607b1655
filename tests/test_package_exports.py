"""Each package's ``__all__`` is its whole public surface: every public function and class
defined in its modules is listed (or reachable through a listed submodule such as
``analysis.metrics``), and every listed name exists.

A module with its own ``__all__`` says which of its definitions are public (Python's own
rule); the others are helpers of the package, importable from the module but not API (issue 24
curated ``explorer.analysis`` this way: docs/api.md).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = [
    "explorer.analysis",
    "explorer.data",
    "explorer.features",
    "explorer.hypotheses",
    "explorer.models",
    "explorer.session",
    "explorer.studies",
    "explorer.sweep",
    "explorer.training",
    "explorer.views",
]


def public_definitions(package_name: str) -> dict[str, list[str]]:
    """``{module: [names]}``: functions and classes a public module defines (not imports).

    ``main`` is a module's command line (``python -m explorer.studies.shipped``), not API.
    A module's ``__all__``, where it has one, narrows its definitions to those it lists.
    """
    package = importlib.import_module(package_name)
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        listed = getattr(module, "__all__", None)
        found[info.name] = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and name != "main"
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
            and (listed is None or name in listed)
        ]
    return found


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_public_definition_is_exported(package_name):
    package = importlib.import_module(package_name)
    exported = set(package.__all__)
    definitions = public_definitions(package_name)
    assert sum(map(len, definitions.values())) > 0
    # a name a sub-namespace exports (analysis.progress re-exports the curve readers)
    via_namespace = {
        name
        for ns in exported
        if inspect.ismodule(getattr(package, ns, None))
        for name in getattr(getattr(package, ns), "__all__", ())
    }
    missing = [
        f"{module}.{name}"
        for module, names in definitions.items()
        if module not in exported  # a submodule exported whole (analysis.metrics, models.zoo)
        for name in names
        if name not in exported and name not in via_namespace
    ]
    assert missing == [], f"{package_name}.__all__ lacks {missing}"


@pytest.mark.parametrize("package_name", PACKAGES)
def test_no_two_flattened_modules_define_the_same_name(package_name):
    """A name defined in two modules would export only one of them: such modules are
    exported whole (as ``explorer.studies`` does) or one of the names changes."""
    package = importlib.import_module(package_name)
    where: dict[str, list[str]] = {}
    for module, names in public_definitions(package_name).items():
        if module not in package.__all__:
            for name in names:
                where.setdefault(name, []).append(module)
    assert {n: m for n, m in where.items() if len(m) > 1} == {}


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_exported_name_exists_once(package_name):
    package = importlib.import_module(package_name)
    assert len(package.__all__) == len(set(package.__all__))
    absent = [name for name in package.__all__ if not hasattr(package, name)]
    assert absent == []
    assert not [name for name in package.__all__ if name.startswith("_")]


def test_a_private_helper_is_not_counted_and_a_new_public_one_is(monkeypatch):
    """The check itself: a public function added to a module shows up as missing, unless
    the module's ``__all__`` leaves it out (then it is a helper)."""
    head_scores = importlib.import_module("explorer.analysis.head_scores")

    def _private():
        pass

    def brand_new():
        pass

    def helper():
        pass

    for fn in (brand_new, helper):
        fn.__module__ = head_scores.__name__
    monkeypatch.setattr(head_scores, "_private", _private, raising=False)
    monkeypatch.setattr(head_scores, "brand_new", brand_new, raising=False)
    monkeypatch.setattr(head_scores, "helper", helper, raising=False)
    monkeypatch.setattr(head_scores, "__all__", [*head_scores.__all__, "brand_new"])
    found = public_definitions("explorer.analysis")["head_scores"]
    assert "brand_new" in found
    assert "_private" not in found
    assert "helper" not in found


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_name_a_module_lists_exists(package_name):
    """A module's ``__all__`` names only what the module has (a stale entry fails here)."""
    package = importlib.import_module(package_name)
    stale = [
        f"{info.name}.{name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and not info.ispkg
        for name in getattr(importlib.import_module(f"{package_name}.{info.name}"), "__all__", [])
        if not hasattr(importlib.import_module(f"{package_name}.{info.name}"), name)
    ]
    assert stale == []
