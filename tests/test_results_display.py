"""Every result a public function returns (analysis, hypotheses, studies) is on the one
display layer, ``explorer._display.Shown``: a short repr, an HTML table, and
``to_dataframe()`` with no required argument returning a long table.

The result classes are found, not listed: every class named in the return annotation of a
public function or method of ``explorer.analysis``, ``explorer.hypotheses`` and each
``explorer.studies`` module. A new result that skips the base, or has no example below,
fails ``test_every_result_is_on_the_display_layer``. Examples are built from fields
(seeded, no model), tutorial size; the analysis results computed on real models are
checked in tests/analysis/test_result_display.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

import explorer
import explorer.sweep
from explorer import analysis as A
from explorer import hypotheses as H
from explorer import studies
from explorer._display import MAX_REPR, Shown, tidy_problems
from explorer.analysis.color_scales import ColorScale
from explorer.analysis.feature_vis import Regularization
from explorer.analysis.mask_shapes import MaskShape
from explorer.hypotheses._salvage import StoreCheck
from explorer.hypotheses._stored import HypothesisList, StoredHypothesis
from explorer.studies.attribution_benchmark import AttributionBenchmark
from explorer.studies.editing import EditComparison
from explorer.studies.grokking import GrokkingProgress
from explorer.studies.grokking_phases import Phases
from explorer.studies.stdlib_lm_experiments import ConceptNeurons
from explorer.studies.stdlib_sae import KindPurity
from explorer.sweep import PhaseDiagram, Sweep, SweepCurves, SweepPoint

nan, inf = math.nan, math.inf

# Classes public functions return that are not results, and why (each is an input, a
# setting, data, a handle, or a part of a result).
NOT_RESULTS = {
    "Head": "a unit (prints as 'head 1.4')",
    "Neuron": "a unit",
    "ColorScale": "a figure setting",
    "Probe": "a fitted model to call (ProbeResults is the result)",
    "Phase": "one row of Phases",
    "ModelHandle": "a handle on a model",
    "Run": "a handle on a training run",
    "Hypothesis": "a claim: the input of Hypothesis.test",
    "Prediction": "a claim about runs: the input of Prediction.test",
    "FittedPredictor": "a fitted model to call (PredictionResult is the result)",
    "Measure": "a measure: an input of a hypothesis",
    "InputStamp": "a measure: an input of a hypothesis",
    "Label": "a rater's label: an input of agreement",
    "UnreadableRow": "one entry of HypothesisList.unreadable",
    "Examples": "data",
    "SparseAutoencoder": "a model: an SAE to splice, encode and decode",
    "QuoteProbe": "data: the fine-tuning study's held-out probe inputs (an input of a metric)",
    "FinetuneData": "data: the fine-tuning study's training pool and probes",
    "Split": "data: indices of examples",
    "ModularData": "data",
    "ImageData": "data",
    "StdlibLMData": "data",
    "TokenWindows": "data",
    "GrokkingSetting": "a setting",
    "Trigger": "a setting of a planted model",
    "Planted": "a model with what was planted in it",
    "StdlibLM": "a model with its tokenizer",
    "HandOut": "the paths hand_out wrote",
    "SweepPoint": "a sweep's setting: the settings one run changes",
    "SweepStudy": "a study a sweep trains (its recipe and measures)",
}


def public_callables():
    """Public functions and methods of analysis, hypotheses, each study module and sweeps."""
    modules = [A, H, explorer.sweep]
    modules += [importlib.import_module(f"explorer.studies.{n}") for n in studies.__all__]
    for module in modules:
        names = getattr(module, "__all__", None) or [n for n in vars(module) if n[0] != "_"]
        for name in names:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield obj
            elif inspect.isclass(obj) and obj.__module__.startswith("explorer."):
                yield from (
                    f for n, f in vars(obj).items() if n[0] != "_" and inspect.isfunction(f)
                )


def explorer_classes() -> dict[str, type]:
    import pkgutil

    out: dict[str, type] = {}
    for info in pkgutil.walk_packages(explorer.__path__, "explorer."):
        if info.name.startswith("explorer.views"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                out.setdefault(name, obj)
    return out


def returned_classes() -> dict[str, type]:
    classes = explorer_classes()
    out = {}
    for fn in public_callables():
        annotation = str(fn.__annotations__.get("return", ""))
        for word in re.findall(r"[A-Za-z_]\w*", annotation):
            if word in classes:
                out[word] = classes[word]
    return out


def results() -> dict[str, type]:
    return {n: c for n, c in returned_classes().items() if n not in NOT_RESULTS}


G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.rand(*shape, generator=G)


def ints(high, *shape):
    return torch.randint(high, shape, generator=G)


def _verdict(**changes):
    fields = dict(
        hypothesis_id="h1", claim="neuron 0.3 detects <b>loops</b>", status="supported",
        value=0.9, ci_low=0.85, ci_high=0.95, confidence=0.95, threshold=0.5,
        direction="above", measure="auroc of neuron 0.3", baseline=0.5,
        baseline_source="20 random neuron sets", n_examples=200, split="held-out 100..199",
        model_name="mlp", model_fingerprint="f00", n_boot=200, seed=0,
        baseline_units=tuple((f"neuron 0.{i}",) for i in range(20)),
        baseline_values=tuple(0.5 for _ in range(20)), baseline_p95=0.6, baseline_n_sets=20,
        details={"before": 1.0, "after": 0.2},
    )  # fmt: skip
    return H.Verdict(**{**fields, **changes})


def _hypothesis():
    return H.Hypothesis(
        claim="neuron 0.3 detects the concept",
        units="neuron 0.3",
        measure=H.NeuronSelectivity("auroc"),
        threshold=0.9,
        formation=H.Split(range(10)),
        held_out=H.Split(range(10, 20)),
    )


def _phases():
    return Phases(memorized=20, circuit_start=60, cleanup_start=150, cleanup_end=200, last_step=290)


def _head_scores():
    return A.HeadScores(rand(2, 2, 4), ("induction", "previous_token"))


def _composition():
    return A.CompositionScores(rand(3, 2, 4, 2, 4), ("q", "k", "v"), 0.1, 0.02)


HEADS = tuple(A.Head(layer, h) for layer in range(2) for h in range(4))
EXAMPLES = {
    "AblationResult": lambda: A.AblationResult(rand(8), rand(8), HEADS[:2], "mean", ("h",) * 2),
    "SweepResult": lambda: A.SweepResult(HEADS, 1.0, rand(8), rand(8, 5), "zero"),
    "HeadScores": _head_scores,
    "PatchingResult": lambda: A.PatchingResult(rand(2, 6, 4), 1.0, 0.0, "head_by_pos"),
    "Comparison": lambda: A.Comparison(
        weights={"layer": rand(2), "head": rand(2, 4), "neuron": rand(2, 8)},
        attention=rand(2, 4),
        activation_mean={"head": rand(2, 4), "neuron": rand(2, 8)},
        activation_spread={"head": rand(2, 4), "neuron": rand(2, 8)},
        dla_a={"head": rand(2, 4)},
        dla_b={"head": rand(2, 4)},
        names=("base", "tuned"),
        n_inputs=4,
        n_tokens=64,
        direction="'a' - 'b'",
        logit_a=0.5,
        logit_b=1.5,
        model_weights={"embed": 0.1},
    ),
    "TopKExamples": lambda: A.TopKExamples(rand(16, 3), ints(50, 16, 3), ints(6, 16, 3), "h", 50),
    "Histogram": lambda: A.Histogram(
        ints(9, 20), torch.linspace(-1, 1, 21), "h", 3, ints(4, 3, 20)
    ),
    "CompositionScores": _composition,
    "CopyingScores": lambda: A.CopyingScores(rand(2, 4), rand(2, 4), 64),
    "Confusion": lambda: A.Confusion(ints(9, 4, 4), ints(4, 30), ints(4, 30)),
    "FeatureVisualization": lambda: A.FeatureVisualization(
        rand(3, 1, 8, 8), rand(3), rand(10), 0, 3, "h", 0, Regularization()
    ),
    "FourierBasis": lambda: A.fourier_basis(13),
    "FourierSpectrum": lambda: A.fourier_spectrum(rand(13, 4)),
    "KeyFrequencies": lambda: A.KeyFrequencies((3, 5), 0.9, (2.0, 1.0)),
    "CacheResult": lambda: A.CacheResult(
        rand(2, 5, 10), {"blocks.0.hook_resid_pre": rand(2, 5, 8)}
    ),
    "InductionCircuit": lambda: A.InductionCircuit(
        (A.Head(1, 2),),
        (A.Head(0, 1),),
        ((A.Head(0, 1), A.Head(1, 2), 0.4),),
        _head_scores(),
        _composition(),
    ),
    "InductionProgress": lambda: A.InductionProgress(1.0, 3.0, -2.0, 0.6, 0.9),
    "PhaseChange": lambda: A.PhaseChange(500, 450, 560, 4.0, 1.0, "fall"),
    "Phases": _phases,
    "ProbeResults": lambda: A.ProbeResults(("a", "b"), rand(2), rand(2), (8, 16), 0.1, ()),
    "OutputEffect": lambda: A.OutputEffect(rand(10), tuple(f"class {i}" for i in range(10)), "t"),
    "ExampleWindows": lambda: A.ExampleWindows(ints(50, 4), (0, 2, 1, 3), rand(4, 5)),
    "AttributionMaps": lambda: A.AttributionMaps(rand(3, 1, 8, 8), "saliency", ints(10, 3), 0.1),
    "AuditResult": lambda: A.AuditResult(
        "mlp",
        "stamp",
        (3,),
        rand(10),
        rand(10, 1, 8, 8),
        rand(10, 1, 8, 8),
        rand(10),
        tuple((0, 0, 3, 3) for _ in range(10)),
        300,
        0,
        64,
        300,
    ),
    "StampedExamples": lambda: A.StampedExamples(
        3, rand(4, 1, 8, 8), rand(4, 1, 8, 8), ints(10, 4), ints(10, 4), 0.5, 8
    ),
    "TriggerPlace": lambda: A.TriggerPlace(3, 2, 100, rand(5, 5), rand(5, 5), 26),
    "CircuitSVD": lambda: A.CircuitSVD(
        "OV",
        HEADS[:2],
        rand(2, 3),
        rand(2, 8, 3),
        rand(2, 8, 3),
        ints(5, 2, 3, 4),
        rand(2, 3, 4),
        ints(5, 2, 3, 4),
        rand(2, 3, 4),
        ("reads", "writes"),
        {i: f"t{i}" for i in range(5)},
    ),
    "LogitAttribution": lambda: A.LogitAttribution(
        rand(3, 4), ("embed", "L0H0", "L0H1", "L1H0"), "heads", "'a'", rand(3), ints(5, 3), 2
    ),
    "LogitLens": lambda: A.LogitLens(
        ints(5, 3, 1, 4, 2),
        rand(3, 1, 4, 2),
        ints(5, 1, 4),
        rand(3, 1, 4),
        ints(5, 3, 1, 4),
        ("0_pre", "1_pre", "final_post"),
        ("a", "b", "c", "d"),
        {i: f"t{i}" for i in range(5)},
    ),
    "TokenAttribution": lambda: A.TokenAttribution(
        rand(2, 4), rand(2), rand(2), rand(2), (("a", "b", "c", "d"),) * 2, "'a'", ints(4, 2), 8
    ),
    "NeuronLogitWeights": lambda: A.NeuronLogitWeights(
        rand(2, 6), (A.Neuron(0, 1), A.Neuron(0, 3)), 1.0, tuple(f"t{i}" for i in range(6))
    ),
    "HeadDetection": lambda: A.HeadDetection(
        rand(2, 4), rand(3, 2, 4), "induction_head", False, False, "mul"
    ),
    "PathPatchingResult": lambda: A.PathPatchingResult(
        rand(2, 4), 1.0, 0.0, None, (A.Head(1, 0),), ("q",)
    ),
    "Verdict": _verdict,
    "WeightOutliers": lambda: A.WeightOutliers(
        "mlp",
        ("ref 1", "ref 2", "ref 3"),
        rand(28, 28),
        rand(28, 28),
        rand(28, 28),
        10.0,
        MaskShape(7.0, 7, (3, 20, 1, 7), (tuple((3, 20 + i) for i in range(7)),), "a 1x7 line"),
    ),
    "Sweep": lambda: Sweep(
        Path("sweeps/wd"),
        "grokking",
        (SweepPoint("wd=0.1", {"weight_decay": 0.1}), SweepPoint("wd=1", {"weight_decay": 1.0})),
        {},  # nothing finished: its curves are read from the runs' folders (tests/sweep)
    ),
    "PhaseDiagram": lambda: PhaseDiagram(
        "train_frac",
        "weight_decay",
        "test_95",
        (0.3, 0.5),
        (0.1, 1.0),
        ((("a0", "a1"), ("b0", "b1")), (("c0", "c1"), ("d0",))),
        torch.tensor([[[100.0, nan], [nan, nan]], [[40.0, 60.0], [20.0, nan]]]),
        torch.tensor([[[0, 1], [1, 2]], [[0, 0], [0, 3]]]),
        torch.tensor([[inf, inf], [50.0, 20.0]]),
        torch.tensor([[100.0, nan], [40.0, 20.0]]),
        torch.tensor([[100.0, nan], [60.0, 20.0]]),
        torch.tensor([[1, 1], [0, 0]]),
        torch.tensor([[2, 1], [2, 1]]),
        ColorScale(20.0, 100.0, "test_95", "sooner", "later"),
    ),
    "SweepCurves": lambda: SweepCurves(
        "test_acc",
        ("a", "b"),
        torch.tensor([0, 10, 20]),
        torch.tensor([[0.1, 0.5, 0.9], [0.1, nan, 0.2]]),
        "lr",
        ("0.001", "0.01"),
        (0, 1),
    ),
    "RepresentationSimilarity": lambda: explorer.sweep.RepresentationSimilarity(
        ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post"),
        (0.9, 0.4),
        rand(2, 20),
        ("seed 0", "seed 1"),
        128,
    ),
    "UnitMatching": lambda: explorer.sweep.UnitMatching(
        ("blocks.0.mlp.hook_post",),
        "neuron",
        ((2, 0, 1),),
        ((0.9, 0.3, 0.7),),
        0.5,
        ("seed 0", "seed 1"),
    ),
    "KeyFrequencyRecurrence": lambda: explorer.sweep.KeyFrequencyRecurrence(
        {"wd=1_seed=0": (14, 35, 41), "wd=1_seed=1": (14, 17)},
        {"wd=1_seed=0": {"weight_decay": 1.0, "seed": 0}},
        56,
    ),
    "KindPurity": lambda: KindPurity(rand(3, 5), rand(3, 5), ((1, 2), (3,), ()), 50),
    "Emergence": lambda: explorer.sweep.emergence(
        {
            "size": [4, 8, 16, 32, 64, 128],
            "acc": [0.1, 0.1, 0.12, 0.8, 0.9, 0.9],
            "loss": [2.0, 1.4, 1.0, 0.7, 0.5, 0.35],
        },
        size="size",
        outcome=("loss", "acc"),
    ),
    "Agreement": lambda: H.Agreement(
        "neuron 0.3", "cohen", 0.4, 0.7, 0.5, 50, ("ann", "bo"), ("yes", "no")
    ),
    "SteeringResult": lambda: A.SteeringResult(rand(8), rand(8) + 1.0, (), "add", 4.0),
    "Evidence": lambda: H.Evidence(rand(30), "auroc", positives=torch.arange(30) < 10),
    "Explanation": lambda: H.Explanation(
        "neuron 0.5", "tokens", "fires on ' if' (+2.1)", ((3,),), (2.1,), 0.1
    ),
    "ExplanationScores": lambda: H.ExplanationScores(
        (
            H.Explanation("neuron 0.5", "tokens", "fires on ' if'", ((3,),), (2.1,)),
            H.regex_explanation(r"\bif", unit="neuron 0.5", author="ana"),
        ),
        (0.93, 0.71),
        H.Split(range(10), "formation"),
        H.Split(range(10, 20), "held-out"),
        240,
    ),
    "ImportReport": lambda: H.ImportReport(
        "p", added=("a", "b"), renamed={"b": "b2"}, skipped=("c",)
    ),
    "StoreCheck": lambda: StoreCheck(
        "sqlite://", {"hypotheses": (3, 3), "verdicts": (5, 6)}, ("row x: bad",)
    ),
    "StoredHypothesis": lambda: StoredHypothesis(
        _hypothesis(), "p", "ann", "t0", "t1", (_verdict(),)
    ),
    "HypothesisList": lambda: HypothesisList(
        [StoredHypothesis(_hypothesis(), "p", "ann", "t0", "t1", (_verdict(),))]
    ),
    "AttributionBenchmark": lambda: AttributionBenchmark(
        ("saliency", "occlusion"),
        rand(2),
        rand(2),
        0.5,
        0.3,
        rand(2),
        rand(2),
        rand(2),
        torch.linspace(0, 1, 5),
        rand(2, 5),
        rand(2, 5),
        rand(5),
        rand(5),
        16,
    ),
    "EditComparison": lambda: EditComparison(
        8, 1, "scale", (1, 2), ((3, 4),) * 5, rand(10), rand(10), rand(5, 10), 0.9, 0.91, rand(5)
    ),
    "GrokkingProgress": lambda: GrokkingProgress(
        torch.arange(0, 300, 10),
        A.KeyFrequencies((14,), 0.9, (3.0,)),
        *(rand(30) for _ in range(8)),
        _phases(),
    ),
    "ConceptNeurons": lambda: ConceptNeurons("loop", 1, rand(16), 200, 40),
    "Calibration": lambda: H.Calibration.of(
        ints(2, 30), {"features": rand(30), "baseline": rand(30)}
    ),
    "PredictionResult": lambda: _prediction_result(),
}


def _prediction_result():
    runs = {f"r{i}": {"f": float(i % 2), "train_loss": 1.0, "test_loss": float(i % 3),
                      "y": i % 2} for i in range(24)}  # fmt: skip
    names = sorted(runs)
    p = H.Prediction(claim="<b>f</b> predicts y", outcome="y", features=("f",),
                     formation=names[:12], held_out=names[12:])  # fmt: skip
    return p.test(runs)


def test_every_result_is_on_the_display_layer():
    found = results()
    assert len(found) >= 40, sorted(found)  # the discovery sees analysis, hypotheses, studies
    assert {"Verdict", "Agreement", "GrokkingProgress", "CacheResult"} <= set(found)
    off = sorted(n for n, c in found.items() if not issubclass(c, Shown))
    assert off == [], f"results that do not inherit explorer._display.Shown: {off}"
    assert sorted(set(found) - set(EXAMPLES)) == [], "add an example of each new result here"


def test_no_result_needs_an_argument_for_its_table():
    needs = {}
    for name, cls in results().items():
        params = list(inspect.signature(cls.to_dataframe).parameters.values())[1:]
        required = [
            p.name
            for p in params
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            needs[name] = required
    assert needs == {}


def test_the_coverage_check_catches_a_result_that_skips_the_base(monkeypatch):
    """A public function returning a class off the display layer is found and flagged."""

    @dataclasses.dataclass(frozen=True)
    class Unshown:
        value: float

    def new_analysis(model, inputs) -> Unshown:
        return Unshown(1.0)

    new_analysis.__annotations__["return"] = "Unshown"
    monkeypatch.setattr(A, "new_analysis", new_analysis, raising=False)
    monkeypatch.setattr(A, "__all__", [*A.__all__, "new_analysis"])
    real = explorer_classes()
    monkeypatch.setitem(globals(), "explorer_classes", lambda: {**real, "Unshown": Unshown})
    found = results()
    assert "Unshown" in found and not issubclass(found["Unshown"], Shown)


class _Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.rows = 0, 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        self.rows += tag == "tr"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_result_prints_short_renders_and_tabulates_long(name):
    result = EXAMPLES[name]()
    assert isinstance(result, Shown) and type(result).__name__ == name
    text = repr(result)
    assert len(text) <= MAX_REPR and text.startswith(f"{name}("), text
    parsed = _Table()
    parsed.feed(result._repr_html_())
    assert parsed.tables == 1 and parsed.rows <= 17  # a header row and at most 16 more
    frame = result.to_dataframe()
    assert tidy_problems(frame) == [], frame.head()
    assert len(frame) >= 1 or name in READ_FROM_DISK


# Results whose table is read from files; their example has none, so it is empty here, and
# the test beside them checks it on real files.
READ_FROM_DISK = {"Sweep": "the runs' logged curves: tests/sweep/test_sweep.py"}


def test_tidy_problems_names_each_wide_shape():
    import pandas as pd

    assert tidy_problems(pd.DataFrame({"x": [1]}, index=pd.Index(["a"], name="unit"))) == [
        "an index ['unit'] instead of columns"
    ]
    assert tidy_problems(pd.DataFrame({"position 0": [1.0], "position 1": [2.0]})) == [
        "axis values spread over columns: ['position 0', 'position 1']"
    ]
    assert tidy_problems([1, 2]) == ["not a DataFrame but list"]
    assert tidy_problems(pd.DataFrame({"layer": [0], "head": [1], "value": [0.5]})) == []
