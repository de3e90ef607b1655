"""Study results print short, render as a labelled table and convert to a DataFrame holding
their arrays. Built from their fields (the recipes that compute them are tested beside
them); seeded random values of tutorial size and larger."""

from __future__ import annotations

import torch

from explorer._display import MAX_REPR
from explorer.analysis.fourier import KeyFrequencies
from explorer.studies.attribution_benchmark import AttributionBenchmark
from explorer.studies.editing import EditComparison
from explorer.studies.grokking import GrokkingProgress
from explorer.studies.grokking_phases import Phases, detect_phases

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.rand(*shape, generator=G)


def row_labels(page: str) -> int:
    return page.count("<th scope='row'")


def test_an_edit_comparison_reads_as_before_and_after():
    c = EditComparison(
        target=8,
        layer=1,
        method="scale",
        units=tuple(range(20)),
        random_units=tuple(tuple(range(i, i + 20)) for i in range(50)),
        accuracy_before=rand(10),
        accuracy_targeted=rand(10),
        accuracy_random=rand(50, 10),
        overall_before=0.9,
        overall_targeted=0.91,
        overall_random=rand(50),
    )
    text = repr(c)
    assert len(text) <= MAX_REPR and f"{c.targeted_gain:+.3g}" in text
    assert row_labels(c._repr_html_()) == 10
    frame = c.to_dataframe()
    assert frame["class"].tolist() == list(range(10))
    assert torch.allclose(
        torch.tensor(frame["targeted edit"].to_numpy()), c.accuracy_targeted.double()
    )


def test_an_attribution_benchmark_reads_as_a_table_of_methods():
    methods = ("saliency", "integrated_gradients", "smoothgrad", "occlusion")
    b = AttributionBenchmark(
        methods=methods,
        deletion_auc=torch.tensor([0.4, 0.1, 0.3, 0.2]),
        insertion_auc=rand(4),
        random_deletion_auc=0.5,
        random_insertion_auc=0.3,
        randomization_spearman=rand(4),
        randomization_spearman_foreground=rand(4),
        seconds_per_image=rand(4),
        fractions=torch.linspace(0, 1, 21),
        deletion_curves=rand(4, 21),
        insertion_curves=rand(4, 21),
        random_deletion_curve=rand(21),
        random_insertion_curve=rand(21),
        n_images=64,
    )
    text = repr(b)
    assert len(text) <= MAX_REPR and "top: integrated_gradients deletion AUC 0.1" in text
    assert row_labels(b._repr_html_()) == 4
    frame = b.to_dataframe()
    assert frame["method"].tolist() == list(methods)
    occlusion = frame[frame["method"] == "occlusion"].iloc[0]
    assert occlusion["deletion AUC (lower better)"] == torch.tensor(0.2).item()


def test_grokking_progress_reads_as_measures_per_checkpoint():
    n = 300
    steps = torch.arange(0, 10 * n, 10)
    phases = Phases(
        memorized=200, circuit_start=600, cleanup_start=1500, cleanup_end=2000, last_step=2990
    )
    p = GrokkingProgress(
        steps=steps,
        key=KeyFrequencies((14, 35, 41), 0.9, (3.0, 2.0, 1.0)),
        train_loss=rand(n),
        test_loss=rand(n),
        train_acc=rand(n),
        test_acc=rand(n),
        restricted_loss=rand(n),
        excluded_loss=rand(n),
        gini=rand(n),
        weight_norm=rand(n),
        phases=phases,
    )
    text = repr(p)
    assert len(text) <= MAX_REPR and "cleanup 1500..2000" in text
    page = p._repr_html_()
    assert row_labels(page) == 12 and "<th scope='row' style='text-align:left'>2990</th>" in page
    frame = p.to_dataframe()
    assert frame["step"].iloc[-1] == 2990
    assert torch.allclose(torch.tensor(frame["gini"].to_numpy()), p.gini.double())


def test_grokking_phases_read_as_one_row_per_phase():
    steps = list(range(0, 100, 5))
    train_acc = [min(1.0, s / 20) for s in steps]
    test_loss = [3.0 if s < 60 else 0.1 for s in steps]
    restricted = [3.0 if s < 40 else 0.1 for s in steps]
    excluded = [1.0 if s < 60 else 4.0 for s in steps]
    test_acc = [0.01 if s < 60 else 1.0 for s in steps]
    phases = detect_phases(steps, train_acc, test_loss, restricted, excluded, test_acc=test_acc)
    reached = phases.as_list()
    assert [p.name for p in reached] == ["memorisation", "circuit formation", "cleanup"]
    text = repr(phases)
    assert len(text) <= MAX_REPR and text.startswith("Phases(") and "memorisation 0..20" in text
    assert row_labels(phases._repr_html_()) == len(reached)
    frame = phases.to_dataframe()
    assert frame["phase"].tolist() == [p.name for p in reached]
    assert frame["start"].tolist() == [p.start for p in reached]
