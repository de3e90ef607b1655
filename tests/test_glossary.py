"""One name per concept (docs/api.md, "Glossary"), checked on every public signature.

It reads the curated ``explorer.analysis`` (``__all__`` and its sub-namespaces),
``explorer.hypotheses`` and ``explorer.studies``: every public function's and method's
parameters, and the constructors of the classes people build (units, options, hypotheses,
settings; a result, which renders itself, is built by the library and only its methods are
read). It reads every view's constructor and public traits, and what each result's
``.top()`` returns. A banned synonym fails with the glossary's word in the message.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from collections.abc import Iterator

import pytest
import torch

import explorer.analysis

# a synonym the glossary bans -> the glossary's word
SYNONYMS = {
    "target_class": "target",
    "cls": "target",
    "logit": "target",
    "k": "n",
    "top": "n",
    "top_k": "n",
    "n_top": "n",
    "batch": "batch_size",
    "max_tokens": "batch_size",
    "chunk": "batch_size",
    "at": "position",
    "pos": "position",
    "hook": "hooks",
    "names": "hooks",
    "hook_names": "hooks",
    "unit_type": "granularity",
    "kinds": "granularity",
    "ig_steps": "n_steps",
}
DATA_NAMES = {"tokens", "images", "data", "clean", "x", "prompts"}  # -> inputs
# ``kind`` labels a record in hypotheses and studies (a trigger's kind, a measure's type:
# docs/api.md); in a view it chooses among options, which the glossary names.
VIEW_SYNONYMS = {**SYNONYMS, "kind": "granularity (or the option's glossary word)"}
GRANULARITY_VALUES = {"head", "heads", "neuron", "neurons", "layer", "layers", "resid", "all"}

# Homonyms: the same word for another concept, each with what it means there.
ALLOWED = {
    "explorer.studies.auditing.Trigger(top)": "the trigger's pixel row (with left=), not a count",
    "explorer.hypotheses.input_measures.InputStamp.moved(top)": "the stamp's pixel row (with left=)",
    # a view's display payloads: what the page draws, not the data argument (that is inputs=)
    "explorer.views.attention_view.AttentionView.tokens": "the prompt's token strings drawn",
    "explorer.views.logit_attribution_view.LogitAttributionView.tokens": "token strings drawn",
    "explorer.views.logit_lens_view.LogitLensView.tokens": "the window's token strings drawn",
    "explorer.views.token_attribution_view.TokenAttributionView.tokens": "token strings drawn",
    "explorer.views.audit_view.AuditView.images": "thumbnails drawn (uint8), not the inputs",
    "explorer.views.logit_attribution_view.LogitAttributionView.logit": "the model's logit value",
}
# ``.top()`` of these ranks things that are not units, so its first element is not a Unit.
TOP_OF_OTHER_THINGS = {
    "NeuronLogitWeights": "the vocabulary tokens a neuron promotes (their text)",
    "TokenAttribution": "(position, token text, value) of the input tokens",
}
UNIT_TYPES = ("Head", "Neuron", "ResidPosition", "Unit")


# ---------------------------------------------------------------- what is public
def _public_modules(package: str) -> Iterator[types.ModuleType]:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def _own(module: types.ModuleType) -> Iterator[tuple[str, object]]:
    listed = getattr(module, "__all__", None)
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and (listed is None or name in listed):
            yield f"{module.__name__}.{name}", obj


def public_objects() -> dict[str, object]:
    """``{where: function or class}`` over analysis (curated), hypotheses and studies."""
    found: dict[str, object] = {}
    analysis = explorer.analysis
    namespaces = [getattr(analysis, n) for n in analysis.__all__]
    for name in analysis.__all__:
        obj = getattr(analysis, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found[f"{obj.__module__}.{name}"] = obj
    for module in namespaces:
        if isinstance(module, types.ModuleType):
            for name in module.__all__:
                obj = getattr(module, name)
                if inspect.isfunction(obj) or inspect.isclass(obj):
                    found[f"{obj.__module__}.{name}"] = obj
    for package in ("explorer.hypotheses", "explorer.studies"):
        for module in _public_modules(package):
            found.update(_own(module))
    return found


def signatures() -> Iterator[tuple[str, inspect.Signature, bool]]:
    """``(where, signature, skip_first)`` of every public function, method and constructor."""
    for where, obj in public_objects().items():
        if inspect.isfunction(obj):
            yield where, inspect.signature(obj), False
            continue
        is_result = hasattr(obj, "_repr_html_")
        if (not is_result and "__init__" in vars(obj)) or _is_dataclass_built(obj, is_result):
            yield where, inspect.signature(obj), False
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(member, classmethod):
                yield f"{where}.{name}", inspect.signature(member.__func__), True
            elif isinstance(member, staticmethod):
                yield f"{where}.{name}", inspect.signature(member.__func__), False
            elif inspect.isfunction(member):
                yield f"{where}.{name}", inspect.signature(member), True


def _is_dataclass_built(cls: type, is_result: bool) -> bool:
    return not is_result and hasattr(cls, "__dataclass_fields__")


# ---------------------------------------------------------------- the rules
def offences(where: str, signature: inspect.Signature, skip_first: bool) -> list[str]:
    params = list(signature.parameters.values())[1 if skip_first else 0 :]
    out = []
    for p in params:
        if p.name in SYNONYMS and f"{where}({p.name})" not in ALLOWED:
            out.append(f"{where}({p.name}=): the glossary's word is `{SYNONYMS[p.name]}`")
        if p.name == "units" and isinstance(p.default, str) and p.default in GRANULARITY_VALUES:
            out.append(
                f"{where}(units={p.default!r}): units are Unit objects; the kind of unit is "
                "`granularity`"
            )
        if (
            p.name == "steps"
            and isinstance(p.default, int)
            and where.startswith("explorer.analysis")
        ):
            out.append(f"{where}(steps=): the glossary's word is `n_steps`")
    names = [p.name for p in params]
    if names[:1] == ["model"] and len(names) > 1 and names[1] in DATA_NAMES:
        out.append(f"{where}({names[1]}): the data argument's glossary word is `inputs`")
    return out


def test_every_public_signature_speaks_the_glossary():
    found = [o for where, sig, skip in signatures() for o in offences(where, sig, skip)]
    assert found == [], "\n".join(found)


def test_the_scan_reaches_every_layer_it_promises():
    seen = {where for where, _, _ in signatures()}
    for expected in (
        "explorer.analysis.ablation.ablation_sweep",
        "explorer.analysis.metrics.next_token_loss",  # a sub-namespace
        "explorer.analysis.units.Head",  # a class people build
        "explorer.analysis.neuron_logits.NeuronLogitWeights.top",  # a result's method
        "explorer.hypotheses.hypothesis.Hypothesis.test",
        "explorer.studies.editing.targeted_edit",
    ):
        assert expected in seen, expected


def test_attribute_options_speak_the_glossary():
    from explorer.analysis.attribution import OPTIONS

    assert "n_steps" in OPTIONS
    assert not set(OPTIONS) & set(SYNONYMS), "an **options key is a banned synonym"


# ---------------------------------------------------------------- views
def view_classes() -> dict[str, type]:
    import ipywidgets

    import explorer.views

    out = {}
    for module in _public_modules("explorer.views"):
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and not name.startswith("_")
                and obj.__module__ == module.__name__
                and issubclass(obj, ipywidgets.Widget)
            ):
                out[f"{module.__name__}.{name}"] = obj
    assert explorer.views  # imported for its classes
    return out


def view_offences(where: str, cls: type) -> list[str]:
    import ipywidgets
    import traitlets

    out = []
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    for p in params:
        if p.name in VIEW_SYNONYMS:
            out.append(f"{where}({p.name}=): the glossary's word is `{VIEW_SYNONYMS[p.name]}`")
        if p.name in DATA_NAMES:
            out.append(f"{where}({p.name}=): the data argument's glossary word is `inputs`")
    names = [p.name for p in params]
    if names[:1] == ["model"]:  # a view of a model: View(model, inputs, *, ...)
        positional = [
            p.name for p in params[2:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if positional:
            out.append(
                f"{where}: {', '.join(positional)} must be keyword-only (View(model, inputs, *, ...))"
            )
    base = set(ipywidgets.DOMWidget.class_trait_names())
    for name, trait in cls.class_traits().items():
        if name.startswith("_") or name in base:
            continue
        if f"{where}.{name}" in ALLOWED:
            continue
        if name in VIEW_SYNONYMS:
            out.append(f"{where}.{name}: the glossary's word is `{VIEW_SYNONYMS[name]}`")
        if name in DATA_NAMES:
            out.append(f"{where}.{name}: the data's glossary word is `inputs`")
        if name == "units" and isinstance(trait, traitlets.Unicode | traitlets.Enum):
            if trait.default_value in GRANULARITY_VALUES:
                out.append(
                    f"{where}.units: a kind of unit is `granularity`, units are Unit objects"
                )
    return out


def test_every_view_constructor_and_trait_speaks_the_glossary():
    found = [o for where, cls in view_classes().items() for o in view_offences(where, cls)]
    assert found == [], "\n".join(found)


# ---------------------------------------------------------------- .top()
def top_methods() -> dict[str, object]:
    return {
        where: obj.top
        for where, obj in public_objects().items()
        if inspect.isclass(obj) and inspect.isfunction(vars(obj).get("top"))
    }


def top_offence(where: str, method) -> str | None:
    """``.top()`` names units as Unit objects: its first element's type names one."""
    if where.rsplit(".", 1)[-1] in TOP_OF_OTHER_THINGS:
        return None
    returns = str(inspect.signature(method).return_annotation)
    first = returns.removeprefix("list[tuple[").split(",")[0]
    if not any(unit in first for unit in UNIT_TYPES):
        return f"{where}.top() -> {returns}: units are returned as Head/Neuron objects, not text"
    return None


def test_every_top_returns_units():
    found = [o for where, m in top_methods().items() if (o := top_offence(where, m))]
    assert len(top_methods()) >= 6
    assert found == [], "\n".join(found)


def test_tops_return_units_when_run(attn_model, tiny_lm):
    from explorer.analysis import direct_logit_attribution, head_scores, metrics, path_patching
    from explorer.data import repeated_tokens

    tokens = repeated_tokens(4, 6, 30, seed=0)
    metric = metrics.repeated_half_loss(tokens)
    path = path_patching(
        attn_model, tokens, corrupted=tokens.roll(1, 0), receivers="head 1.0", metric=metric
    )
    dla = direct_logit_attribution(tiny_lm, torch.tensor([[0, 3, 5, 3]]), target=7)
    scores = head_scores(attn_model, tokens)
    for rows in (path.top(3), dla.top(3), scores.top("induction", 3)):
        assert rows and all(isinstance(unit, explorer.analysis.Head) for unit, *_ in rows), rows


# ---------------------------------------------------------------- the checker itself
@pytest.mark.parametrize(
    ("source", "word"),
    [
        ("def f(model, inputs, *, k=5): ...", "`n`"),
        ("def f(model, inputs, *, target_class=0): ...", "`target`"),
        ("def f(model, inputs, *, max_tokens=8): ...", "`batch_size`"),
        ("def f(model, inputs, *, names=()): ...", "`hooks`"),
        ("def f(model, inputs, *, unit_type='head'): ...", "`granularity`"),
        ("def f(model, inputs, *, units='heads'): ...", "`granularity`"),
        ("def f(model, tokens): ...", "`inputs`"),
        ("def f(model, inputs, *, at=0): ...", "`position`"),
    ],
)
def test_the_checker_names_the_glossary_word(source, word):
    namespace: dict = {}
    exec(source, namespace)  # a signature written here, not data read from a file
    found = offences("explorer.analysis.fake.f", inspect.signature(namespace["f"]), False)
    assert found and word in found[0], found


def test_the_view_checker_catches_kinds_and_positional_data():
    import traitlets

    from explorer.views._base import ExplorerWidget

    class Planted(ExplorerWidget):
        kinds = traitlets.List().tag(sync=True)
        units = traitlets.Unicode("heads").tag(sync=True)

        def __init__(self, model, tokens, metric, **kwargs):
            super().__init__(**kwargs)

    found = "\n".join(view_offences("Planted", Planted))
    for expected in (
        "Planted.kinds",
        "Planted(tokens=)",
        "metric must be keyword-only",
        "Planted.units",
    ):
        assert expected in found, found


def test_the_top_checker_catches_text_units():
    class Planted:
        def top(self, n: int = 3) -> list[tuple[str, float]]: ...

    assert "Head/Neuron objects" in (top_offence("Planted", Planted.top) or "")
