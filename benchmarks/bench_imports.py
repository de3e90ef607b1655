"""Import time of ``explorer`` and ``explorer.analysis`` in a fresh interpreter.

Each repeat starts a new Python process that imports, in order, torch, ``explorer``,
``explorer.analysis``, and then builds the first model, which is when transformer-lens
(and with it ``transformers``) is imported: explorer imports it lazily. Times are the
increments between those steps; the reference for each import row is ``import torch``
alone, the floor any torch library pays. The median over repeats is reported.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from benchmarks.results import Row

BENCHMARK = "import time"

_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import explorer
t2 = time.perf_counter()
import explorer.analysis
t3 = time.perf_counter()
lazy = "transformer_lens" not in sys.modules
explorer.zoo.attention_only_transformer(n_layers=1, d_model=16, n_heads=2, d_vocab=10, n_ctx=8)
t4 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "explorer": t2 - t1, "analysis": t3 - t2,
                  "first_model": t4 - t3, "transformer_lens_lazy": lazy}))
"""


def measure_once() -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"import subprocess failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(size: str = "full") -> list[Row]:
    repeats = {"tiny": 1, "small": 1, "full": 5}[size]
    runs = [measure_once() for _ in range(repeats)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    torch_s, explorer_s, analysis_s = median("torch"), median("explorer"), median("analysis")
    lazy = all(r["transformer_lens_lazy"] for r in runs)
    note = f"median of {repeats} fresh interpreters; includes import torch ({torch_s:.2f} s)"
    return [
        Row(
            BENCHMARK,
            "import explorer (fresh interpreter)",
            "s",
            torch_s + explorer_s,
            torch_s,
            details={"without_torch_s": explorer_s, "repeats": repeats},
            note=note,
        ),
        Row(
            BENCHMARK,
            "import explorer.analysis (fresh interpreter)",
            "s",
            torch_s + explorer_s + analysis_s,
            torch_s,
            details={"without_torch_s": explorer_s + analysis_s, "repeats": repeats},
        ),
        Row(
            BENCHMARK,
            "first model built: lazy import of transformer-lens",
            "s",
            median("first_model"),
            details={"transformer_lens_imported_lazily": lazy, "repeats": repeats},
            note=(
                "paid once, when the first model is built"
                if lazy
                else "transformer-lens was already imported by explorer.analysis: not lazy"
            ),
        ),
    ]
