"""Each package's ``__all__`` is its whole public surface: every public function and class
defined in its modules is listed (or reachable through a listed submodule such as
``analysis.metrics``), and every listed name exists."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = [
    "explorer.analysis",
    "explorer.data",
    "explorer.hypotheses",
    "explorer.models",
    "explorer.studies",
    "explorer.sweep",
    "explorer.training",
    "explorer.views",
]


def public_definitions(package_name: str) -> dict[str, list[str]]:
    """``{module: [names]}``: functions and classes a public module defines (not imports).

    ``main`` is a module's command line (``python -m explorer.studies.shipped``), not API.
    """
    package = importlib.import_module(package_name)
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        found[info.name] = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and name != "main"
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
        ]
    return found


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_public_definition_is_exported(package_name):
    package = importlib.import_module(package_name)
    exported = set(package.__all__)
    definitions = public_definitions(package_name)
    assert sum(map(len, definitions.values())) > 0
    missing = [
        f"{module}.{name}"
        for module, names in definitions.items()
        if module not in exported  # a submodule exported whole (analysis.metrics, models.zoo)
        for name in names
        if name not in exported
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
    """The check itself: a public function added to a module shows up as missing."""
    from explorer.analysis import fourier

    def _private():
        pass

    def brand_new():
        pass

    brand_new.__module__ = fourier.__name__
    monkeypatch.setattr(fourier, "_private", _private, raising=False)
    monkeypatch.setattr(fourier, "brand_new", brand_new, raising=False)
    assert "brand_new" in public_definitions("explorer.analysis")["fourier"]
    assert "_private" not in public_definitions("explorer.analysis")["fourier"]
