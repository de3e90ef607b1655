"""Every analysis result prints short, renders as a labelled HTML table and (where tabular)
converts to a DataFrame that holds exactly its arrays.

Each case below computes a real result on a tiny or shipped model and says, from the
result's own arrays (not from its display code), which entry should be on top.
"""

from __future__ import annotations

import html
import math
import re
from html.parser import HTMLParser

import pytest
import torch

from explorer._display import MAX_REPR, tidy_problems
from explorer.analysis import (
    Head,
    ablate,
    ablation_sweep,
    activation_histogram,
    activation_patching,
    attribute_tokens,
    circuit_svd,
    composition_scores,
    detect_heads,
    direct_logit_attribution,
    find_induction_circuit,
    head_scores,
    linear_probes,
    logit_lens,
    metrics,
    neuron_logit_weights,
    ov_copying_scores,
    path_patching,
    run_with_cache,
    top_k_examples,
)
from explorer.analysis.fourier import fourier_spectrum, key_frequencies
from explorer.analysis.units import Neuron
from explorer.data import repeated_tokens
from explorer.models import zoo

torch.set_num_threads(1)


def top_flat(values: torch.Tensor, by_abs: bool = True) -> int:
    """The flat index of the largest entry (by magnitude), NaN left out."""
    flat = values.detach().flatten().double()
    keys = flat.abs() if by_abs else flat.clone()
    keys[flat.isnan()] = -math.inf
    return int(keys.argmax())


@pytest.fixture(scope="module")
def lm():
    return zoo.trained_induction()


@pytest.fixture(scope="module")
def tokens():
    return repeated_tokens(4, 6, 64, seed=0)


@pytest.fixture(scope="module")
def mlp():
    return zoo.mnist_mlp(hidden=(16,), seed=0)


@pytest.fixture(scope="module")
def images():
    return torch.rand(24, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _ablation(lm, tokens, mlp, images):
    r = ablate(
        lm, tokens, units=["head 1.0", "head 1.1"], metric=metrics.repeated_half_loss(tokens)
    )
    return r, f"{r.effect:+.3g}"


def _sweep(lm, tokens, mlp, images):
    r = ablation_sweep(lm, tokens, metric=metrics.repeated_half_loss(tokens))
    return r, str(r.units[top_flat(r.effect)])


def _head_scores(lm, tokens, mlp, images):
    r = head_scores(lm, tokens)
    grid = r.get("induction")
    return r, str(Head(*divmod(top_flat(grid, by_abs=False), grid.shape[1])))


def _patching(lm, tokens, mlp, images):
    corrupted = tokens.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 1) % 64
    r = activation_patching(
        lm, tokens, corrupted=corrupted, metric=metrics.repeated_half_loss(tokens)
    )
    layer, pos = divmod(top_flat(r.recovery), r.values.shape[1])
    return r, f"layer {layer} position {pos}"


def _patching_3d(lm, tokens, mlp, images):
    corrupted = tokens.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 1) % 64
    r = activation_patching(
        lm,
        tokens,
        corrupted=corrupted,
        metric=metrics.repeated_half_loss(tokens),
        grid="head_by_pos",
    )
    _, n_pos, n_heads = r.values.shape
    flat = top_flat(r.recovery)
    return (
        r,
        f"layer {flat // (n_pos * n_heads)} position {flat // n_heads % n_pos} head {flat % n_heads}",
    )


def _top_k(lm, tokens, mlp, images):
    r = top_k_examples(mlp, images, layer=0, n=3)
    return r, f"unit {top_flat(r.values[:, 0], by_abs=False)} "


def _histogram(lm, tokens, mlp, images):
    labels = torch.arange(24) % 3
    r = activation_histogram(mlp, images, unit=Neuron(0, 2), bins=20, labels=labels)
    return r, f" {int(r.counts.max())}"


def _composition(lm, tokens, mlp, images):
    r = composition_scores(lm, baseline_samples=20)
    flat = top_flat(r.scores, by_abs=False)
    _, n_layers, n_heads, _, _ = r.scores.shape
    k, rest = divmod(flat, n_layers * n_heads * n_layers * n_heads)
    a, b = divmod(rest, n_layers * n_heads)
    return r, f"{Head(*divmod(a, n_heads))} -> {Head(*divmod(b, n_heads))}"


def _copying(lm, tokens, mlp, images):
    r = ov_copying_scores(lm)
    return r, str(Head(*divmod(top_flat(r.eigenvalue, by_abs=False), r.eigenvalue.shape[1])))


def _probes(lm, tokens, mlp, images):
    labels = torch.arange(24) % 2
    r = linear_probes(
        mlp,
        images[:16],
        labels=labels[:16],
        test_inputs=images[16:],
        test_labels=labels[16:],
        max_iter=5,
    )
    return r, r.hooks[top_flat(r.test_accuracy, by_abs=False)]


def _spectrum(lm, tokens, mlp, images):
    p = 13
    x = torch.arange(p, dtype=torch.float64)
    matrix = torch.stack(
        [torch.cos(2 * math.pi * 3 * x / p), torch.sin(2 * math.pi * 5 * x / p)], 1
    )
    r = fourier_spectrum(0.2 * matrix + matrix[:, :1])
    return r, f"frequency {top_flat(r.frequency_norms, by_abs=False)} "


def _key_frequencies(lm, tokens, mlp, images):
    spectrum, _ = _spectrum(lm, tokens, mlp, images)
    r = key_frequencies(spectrum, mass=0.9)
    return r, f"{r.frequencies[0]} "


def _cache(lm, tokens, mlp, images):
    r = run_with_cache(lm, tokens, hooks=["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_pre"])
    return r, "blocks.0.attn.hook_pattern"


def _induction_circuit(lm, tokens, mlp, images):
    r = find_induction_circuit(lm, repeated_tokens(8, 20, 64, seed=11))
    assert r.pairs, "the shipped model has an induction circuit"
    a, b, _ = r.pairs[0]
    return r, f"{a} -> {b}"


def _circuit_svd(lm, tokens, mlp, images):
    r = circuit_svd(lm, units=["head 1.0", "head 1.1"], n=3)
    return r, str(r.heads[0])


def _dla(lm, tokens, mlp, images):
    r = direct_logit_attribution(lm, tokens, target="t5", granularity="head")
    return r, r.labels[top_flat(r.values.mean(0))]


def _steering(lm, tokens, mlp, images):
    from explorer.analysis import Feature, steer
    from explorer.features import SparseAutoencoder

    sae = SparseAutoencoder.create(
        "blocks.0.hook_resid_post", d_in=lm.d_model, d_sae=16, architecture="standard"
    )
    r = steer(
        lm, tokens, units=Feature(sae, 2), metric=metrics.repeated_half_loss(tokens), amount=4.0
    )
    return r, "feature 2"


def _comparison(lm, tokens, mlp, images):
    from explorer.analysis import compare

    r = compare(lm, tokens[:2], other=lm.copy())
    return r, "quickstart-induction"


def _lens(lm, tokens, mlp, images):
    r = logit_lens(lm, tokens[:2], n=3)
    return r, r.token_text[int(r.top_ids[-1, 0, -1, 0])]


def _token_attribution(lm, tokens, mlp, images):
    r = attribute_tokens(lm, tokens[:2, :8], target="t5", n_steps=8)
    return r, "TokenAttribution(2 examples x 8 tokens"


def _neuron_logits(lm, tokens, mlp, images):
    from explorer.models.config import TransformerConfig

    m = zoo.transformer(
        TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, d_vocab=10, n_ctx=8)
    )
    r = neuron_logit_weights(m, units=["neuron 0.3", "neuron 0.5"])
    return r, "neuron 0.3"


def _detection(lm, tokens, mlp, images):
    r = detect_heads(lm, tokens, pattern="induction_head")
    layer, head = divmod(top_flat(r.scores, by_abs=False), r.scores.shape[1])
    return r, f"L{layer}H{head}"


def _path_patching(lm, tokens, mlp, images):
    corrupted = tokens.clone()
    corrupted[:, 2] = (corrupted[:, 2] + 1) % 64
    r = path_patching(
        lm,
        tokens,
        corrupted=corrupted,
        receivers="head 1.0",
        metric=metrics.repeated_half_loss(tokens),
    )
    return r, "L1H0"


def _feature_vis(lm, tokens, mlp, images):
    from explorer.analysis import maximize_activation

    r = maximize_activation(mlp, unit=Neuron(0, 3), n=3, n_steps=8)
    return r, f"image {top_flat(r.activations, by_abs=False)} "


def _output_effect(lm, tokens, mlp, images):
    from explorer.analysis.neuron_effects import output_effect

    r = output_effect(mlp, unit=Neuron(0, 3))
    return r, r.labels[top_flat(r.values)]


def _windows(lm, tokens, mlp, images):
    from explorer.analysis import example_windows

    m = zoo.modular_addition_transformer(p=7, d_model=8)
    tokens = torch.tensor([[0, 1, 7], [2, 3, 7], [4, 4, 7]])
    r = example_windows(
        m,
        tokens,
        unit=Neuron(0, 5),
        examples=torch.tensor([2, 0, 1]),
        positions=torch.tensor([2, 1, 2]),
        context=1,
        after=0,
    )
    peak = r.acts.amax(1)
    return r, f"example {int(r.examples[top_flat(peak, by_abs=False)])} "


def _induction_progress(lm, tokens, mlp, images):
    from explorer.analysis import induction_progress

    r = induction_progress(lm, tokens)
    return r, f"max_previous_token_score={r.max_previous_token_score:.3g}"


def _phase_change(lm, tokens, mlp, images):
    from explorer.analysis.progress import detect_phase_change

    steps = list(range(0, 1000, 10))
    r = detect_phase_change(steps, [4.0 if s < 500 else 1.0 for s in steps])
    return r, f"step={r.step}"


def _stamped(lm, tokens, mlp, images):
    from explorer.analysis import audit, stamped_examples

    r = stamped_examples(
        mlp, result=audit(mlp, images, method="stamp", budget=300), inputs=images, target=3, n=4
    )
    return r, f"class {r.cls}"


def _place(lm, tokens, mlp, images):
    from explorer.analysis import audit, trigger_place

    r = trigger_place(
        mlp, images, result=audit(mlp, images, method="stamp", budget=300), target=3, reach=1
    )
    return r, f"class {r.cls}"


def _audit(lm, tokens, mlp, images):
    from explorer.analysis import audit

    r = audit(mlp, images, method="stamp", budget=300)
    return r, "clean" if r.clean else f"flagged {list(r.flagged)}"


def _weight_outliers(lm, tokens, mlp, images):
    from explorer.analysis import weight_outliers
    from explorer.models import zoo

    references = [zoo.mnist_mlp(hidden=(16,), seed=s) for s in (1, 2, 3)]
    r = weight_outliers(mlp, references=references)
    return r, "found" if r.found else "no pixel"


def _confusion(lm, tokens, mlp, images):
    from explorer.analysis import confusion

    r = confusion(mlp, images, labels=torch.zeros(24, dtype=torch.long))
    true, predicted, count = r.top_confusions(3)[0]
    return r, f"{true} as {predicted} x{count}"


def _attribution(lm, tokens, mlp, images):
    from explorer.analysis import attribute

    r = attribute(mlp, images[:3], target=[1, 2, 3], method="integrated_gradients", n_steps=8)
    return r, f"image {top_flat(r.maps.flatten(1).sum(1))} "


CASES = {
    "AblationResult": _ablation,
    "SteeringResult": _steering,
    "Comparison": _comparison,
    "SweepResult": _sweep,
    "HeadScores": _head_scores,
    "PatchingResult": _patching,
    "PatchingResult by position": _patching_3d,
    "TopKExamples": _top_k,
    "Histogram": _histogram,
    "CompositionScores": _composition,
    "CopyingScores": _copying,
    "ProbeResults": _probes,
    "FourierSpectrum": _spectrum,
    "KeyFrequencies": _key_frequencies,
    "CacheResult": _cache,
    "InductionCircuit": _induction_circuit,
    "CircuitSVD": _circuit_svd,
    "LogitAttribution": _dla,
    "LogitLens": _lens,
    "TokenAttribution": _token_attribution,
    "NeuronLogitWeights": _neuron_logits,
    "HeadDetection": _detection,
    "PathPatchingResult": _path_patching,
    "FeatureVisualization": _feature_vis,
    "OutputEffect": _output_effect,
    "ExampleWindows": _windows,
    "InductionProgress": _induction_progress,
    "PhaseChange": _phase_change,
    "StampedExamples": _stamped,
    "TriggerPlace": _place,
    "Confusion": _confusion,
    "AuditResult": _audit,
    "WeightOutliers": _weight_outliers,
    "AttributionMaps": _attribution,
}


@pytest.fixture(scope="module")
def computed(lm, tokens, mlp, images):
    return {name: make(lm, tokens, mlp, images) for name, make in CASES.items()}


class _Table(HTMLParser):
    """Collects each table row's label cell (a ``<th scope=row>``)."""

    def __init__(self):
        super().__init__()
        self.tables, self.row_labels, self._in_label = 0, [], False

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        if tag == "th" and ("scope", "row") in attrs:
            self._in_label = True
            self.row_labels.append("")

    def handle_endtag(self, tag):
        self._in_label = self._in_label and tag != "th"

    def handle_data(self, data):
        if self._in_label:
            self.row_labels[-1] += data


@pytest.mark.parametrize("name", CASES)
def test_repr_is_short_and_names_the_top_entry(name, computed):
    result, top = computed[name]
    text = repr(result)
    assert len(text) <= MAX_REPR, text
    assert text.startswith(type(result).__name__ + "(")
    assert top in text, f"{top!r} not in {text!r}"


@pytest.mark.parametrize("name", CASES)
def test_html_is_a_table_with_labelled_rows(name, computed):
    result, top = computed[name]
    page = result._repr_html_()
    parsed = _Table()
    parsed.feed(page)
    assert parsed.tables == 1 and parsed.row_labels and all(parsed.row_labels)
    assert len(parsed.row_labels) <= 16  # small, whatever the result's size
    if not name.startswith(
        (
            "TokenAttribution",
            "CacheResult",
            "AblationResult",
            "LogitLens",
            "InductionProgress",
            "PhaseChange",
            "Confusion",
        )
    ):
        assert top.strip() in html.unescape(page)


def _values(frame, column):
    return torch.tensor(frame[column].to_numpy(dtype="float64"))


@pytest.mark.parametrize("name", CASES)
def test_tables_are_long(name, computed):
    """One row per observation, identifiers as columns, no axis spread over columns."""
    result, _ = computed[name]
    assert tidy_problems(result.to_dataframe()) == []


def _row(frame, **keys):
    """The one row of ``frame`` whose columns equal ``keys``."""
    match = frame
    for column, value in keys.items():
        match = match[match[column] == value]
    assert len(match) == 1, (keys, len(match))
    return match.iloc[0]


def test_tables_hold_the_results_arrays(computed):
    ablation, _ = computed["AblationResult"]
    frame = ablation.to_dataframe()
    assert list(frame.columns) == ["example", "before", "after", "change"]
    assert torch.allclose(_values(frame, "after"), ablation.after.double())

    sweep, _ = computed["SweepResult"]
    frame = sweep.to_dataframe()
    assert _row(frame, layer=1, head=2)["effect"] == pytest.approx(
        float(sweep.effect[sweep.units.index(Head(1, 2))])
    )
    grid = frame.pivot(index="layer", columns="head", values="effect")
    assert torch.allclose(torch.tensor(grid.to_numpy()), sweep.grid().double(), equal_nan=True)

    patching, _ = computed["PatchingResult"]
    frame = patching.to_dataframe()
    assert list(frame.columns) == ["layer", "position", "value", "recovery"]
    grid = frame.pivot(index="layer", columns="position", values="value")
    assert torch.allclose(torch.tensor(grid.to_numpy()), patching.values.double())

    by_pos, _ = computed["PatchingResult by position"]
    frame = by_pos.to_dataframe()
    assert list(frame.columns)[:3] == ["layer", "position", "head"]
    assert _row(frame, layer=1, position=3, head=2)["value"] == pytest.approx(
        float(by_pos.values[1, 3, 2])
    )

    top, _ = computed["TopKExamples"]
    frame = top.to_dataframe()
    assert list(frame.columns) == ["unit", "rank", "example", "position", "value"]
    assert _row(frame, unit=5, rank=1)["value"] == pytest.approx(float(top.values[5, 1]))
    assert _row(frame, unit=5, rank=1)["example"] == int(top.example[5, 1])

    hist, _ = computed["Histogram"]
    frame = hist.to_dataframe()
    assert list(frame.columns) == ["bin", "left", "right", "class", "count"]
    assert frame.groupby("bin")["count"].sum().tolist() == hist.counts.tolist()
    assert frame[frame["class"] == 2]["count"].tolist() == hist.by_class[2].tolist()

    composition, _ = computed["CompositionScores"]
    frame = composition.to_dataframe()
    assert len(frame) == int((~composition.scores.isnan()).sum())
    row = frame[
        (frame.composition == "k") & (frame.head_a == "head 0.1") & (frame.head_b == "head 1.3")
    ]
    assert float(row.score.iloc[0]) == pytest.approx(composition.score("k", "head 0.1", "head 1.3"))

    copying, _ = computed["CopyingScores"]
    frame = copying.to_dataframe()
    assert _row(frame, layer=1, head=2)["eigenvalue"] == pytest.approx(
        float(copying.eigenvalue[1, 2])
    )

    probes, _ = computed["ProbeResults"]
    frame = probes.to_dataframe()
    assert frame["hook"].tolist() == list(probes.hooks)
    assert torch.allclose(_values(frame, "held-out accuracy"), probes.test_accuracy.double())

    spectrum, _ = computed["FourierSpectrum"]
    frame = spectrum.to_dataframe()
    assert torch.allclose(_values(frame, "norm"), spectrum.frequency_norms.double())
    assert frame["share"].sum() == pytest.approx(1.0)

    keys, _ = computed["KeyFrequencies"]
    assert keys.to_dataframe()["frequency"].tolist() == list(keys.frequencies)

    vis, _ = computed["FeatureVisualization"]
    frame = vis.to_dataframe()
    assert frame["image"].tolist() == list(range(len(vis.activations)))
    assert torch.allclose(_values(frame, "activation"), vis.activations.double())
    assert vis._repr_html_().count("<img src='data:image/png;base64,") == 3

    effect, _ = computed["OutputEffect"]
    frame = effect.to_dataframe()
    assert frame["target"].tolist() == list(effect.labels)
    assert torch.allclose(_values(frame, "effect"), effect.values.double())

    windows, _ = computed["ExampleWindows"]
    frame = windows.to_dataframe()
    first = frame[frame["offset"] == 0]
    assert first["example"].tolist() == windows.examples.tolist()
    assert first["start"].tolist() == list(windows.starts)
    acts = frame.pivot(index="window", columns="offset", values="activation")
    assert torch.allclose(torch.tensor(acts.to_numpy(dtype="float64")), windows.acts.double())

    matrix, _ = computed["Confusion"]
    frame = matrix.to_dataframe()
    assert list(frame.columns) == ["true", "predicted", "count"]
    pivot = frame.pivot(index="true", columns="predicted", values="count")
    assert torch.equal(torch.tensor(pivot.to_numpy()), matrix.matrix.long())
    true, predicted, count = matrix.top_confusions(3)[0]
    assert f"<th scope='row' style='text-align:left'>class {true}</th>" in matrix._repr_html_()
    assert f"{predicted} (x{count})" in matrix._repr_html_()

    maps, _ = computed["AttributionMaps"]
    frame = maps.to_dataframe()
    assert frame["target"].tolist() == [1, 2, 3]
    assert torch.allclose(_values(frame, "total"), maps.maps.double().flatten(1).sum(1))
    assert torch.allclose(_values(frame, "convergence_delta"), maps.convergence_delta.double())

    svd, _ = computed["CircuitSVD"]
    frame = svd.to_dataframe()
    assert list(frame.columns) == ["head", "direction", "singular_value", *svd.sides]
    assert torch.allclose(_values(frame, "singular_value"), svd.S.double().flatten())

    dla, _ = computed["LogitAttribution"]
    frame = dla.to_dataframe()
    assert frame["unit"].tolist() == list(dla.labels)
    assert torch.allclose(_values(frame, "mean"), dla.values.double().mean(0))

    lens, _ = computed["LogitLens"]
    frame = lens.to_dataframe()
    assert len(frame) == len(lens.labels) * len(lens.input_text)
    assert torch.equal(
        torch.tensor(frame["target_rank"].to_numpy()), lens.target_rank[:, 0].flatten()
    )

    tokens_attr, _ = computed["TokenAttribution"]
    frame = tokens_attr.to_dataframe()
    assert torch.allclose(_values(frame, "score"), tokens_attr.scores.double().flatten())

    detection, _ = computed["HeadDetection"]
    frame = detection.to_dataframe()
    assert torch.allclose(_values(frame, "score"), detection.scores.double().flatten())

    path, _ = computed["PathPatchingResult"]
    frame = path.to_dataframe()
    row = frame[(frame["layer"] == 0) & (frame["head"] == 1)]
    assert float(row.metric.iloc[0]) == pytest.approx(float(path.values[0, 1]))

    audited, _ = computed["AuditResult"]
    frame = audited.to_dataframe()
    assert frame["class"].tolist() == list(range(len(audited.anomaly)))
    assert torch.allclose(_values(frame, "anomaly"), audited.anomaly.double())

    weights, _ = computed["NeuronLogitWeights"]
    frame = weights.to_dataframe()
    first = frame[(frame.neuron == str(weights.neurons[0])) & (frame["rank"] == 0)]
    assert first.weight.max() == pytest.approx(float(weights.values[0].max()))

    circuit, _ = computed["InductionCircuit"]
    frame = circuit.to_dataframe()
    assert frame.iloc[0].tolist()[:2] == [str(circuit.pairs[0][0]), str(circuit.pairs[0][1])]


def _big(name):
    """Results of each kind far larger than a tutorial's (their reprs must stay short)."""
    from explorer.analysis import (
        AblationResult,
        CacheResult,
        CompositionScores,
        CopyingScores,
        HeadScores,
        Histogram,
        LogitLens,
        Neuron,
        PatchingResult,
        SweepResult,
        TokenAttribution,
        TopKExamples,
    )
    from explorer.analysis.fourier import FourierSpectrum, KeyFrequencies

    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)
    units = tuple(Neuron(layer, n) for layer in range(4) for n in range(512))
    return {
        "AblationResult": lambda: AblationResult(r(1000), r(1000), units, "mean", ("h",) * 4),
        "SweepResult": lambda: SweepResult(units, 1.0, r(2048), r(2048, 8), "zero"),
        "HeadScores": lambda: HeadScores(r(100, 4, 12, 12), ("a", "b", "c", "d")),
        "PatchingResult": lambda: PatchingResult(r(12, 64, 16), 1.0, 0.0, "head_by_pos"),
        "TopKExamples": lambda: TopKExamples(
            r(4096, 50),
            torch.zeros(4096, 50, dtype=torch.long),
            torch.zeros(4096, 50, dtype=torch.long),
            "blocks.11.mlp.hook_post",
            10**6,
        ),
        "Histogram": lambda: Histogram(
            torch.arange(200),
            torch.linspace(-5, 5, 201),
            "h",
            3,
            torch.ones(10, 200, dtype=torch.long),
        ),
        "CompositionScores": lambda: CompositionScores(
            r(3, 12, 12, 12, 12), ("q", "k", "v"), 0.1, 0.01
        ),
        "CopyingScores": lambda: CopyingScores(r(12, 12), r(12, 12), 50000),
        "FourierSpectrum": lambda: FourierSpectrum(
            113, r(113), r(57), tuple(f"b{i}" for i in range(113))
        ),
        "KeyFrequencies": lambda: KeyFrequencies(tuple(range(1, 57)), 0.99, tuple(range(56))),
        "LogitLens": lambda: LogitLens(
            torch.zeros(97, 1, 1024, 5, dtype=torch.long),
            r(97, 1, 1024, 5),
            torch.zeros(1, 1024, dtype=torch.long),
            r(97, 1, 1024),
            torch.zeros(97, 1, 1024, dtype=torch.long),
            tuple(f"a very long row label number {i}" for i in range(97)),
            tuple("tok" for _ in range(1024)),
            {0: " a token whose text is rather long, as some BPE pieces are"},
        ),
        "TokenAttribution": lambda: TokenAttribution(
            r(4, 1024),
            r(4),
            r(4),
            r(4),
            tuple(tuple(f" long token text {p}" for p in range(1024)) for _ in range(4)),
            "' a target token' - ' another token with long text'",
            torch.zeros(4, dtype=torch.long),
            64,
        ),
        "CacheResult": lambda: CacheResult(
            r(8, 10), {f"blocks.{i}.hook_resid_pre": r(2, 3) for i in range(100)}
        ),
    }[name]()


@pytest.mark.parametrize(
    "name",
    [
        "AblationResult",
        "SweepResult",
        "HeadScores",
        "PatchingResult",
        "TopKExamples",
        "Histogram",
        "CompositionScores",
        "CopyingScores",
        "FourierSpectrum",
        "KeyFrequencies",
        "CacheResult",
        "LogitLens",
        "TokenAttribution",
    ],
)
def test_reprs_and_tables_stay_small_however_big_the_result(name):
    result = _big(name)
    assert len(repr(result)) <= MAX_REPR
    parsed = _Table()
    parsed.feed(result._repr_html_())
    assert 0 < len(parsed.row_labels) <= 16


NOT_RESULTS = (
    "Head",
    "Neuron",
    "ResidPosition",
    "Probe",
    "ColorScale",
)  # units, a fitted model, a figure setting


def test_every_result_an_analysis_returns_is_covered_here():
    """Each dataclass a public analysis function returns renders itself and has a case above
    (so a new result type cannot land without a short repr and a table)."""
    import dataclasses
    import inspect

    import explorer.analysis as analysis

    classes = {
        name: obj
        for name, obj in vars(analysis).items()
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and name not in NOT_RESULTS
    }
    returned = {
        name
        for fn in vars(analysis).values()
        if inspect.isfunction(fn)
        for name in classes
        if re.search(rf"\b{name}\b", str(fn.__annotations__.get("return", "")))
    }
    covered = {name.split(" ")[0] for name in CASES} | {"FourierBasis"}
    assert sorted(returned - covered) == []
    assert all(hasattr(classes[name], "_repr_html_") for name in returned)


def test_without_pandas_to_dataframe_says_what_to_install(computed, monkeypatch):
    """pandas is a dependency, but a broken or stripped install gets a sentence, not a
    bare ModuleNotFoundError, from every result's table."""
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    for result, _ in computed.values():
        with pytest.raises(ImportError, match=r"to_dataframe\(\) needs pandas.*pip install pandas"):
            result.to_dataframe()
