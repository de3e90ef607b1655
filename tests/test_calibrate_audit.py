"""scripts/calibrate_audit.py calibrates the audit's thresholds on clean 784-256-10 MLPs too
(seeds 9111-9118), and its summary reports each clean model's largest per-source size ratio,
the score ``SOURCE_RATIOS`` is set from (docs/auditing.md, "Thresholds")."""

from __future__ import annotations

import torch
from scripts_loader import load_script

from benchmarks.audit_game import GAME
from explorer.analysis import audit
from explorer.analysis.backdoor_audit import SOURCE_RATIOS
from explorer.studies.auditing import make_model

torch.set_num_threads(1)


def _script():
    return load_script("calibrate_audit")


def test_calibration_plants_clean_784_256_10_mlps_on_seeds_nothing_else_uses():
    script = _script()
    game = script.game("mlp-256", 8)
    assert game == {seed: (None, "mlp-256") for seed in range(9111, 9119)}
    first = next(p for n, p in make_model("mlp-256", 9111).named_parameters() if "weight" in n)
    assert tuple(first.shape) == (256, 784)
    seeds = [set(script.game(arch, 16 if arch == "cnn" else 8)) for arch in script.ARCHS]
    assert len(set().union(*seeds)) == 8 * len(script.ARCHS) + 8  # no seed in two architectures
    assert not set().union(*seeds) & set(GAME)  # nor in the benchmark
    cnns = script.game("cnn", 16)  # of each 8 CNN seeds, 4 small CNNs, then 4 behind Unflatten
    assert [cnns[s][1] for s in range(9201, 9217)] == (["cnn"] * 4 + ["flat-cnn"] * 4) * 2


def test_calibration_summary_reads_each_models_source_ratio():
    script = _script()
    model = make_model("mlp-256", 0)
    x = torch.rand(120, 1, 28, 28)
    result = audit(model, x, method="source", budget=400)
    rows = [
        script.scores(result) | {"seed": 9111, "cpu": 0.0},
        script.scores(result) | {"seed": 9112, "cpu": 0.0, "verdict": "suspicious"},
    ]
    out = script.summary(rows)
    ratio = round(float(result.anomaly.max()), 4)
    assert out["source_ratios"] == {9111: ratio, 9112: ratio}
    assert out["max_source_ratio"] == ratio
    assert (out["models"], out["suspicious"]) == (2, 1)
    assert sum(out["source"].values()) == 2
    # the 784-256-10 MLPs' clean ratios stay under the 784-128-64-10 ones': one MLP ratio
    assert result.threshold == SOURCE_RATIOS["linear"]
