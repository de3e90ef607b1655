"""Every public analysis function follows docs/api.md: ``verb(model, inputs, *, ...)``.

The rules, checked on signatures (not on a list someone must remember to update):

1. The first parameter is ``model``; the second is ``inputs`` (the data argument is never
   ``tokens``, ``images``, ``data`` or ``clean``), unless the function reads weights only
   (``WEIGHTS_ONLY``, with the reason).
2. Everything after ``inputs`` (after ``model`` for weights-only functions) is keyword-only:
   ``units=``, ``metric=``, ``corrupted=``, ``labels=`` ...
3. Functions that take no model (tensor helpers, metric factories, curve readers) are listed
   in ``NO_MODEL`` with the reason; a new one must be added there on purpose.
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

import pytest

import explorer
import explorer.analysis

DATA_NAMES = {"tokens", "images", "data", "clean", "x", "prompts"}

WEIGHTS_ONLY = {
    "circuit_svd": "OV/QK circuits are products of weight matrices",
    "composition_scores": "composition is read from W_Q, W_K, W_V, W_O",
    "head_circuits": "the per-head OV/QK matrices, from weights",
    "ov_copying_scores": "the OV circuit's eigenvalues, from weights",
    "neuron_logit_weights": "a neuron's direct path to the logits is W_out @ W_U",
    "scale_units": "an edit of the units' weights",
    "unit_weight_masks": "which weights belong to the units",
    "maximize_activation": "it optimizes its own inputs from seeded noise",
    "default_probe_hooks": "which hooks a probe reads, from the model's layout",
    "all_heads": "enumerates the model's heads",
    "all_neurons": "enumerates a layer's neurons",
    "check_unit": "validates a unit against the model",
    "units_of_type": "the unit parser at the edge (text and objects -> checked units)",
    "mean_final_scale": "reads the final LayerNorm scale on inputs it is given",
    "norm_direction": "folds the final norm into a direction",
    "describe_direction": "labels a logit direction",
    "resolve_tokens": "reads token specs (text or ids) against the vocabulary",
    "sweep_base_hooks": "where a sweep's passes start, from the hook layout",
    "weight_anomaly": "scores the first layer's weights",
    "first_layer_pixel_norms": "reads the first layer's weights, per input pixel",
    "weight_outliers": "compares first-layer weights with other models' (zero passes)",
    "output_effect": "what a neuron writes: its outgoing weights",
    "input_image": "a first-layer neuron's input weights as an image",
    "neuron_index": "the one-neuron parser at the edge",
    "supports": "whether the model has a grid's activations",
    "weight_norm": "the norm of the model's weights",
}

# Not yet on the convention, each with what is left to do (docs/api.md lists them too).
PENDING: dict[str, str] = {}

NO_MODEL = {
    # tensor helpers: they take activations, patterns or tensors, not a model
    "explorer.analysis.attribution.sobel_edges": "an image filter (the model-free baseline)",
    "explorer.analysis.audit_scores.mad_index": "an outlier score over numbers",
    "explorer.analysis.audit_result.apply_trigger": "stamps a mask and pattern onto images",
    "explorer.analysis.mask_shapes.mask_shape": "reads a mask's shape",
    "explorer.analysis.mask_shapes.connected_components": "groups the pixels of a mask",
    "explorer.analysis.cache.iter_batches": "splits any tensor into batches",
    "explorer.analysis.circuit_svd.low_rank_svd": "SVD of a factored matrix",
    "explorer.analysis.composition.composition_score": "a score between two matrices",
    "explorer.analysis.composition.random_composition_baseline": "random matrices",
    "explorer.analysis.feature_vis.total_variation": "an image regularizer",
    "explorer.analysis.feature_vis.gaussian_blur": "an image filter",
    "explorer.analysis.head_detection.detection_pattern": "a pattern built from tokens",
    "explorer.analysis.head_scores.target_mask": "where a score's targets are, from tokens",
    "explorer.analysis.head_scores.repeat_period": "reads the repeat in a token batch",
    "explorer.analysis.head_scores.score_pattern": "scores an attention pattern tensor",
    "explorer.analysis.head_scores.uniform_baseline": "the score of uniform attention, from tokens",
    "explorer.analysis.color_scales.patching_color_scale": "a figure's scale, from a result's values",
    "explorer.analysis.color_scales.path_patching_color_scale": "a figure's scale, from values",
    "explorer.analysis.color_scales.head_score_color_scale": "a figure's scale, from a baseline",
    "explorer.analysis.neurons.unit_values": "reshapes an activation tensor",
    "explorer.analysis.probes.fit_probe": "fits a probe on features, not on a model",
    "explorer.analysis.units.parse_unit": "the text parser for units",
    "explorer.analysis.attribution.check_targets": "one class per image, from numbers",
    "explorer.analysis.feature_vis.pairwise_cosine": "similarity of images",
    "explorer.analysis.feature_vis.mean_pairwise_cosine": "similarity of images",
    "explorer.analysis.neurons.histogram": "bins values (activation_histogram computes them)",
    "explorer.analysis.patching.recovery": "a normalization of patching values",
    "explorer.analysis.patching.grid_axes": "the axis names of a patching grid",
    "explorer.analysis.units.unit_slice": "indexes an activation tensor",
    "explorer.analysis.units.layer_table": "labels a grid as a table",
    "explorer.analysis.logit_attribution.resolve_positions": "reads position specs",
    "explorer.analysis.progress.gini": "a statistic of numbers",
    # readers of logged curves
    "explorer.analysis.induction.detect_phase_change": "reads a logged curve",
    "explorer.analysis.induction.heads_above": "reads a HeadScores result",
    "explorer.analysis.progress.first_crossing": "reads a logged curve",
    "explorer.analysis.progress.detect_phases": "reads logged curves",
    # metric factories: they build the metric= argument from labels or tokens
    "explorer.analysis.induction.in_context_learning_score": "a metric factory",
    "explorer.analysis.induction.repeated_half_advantage": "a metric factory",
    # Fourier analysis of weight matrices and logits (grokking)
    "explorer.analysis.fourier.fourier_basis": "a basis for Z_p",
    "explorer.analysis.fourier.fourier_spectrum": "the spectrum of a matrix",
    "explorer.analysis.fourier.key_frequencies": "reads a spectrum",
    "explorer.analysis.fourier.sum_directions": "directions of Z_p x Z_p",
    "explorer.analysis.fourier.restricted_logits": "projects logits",
    "explorer.analysis.fourier.restricted_loss": "a loss of projected logits",
    "explorer.analysis.fourier.excluded_loss": "a loss of projected logits",
}
NO_MODEL_MODULES = {
    "explorer.analysis.metrics": "metric factories and their evaluation (the metric= values)",
}

UK = re.compile(
    r"(?<![a-z])("
    r"(random|normal|maxim|minim|visual|regular|summar|initial|optim|serial|memor|recogn|"
    r"organ|standard|real|special|central|general|vector|quant|sanit|categor|util|stabil|"
    r"equal|final|local|penal|capital|custom|token|parameter|linear|character|emphas|"
    r"synchron|prioriti|generali|factori)(is|isation|isations|ise|ised|ises|ising|iser|isers)"
    r"|colour|behaviour|analys(e|ed|es|ing)|centre|favour|neighbour|grey|labelled|labelling"
    r"|modelled|modelling|licence|catalogue)(?![a-z])"
)


def analysis_modules():
    for info in pkgutil.iter_modules(explorer.analysis.__path__):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"explorer.analysis.{info.name}")


def public_functions():
    for module in analysis_modules():
        for name, obj in vars(module).items():
            if (
                not name.startswith("_")
                and inspect.isfunction(obj)
                and obj.__module__ == module.__name__
            ):
                yield f"{module.__name__}.{name}", name, obj


def violations(qualname: str, name: str, fn) -> list[str]:
    params = list(inspect.signature(fn).parameters.values())
    module = qualname.rsplit(".", 1)[0]
    if name in PENDING:
        return []
    if module in NO_MODEL_MODULES or qualname in NO_MODEL:
        if params and params[0].name == "model":
            return [f"{qualname} takes a model: remove it from NO_MODEL"]
        return []
    if not params or params[0].name != "model":
        return [f"{qualname}: first parameter must be `model` (or list it in NO_MODEL)"]
    out = []
    rest = params[1:]
    if name in WEIGHTS_ONLY:
        if rest and rest[0].name == "inputs" and rest[0].kind is not rest[0].KEYWORD_ONLY:
            rest = rest[1:]  # e.g. mean_final_scale(model, inputs)
    else:
        if not rest or rest[0].name != "inputs":
            out.append(f"{qualname}: second parameter must be `inputs`")
        else:
            rest = rest[1:]
    for p in rest:
        if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
            out.append(f"{qualname}: `{p.name}` must be keyword-only")
    names = {p.name for p in params}
    for bad in sorted(names & DATA_NAMES):
        out.append(f"{qualname}: the data argument is `inputs`, not `{bad}`")
    if names & {"kind", "kinds"}:
        out.append(f"{qualname}: `kind` is not an analysis argument (docs/api.md)")
    if "layer" in names and names & {"neuron", "head", "unit"} - {"units"}:
        out.append(f"{qualname}: name units with Neuron/Head (`units=`/`unit=`), not integers")
    return out


def test_every_public_analysis_function_follows_the_convention():
    found = [v for q, n, fn in public_functions() for v in violations(q, n, fn)]
    assert found == [], "\n".join(found)


def test_the_exception_lists_name_real_functions():
    qualnames = {q for q, _, _ in public_functions()}
    names = {n for _, n, _ in public_functions()}
    assert set(NO_MODEL) <= qualnames, set(NO_MODEL) - qualnames
    assert set(WEIGHTS_ONLY) <= names, set(WEIGHTS_ONLY) - names
    assert set(PENDING) <= names, set(PENDING) - names


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
