"""``python -m benchmarks``: every benchmark side by side with the naive way, in one run.

Prints a table of ratios, writes JSON (``--out``) and, with ``--markdown``, the page
``docs/benchmarks.md``; ``--readme README.md`` puts the table into the README. A benchmark that fails (including ours disagreeing with the
naive way) becomes an ``error`` row and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import SIZES
from benchmarks.results import (
    Row,
    command_line,
    describe_machine,
    failed,
    format_table,
    load_average,
    machine,
    to_json,
    unavailable,
)

# name -> (module, benchmark title); widgets last: it pins torch to one thread.
BENCHMARKS = {
    "ablation": ("benchmarks.bench_ablation", "ablation sweep"),
    "topk": ("benchmarks.bench_topk", "top-k neuron examples"),
    "feature_ablation": ("benchmarks.bench_feature_ablation", "feature ablation sweep"),
    "feature_topk": ("benchmarks.bench_feature_topk", "top-k feature examples"),
    "patching": ("benchmarks.bench_patching", "activation patching"),
    "lm_analyses": ("benchmarks.bench_lm_analyses", "DLA and logit lens"),
    "sae_splice": ("benchmarks.bench_sae_splice", "spliced SAE"),
    "payload": ("benchmarks.bench_payload", "widget payload"),
    "gpt2": ("benchmarks.bench_gpt2", "GPT-2-small scale"),
    "compare": ("benchmarks.bench_compare", "comparing models"),
    "imports": ("benchmarks.bench_imports", "import time"),
    "first_widget": ("benchmarks.bench_first_widget", "first contact"),
    "widgets": ("benchmarks.bench_widgets", "widget latency"),
    "feature_view": ("benchmarks.bench_feature_view", "FeatureView latency"),
    "audit": ("benchmarks.bench_audit", "auditing game"),
    "audit_game": ("benchmarks.audit_game", "auditing game, every family"),
    "live_session": ("benchmarks.bench_live_session", "live session"),
}
DEFAULT_OUT = Path("benchmarks/results/latest.json")


def _load(module: str) -> Callable[[str], list[Row]] | None:
    """The module's ``run``, or None when the module does not exist (yet)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            return None
        raise
    return getattr(mod, "run", None)


def run_benchmark(name: str, size: str, log: Callable[[str], None] = print) -> list[Row]:
    """Run one benchmark; failures become an ``error`` row instead of stopping the run."""
    module, title = BENCHMARKS[name]
    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        fn = _load(module)
        if fn is None:
            rows = [unavailable(title, "-", f"not available yet: {module} has no run(size)")]
        else:
            rows = list(fn(size))
    except Exception as err:
        traceback.print_exc()
        rows = [failed(title, err)]
    finally:
        torch.set_num_threads(threads)  # a benchmark may pin threads; do not leak it
    log(f"[{name}] {len(rows)} row(s) in {time.perf_counter() - start:.1f} s")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="full", help="default: full")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's default)"
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write this Markdown page")
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also replace the table between the benchmark markers of this README",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}: choose from {', '.join(BENCHMARKS)}")
    args.names = names
    if args.threads < 0:
        parser.error(f"--threads must be 0 (default) or positive, got {args.threads}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    info["command"] = command_line()
    print(f"machine: {describe_machine(info)}", flush=True)
    start = time.perf_counter()
    rows: list[Row] = []
    for name in args.names:
        rows += run_benchmark(name, args.size, log=lambda m: print(m, flush=True))
    info["load_average_end"] = load_average()
    result = to_json(args.size, info, rows, time.perf_counter() - start)
    print()
    print(format_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    if args.markdown is not None:
        from benchmarks.markdown import write_page

        write_page(args.markdown, result)
        print(f"wrote {args.markdown}")
    if args.readme is not None:
        from benchmarks.markdown import update_readme

        update_readme(args.readme, result)
        print(f"updated {args.readme}")
    return 1 if any(r.status == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
