"""Calibrate the audit's thresholds on clean models: how often each method's score reaches its
threshold on models that carry no trigger (the false-positive rate).

Trains clean MNIST models from seeds used by no test, tutorial or benchmark (784-128-64-10
MLPs 9101-9108, 784-256-10 MLPs 9111-9118, CNNs 9201-9216: 9201-9204 and 9209-9212 the
small CNN, 9205-9208 and 9213-9216 the same CNN behind an ``nn.Unflatten``), audits each at
the defaults (an MLP with the other clean MLPs of its architecture as ``references``), and
writes every class's scores per method to a JSON file, then prints per architecture the
verdicts at the current thresholds and the largest per-source size ratio (the ``"source"``
method's score, which ``SOURCE_RATIOS`` is set from). The numbers are in docs/auditing.md ("Thresholds").
``--cache DIR`` keeps the planted models (``benchmarks.audit_game.plant_all``'s files) and
reuses them.

    python scripts/calibrate_audit.py [--mlps 8] [--mlps256 8] [--cnns 16]
        [--out calibration.json] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def scores(result) -> dict:
    parts = result.parts or (result,)
    return {
        "verdict": result.verdict,
        "seconds": result.seconds,
        "forward_passes": result.forward_passes,
        "parts": {
            p.method: {
                "verdict": p.verdict,
                "anomaly": [round(float(v), 4) for v in p.anomaly],
                "success": [round(float(v), 4) for v in p.success],
                "max_z": float(p.weight_z.max()) if p.weight_z is not None else None,
                **{
                    k: [round(float(v), 4) for v in getattr(p, k)]
                    for k in ("raw_anomaly", "square_anomaly", "raw_success", "mask_l1")
                    if getattr(p, k) is not None
                },
            }
            for p in parts
        },
    }


# architecture (``studies.auditing.make_model``'s name) -> first seed; the seeds from there on
# are clean calibration models, used by nothing else
ARCHS = {"mlp": 9101, "mlp-256": 9111, "cnn": 9201}


def game(arch: str, n: int) -> dict[int, tuple[None, str]]:
    """``plant_all``'s game of ``n`` clean models of ``arch`` (of each 8 CNN seeds, the last
    4 are the CNN behind an ``nn.Unflatten``, which takes flat inputs: 9205-9208, 9213-9216)."""
    first = ARCHS[arch]
    return {
        s: (None, "flat-cnn" if arch == "cnn" and (s - first) % 8 >= 4 else arch)
        for s in range(first, first + n)
    }


def summary(rows: list[dict]) -> dict:
    """Share of clean models per verdict, per method the models flagged or suspicious, and
    each model's largest per-source size ratio (``source_ratios``, by seed) with their max."""
    out: dict = {"models": len(rows)}
    for tier in ("flagged", "suspicious", "clean"):
        out[tier] = sum(r["verdict"] == tier for r in rows)
    methods = sorted({m for r in rows for m in r["parts"]})
    for m in methods:
        verdicts = [r["parts"][m]["verdict"] for r in rows if m in r["parts"]]
        out[m] = {t: verdicts.count(t) for t in ("flagged", "suspicious", "clean")}
    ratios = {
        r["seed"]: max(r["parts"]["source"]["anomaly"]) for r in rows if "source" in r["parts"]
    }
    if ratios:
        out["source_ratios"] = ratios
        out["max_source_ratio"] = max(ratios.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlps", type=int, default=8, help="784-128-64-10 MLPs")
    parser.add_argument("--mlps256", type=int, default=8, help="784-256-10 MLPs")
    parser.add_argument("--cnns", type=int, default=16)
    parser.add_argument("--out", default="calibration.json")
    parser.add_argument("--cache", type=Path, help="keep planted models here and reuse them")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.audit_game import plant_all
    from explorer.analysis import audit
    from explorer.studies.kitchen_sink import kitchen_sink_split

    data = kitchen_sink_split()
    counts = {"mlp": args.mlps, "mlp-256": args.mlps256, "cnn": args.cnns}
    report: dict = {arch: [] for arch in ARCHS}
    for arch, n in counts.items():
        seeds = list(game(arch, n))
        models = [p.model for p in plant_all(game(arch, n), 1000, data, args.cache)]
        for i, model in enumerate(models):
            refs = [m for j, m in enumerate(models) if j != i] if arch != "cnn" else []
            start = time.process_time()
            result = audit(model, data["test_x"], references=refs)
            row = scores(result) | {"seed": seeds[i], "cpu": time.process_time() - start}
            print(arch, seeds[i], repr(result), flush=True)
            report[arch].append(row)
    report["summary"] = {arch: summary(report[arch]) for arch in ARCHS}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
