"""The Markdown page of a benchmark run (``docs/benchmarks.md``), from its JSON.

``python -m benchmarks --markdown docs/benchmarks.md`` writes it after a run;
``python -m benchmarks.markdown RESULTS.json PAGE.md`` rewrites it from saved results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.results import Row, describe_machine, format_markdown_table

_METHOD = """\
## What is measured

Every row runs ours and the naive way in the same process, interleaved, and keeps each
one's best of the repeats (the machine is shared, so the least disturbed run is the
fairest). The ratio is always how many times better ours is (naive / ours for time and
bytes, ours / plain forward passes for throughput). Models are the tutorial architectures,
untrained: timing does not depend on the weights. MiB and KiB are 2^20 and 2^10 bytes.

- **ablation sweep**: `ablation_sweep` (zero ablation, many units per forward pass) vs a
  clean pass plus a Python loop of `model.model.run_with_hooks` zeroing one head's
  `hook_z` or one neuron's `hook_post` per pass. Both give the same metric per unit and
  example to 1e-5 (the benchmark raises otherwise; `max_abs_diff` is in the JSON).
- **top-k neuron examples**: `top_k_examples` (streamed) vs caching `hook_post` for the
  whole dataset then `topk`, and plain forward passes as the throughput reference. Each
  variant runs in a fresh subprocess; memory is its peak RSS above the RSS after set-up
  (CPU tensors are invisible to tracemalloc). The top-k values must agree.
- **activation patching**: `activation_patching` over the `[layer, position]` grid of
  `hook_resid_pre` vs one `run_with_hooks` per cell (same numbers to 1e-5), and
  `attribution_patching` (one forward and one backward pass) with its Pearson correlation
  to the exact grid.
- **widget payload**: bytes for one attention layer (12 heads x 1,024 tokens) as our
  float16 binary buffer vs circuitsvis's `attention_patterns` HTML (JSON numbers), and the
  whole first message of an `AttentionView` (thumbnails + one head's window).
- **widget latency**: kernel-side click-to-update time of each view
  (`benchmarks/bench_widgets.py`), median with p95 in the JSON.
- **import time**: fresh interpreters; transformer-lens is imported lazily, when the first
  model is built, and is reported separately.
"""


def row_from_json(data: dict[str, Any]) -> Row:
    """A ``Row`` back from JSON (which stores infinities as strings)."""
    numbers = {
        key: float(data[key]) if isinstance(data[key], str) else data[key]
        for key in ("ours", "naive", "ratio")
    }
    return Row(**{**data, **numbers})


def _notes(rows: list[Row]) -> list[str]:
    """One line per (benchmark, note), naming every case it applies to."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.note:
            grouped.setdefault((row.benchmark, row.note), []).append(row.case)
    return [
        f"- **{benchmark}**, {'; '.join(cases) if len(cases) < 3 else 'every case'}: {note}"
        for (benchmark, note), cases in grouped.items()
    ]


def render(result: dict[str, Any]) -> str:
    rows = [row_from_json(r) for r in result["rows"]]
    info = result["machine"]
    notes = _notes(rows)
    missed = [f"- {r.benchmark}, {r.case}" for r in rows if r.status == "ok" and r.met is False]
    parts = [
        "# Benchmarks",
        "",
        "Explorer side by side with the naive way (transformer-lens loops, cache-everything,",
        "circuitsvis), measured in one run of `python -m benchmarks` (`make bench`).",
        "This page is generated: `python -m benchmarks --size full --markdown docs/benchmarks.md`.",
        "",
        f"**Machine**: {describe_machine(info)}.",
        "",
        f"Command: `{info.get('command', 'python -m benchmarks')}`; size `{result['size']}`, "
        f"{result['total_seconds']:.0f} s in all.",
        "",
        format_markdown_table(rows),
        "",
    ]
    if missed:
        parts += ["**Targets not met**:", "", *missed, ""]
    if notes:
        parts += ["**Notes**:", "", *notes, ""]
    parts += [_METHOD]
    return "\n".join(parts)


def write_page(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m benchmarks.markdown RESULTS.json PAGE.md", file=sys.stderr)
        return 2
    write_page(Path(argv[1]), json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
