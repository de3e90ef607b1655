"""Calibrate the audit's thresholds on clean models: how often each method's score reaches its
threshold on models that carry no trigger (the false-positive rate).

Trains clean MNIST models from seeds used by no test, tutorial or benchmark (MLPs 9101-9108,
CNNs 9201-9208: 9201-9204 the small CNN, 9205-9208 the same CNN behind an ``nn.Unflatten``),
audits each at the defaults (MLPs with the other clean MLPs as ``references``), and writes
every class's scores per method to a JSON file, then prints the rates at the current
thresholds. The numbers are in docs/auditing.md ("Thresholds"). ``--cache DIR`` keeps the
planted models (``benchmarks.audit_game.plant_all``'s files) and reuses them.

    python scripts/calibrate_audit.py [--mlps 8] [--cnns 8] [--out calibration.json] [--cache DIR]
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


def summary(rows: list[dict]) -> dict:
    """Share of clean models per verdict, and per method the models flagged or suspicious."""
    out = {"models": len(rows)}
    for tier in ("flagged", "suspicious", "clean"):
        out[tier] = sum(r["verdict"] == tier for r in rows)
    methods = sorted({m for r in rows for m in r["parts"]})
    for m in methods:
        verdicts = [r["parts"][m]["verdict"] for r in rows if m in r["parts"]]
        out[m] = {t: verdicts.count(t) for t in ("flagged", "suspicious", "clean")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlps", type=int, default=8)
    parser.add_argument("--cnns", type=int, default=8)
    parser.add_argument("--out", default="calibration.json")
    parser.add_argument("--cache", type=Path, help="keep planted models here and reuse them")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.audit_game import plant_all
    from explorer.analysis import audit
    from explorer.studies.kitchen_sink import kitchen_sink_split

    data = kitchen_sink_split()
    report: dict = {"mlp": [], "cnn": []}
    for arch, seeds in (
        ("mlp", range(9101, 9101 + args.mlps)),
        ("cnn", range(9201, 9201 + args.cnns)),
    ):
        # the CNN seeds from 9205 on are the CNN behind an nn.Unflatten (flat inputs)
        game = {s: (None, "flat-cnn" if s >= 9205 else arch) for s in seeds}
        models = [p.model for p in plant_all(game, 1000, data, args.cache)]
        for i, model in enumerate(models):
            refs = [m for j, m in enumerate(models) if j != i] if arch == "mlp" else []
            start = time.process_time()
            result = audit(model, data["test_x"], references=refs)
            row = scores(result) | {"seed": seeds[i], "cpu": time.process_time() - start}
            print(arch, seeds[i], repr(result), flush=True)
            report[arch].append(row)
    report["summary"] = {arch: summary(report[arch]) for arch in ("mlp", "cnn")}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
