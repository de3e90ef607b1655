"""Every exported analysis function follows docs/api.md: ``verb(model, inputs, *, ...)``.

"Exported" is the curated surface (issue 24): the names in ``explorer.analysis.__all__``
and in each named sub-namespace it lists (``explorer.analysis.metrics``, ``.units``,
``.fourier``, ``.progress``, ``.color_scales``: each a module with its own ``__all__``).
Helpers not listed there are not API, so they are not held to the convention.

The rules, checked on signatures (not on a list someone must remember to update):

1. The first parameter is ``model``; the second is ``inputs`` (the data argument is never
   ``tokens``, ``images``, ``data`` or ``clean``).
2. Everything after ``inputs`` is keyword-only: ``units=``, ``metric=``, ``corrupted=`` ...
3. At most ``MAX_EXCEPTIONS`` (10) exported functions off the convention, each listed in
   ``EXCEPTIONS`` with its reason. A function excepted for reading weights only still takes
   ``model`` first and everything else keyword-only: ``verb(model, *, ...)``. Helpers that
   are not verbs on a model (metric factories, the unit parser, curve readers...) live in a
   named sub-namespace, each listed in ``SUB_NAMESPACES`` with why: that is the home the
   issue gives helpers, so a sub-namespace is not counted as an exception of the verbs.
4. ``kind`` is never an analysis argument (it names a model's input kind only), and units are
   named by ``units=``/``unit=`` (``Neuron``/``Head`` objects or their text), never by
   separate ``layer`` + ``neuron``/``head`` integers.
5. No public name anywhere in ``explorer`` (module, function, class, parameter, field) is
   spelled the UK way: the library spells US (``maximize``, ``randomize``, ``normalize``).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import types

import pytest

import explorer
import explorer.analysis

DATA_NAMES = {"tokens", "images", "data", "clean", "x", "prompts"}
MAX_EXCEPTIONS = 10

# Each exception with its reason (docs/api.md lists them too). An 11th fails
# test_the_exceptions_stay_within_budget: put a helper in a sub-namespace or make it private.
WEIGHTS_ONLY = {
    "circuit_svd": "OV/QK circuits are products of weight matrices: verb(model, *, units=)",
    "composition_scores": "composition is read from W_Q, W_K, W_V, W_O: verb(model, *, ...)",
    "ov_copying_scores": "the OV circuit's eigenvalues, from weights: verb(model, *, ...)",
    "scale_units": "an edit of the units' weights, returning a new model: verb(model, *, units=)",
    "maximize_activation": "it optimizes its own inputs from seeded noise: verb(model, *, unit=)",
    "weight_outliers": "first-layer weights against other models': verb(model, *, references=)",
}
SUB_NAMESPACES = {
    "metrics": "metric factories build the metric= value from labels or tokens; no model",
    "units": "the unit vocabulary: parse text (parse_unit), enumerate and check units",
    "fourier": "Fourier tools for Z_p (grokking) on weight and logit tensors; no model",
    "progress": "readers of logged training curves and progress statistics",
    "color_scales": "a figure's color scale from a result's values (docs/visual-language.md)",
}
EXCEPTIONS = dict(WEIGHTS_ONLY)


def sub_namespaces() -> dict[str, types.ModuleType]:
    """The modules ``explorer.analysis.__all__`` lists: its named sub-namespaces."""
    package = explorer.analysis
    return {
        name: getattr(package, name)
        for name in package.__all__
        if isinstance(getattr(package, name), types.ModuleType)
    }


def exported_functions():
    """``(where, name, function, namespace)`` for every function on the curated surface;
    ``namespace`` is the sub-namespace it is exported from or defined in (else None)."""
    package = explorer.analysis
    namespaces = sub_namespaces()
    for name in package.__all__:
        obj = getattr(package, name)
        if inspect.isfunction(obj):
            home = obj.__module__.rsplit(".", 1)[-1]
            namespace = home if home in namespaces and name in namespaces[home].__all__ else None
            yield f"explorer.analysis.{name}", name, obj, namespace
    for short, module in namespaces.items():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", name, obj, short


def on_convention(fn) -> bool:
    """``verb(model, inputs, *, ...)`` exactly, with no exception needed."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 2 or params[0].name != "model" or params[1].name != "inputs":
        return False
    return all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[2:])


def violations(qualname: str, name: str, fn, namespace: str | None = None) -> list[str]:
    params = list(inspect.signature(fn).parameters.values())
    names = {p.name for p in params}
    out = []
    if names & {"kind", "kinds"}:
        out.append(f"{qualname}: `kind` is not an analysis argument (docs/api.md)")
    if "layer" in names and names & {"neuron", "head", "unit"} - {"units"}:
        out.append(f"{qualname}: name units with Neuron/Head (`units=`/`unit=`), not integers")
    if namespace in SUB_NAMESPACES:
        return out
    if not params or params[0].name != "model":
        return [*out, f"{qualname}: first parameter must be `model` (or list it in EXCEPTIONS)"]
    rest = params[1:]
    if name in WEIGHTS_ONLY:
        pass  # verb(model, *, ...): everything after model is keyword-only
    elif not rest or rest[0].name != "inputs":
        out.append(f"{qualname}: second parameter must be `inputs`")
    else:
        rest = rest[1:]
    for p in rest:
        if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
            out.append(f"{qualname}: `{p.name}` must be keyword-only")
    for bad in sorted(names & DATA_NAMES):
        out.append(f"{qualname}: the data argument is `inputs`, not `{bad}`")
    return out


def test_every_exported_function_follows_the_convention():
    found = [v for q, n, fn, ns in exported_functions() for v in violations(q, n, fn, ns)]
    assert found == [], "\n".join(found)


def budget_problems(exceptions: dict[str, str]) -> list[str]:
    out = []
    if len(exceptions) > MAX_EXCEPTIONS:
        out.append(
            f"{len(exceptions)} exceptions to verb(model, inputs, *, ...), at most "
            f"{MAX_EXCEPTIONS}: move a helper into a sub-namespace or make it private"
        )
    out += [f"{name}: give the reason" for name, why in exceptions.items() if not why.strip()]
    return out


def test_the_exceptions_stay_within_budget():
    assert budget_problems(EXCEPTIONS) == []


def test_an_eleventh_exception_fails_the_budget():
    eleven = {**EXCEPTIONS, **{f"extra_{i}": "a reason" for i in range(11 - len(EXCEPTIONS))}}
    assert len(eleven) == 11
    assert any("11 exceptions" in p for p in budget_problems(eleven))


def test_the_exception_lists_name_real_exports():
    names = {n for _, n, _, _ in exported_functions()}
    assert set(WEIGHTS_ONLY) <= names, set(WEIGHTS_ONLY) - names
    assert set(SUB_NAMESPACES) == set(sub_namespaces()), "every sub-namespace says why"
    # an exception must be needed: a function on the convention is not excused
    excused = [n for _, n, fn, _ in exported_functions() if n in WEIGHTS_ONLY and on_convention(fn)]
    assert excused == []


def test_every_function_exported_is_checked(monkeypatch):
    """The check reads ``__all__``: a new export that breaks the convention is caught."""

    def brand_new(tokens, model, metric): ...

    brand_new.__module__ = "explorer.analysis.head_scores"
    monkeypatch.setattr(explorer.analysis, "brand_new", brand_new, raising=False)
    monkeypatch.setattr(explorer.analysis, "__all__", [*explorer.analysis.__all__, "brand_new"])
    found = [v for q, n, fn, ns in exported_functions() for v in violations(q, n, fn, ns)]
    assert any("explorer.analysis.brand_new: first parameter" in v for v in found), found


def test_the_curated_surface_is_about_35_verbs():
    top = [
        n for n in explorer.analysis.__all__ if inspect.isfunction(getattr(explorer.analysis, n))
    ]
    assert 30 <= len(top) <= 40, f"{len(top)} top-level functions: {top}"


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        ("def f(model, tokens, metric): ...", "second parameter must be `inputs`"),
        ("def f(model, inputs, metric): ...", "`metric` must be keyword-only"),
        ("def f(model, inputs, *, kind='zero'): ...", "`kind` is not an analysis argument"),
        ("def f(model, inputs, *, layer, neuron): ...", "name units with Neuron/Head"),
        ("def f(inputs): ...", "first parameter must be `model`"),
    ],
)
def test_the_checker_catches_each_violation(signature, problem):
    namespace: dict = {}
    exec(signature, namespace)  # a signature written here, not data read from a file
    found = violations("explorer.analysis.fake.f", "f", namespace["f"])
    assert any(problem in v for v in found), found


UK = re.compile(
    r"(?<![a-z])("
    r"(random|normal|maxim|minim|visual|regular|summar|initial|optim|serial|memor|recogn|"
    r"organ|standard|real|special|central|general|vector|quant|sanit|categor|util|stabil|"
    r"equal|final|local|penal|capital|custom|token|parameter|linear|character|emphas|"
    r"synchron|prioriti|generali|factori)(is|isation|isations|ise|ised|ises|ising|iser|isers)"
    r"|colour|behaviour|analys(e|ed|es|ing)|centre|favour|neighbour|grey|labelled|labelling"
    r"|modelled|modelling|licence|catalogue)(?![a-z])"
)


def public_names():
    """(where, name) for every public module, function, class, method, parameter and field."""
    for info in pkgutil.walk_packages(explorer.__path__, "explorer."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        yield info.name, info.name.rsplit(".", 1)[-1]
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{info.name}.{name}", name
                yield from _inner_names(f"{info.name}.{name}", obj)


def _inner_names(where: str, obj):
    if inspect.isfunction(obj):
        for p in inspect.signature(obj).parameters:
            yield f"{where}({p})", p
        return
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield f"{where}.{f.name}", f.name
    for name, member in vars(obj).items():
        if not name.startswith("_") and (
            inspect.isfunction(member) or isinstance(member, property)
        ):
            yield f"{where}.{name}", name
            if inspect.isfunction(member):
                yield from _inner_names(f"{where}.{name}", member)


def test_public_names_are_spelled_the_us_way():
    uk = sorted({where for where, name in public_names() if UK.search(name.lower())})
    assert uk == [], "UK spellings in public names (use US): " + ", ".join(uk)


@pytest.mark.parametrize(
    ("name", "uk"),
    [
        ("randomise_weights", True),
        ("Regularisation", True),
        ("Regularization", False),
        ("memorised", True),
        ("memorized", False),
        ("colour", True),
        ("randomize_weights", False),
        ("noise", False),
        ("precise", False),
        ("exercise", False),
        ("raise_errors", False),
    ],
)
def test_the_spelling_check_tells_uk_from_us(name, uk):
    assert bool(UK.search(name.lower())) is uk
