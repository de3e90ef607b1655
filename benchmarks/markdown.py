"""The Markdown page of a benchmark run (``docs/benchmarks.md``), from its JSON.

``python -m benchmarks --markdown docs/benchmarks.md`` writes it after a run;
``python -m benchmarks.markdown RESULTS.json PAGE.md [README.md]`` rewrites it (and the
README's table between its markers) from saved results.
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
one's best of the repeats. With `--threads 1` the clock is the process's CPU time
(`time.process_time`), not wall time: the machine is shared, and waiting for a busy core
is not work either side did (contention for caches still slows both). The ratio is always
how many times better ours is (naive / ours for time and bytes, ours / plain forward
passes for throughput). Models are the tutorial architectures, untrained: timing does not
depend on the weights. MiB and KiB are 2^20 and 2^10 bytes.

- **ablation sweep**: `ablation_sweep` (zero ablation) vs what a transformer-lens user
  writes: a clean pass, then a Python loop of `run_with_hooks` over the batch of 32 zeroing
  one head's `hook_z` or one neuron's `hook_post` per pass. Both give the same metric per
  unit and example to 1e-5 (the benchmark raises otherwise; `max_abs_diff` is in the JSON).
  Each head sweep also has a row against the exact floor (below), target within 15%.
- **GPT-2-small scale** (`benchmarks/bench_gpt2.py`): a GPT-2-small-shaped
  `HookedTransformer` built from a config, random weights, no download: 12 layers x 12
  heads, d_model 768, d_mlp 3,072, vocabulary 50,257, context 1,024, GELU, LayerNorm (124M
  parameters as GPT-2 counts them; transformer-lens keeps W_E and W_U apart: 163M numbers).
  `AttentionView` on 1,024 tokens (first message vs every pattern as float16; a click's
  CPU time vs encoding a whole pattern); `ablation_sweep` over all 144 heads of a 16-token
  prompt vs transformer-lens's loop (equal to 1e-4) and vs the floor; streamed top-k over
  layer 0's 3,072 neurons vs cache-everything (fresh subprocesses, as above) on 65,536
  tokens, with the 1M-token arithmetic below. Peak memory on every row: resident-set
  growth, sampled every 2 ms (CPU tensors are invisible to tracemalloc).
- **top-k neuron examples**: `top_k_examples` (streamed) vs caching `hook_post` for the
  whole dataset then `topk`. Memory: each variant runs over all 1,048,576 tokens in a fresh
  subprocess; its peak RSS above the RSS after set-up (CPU tensors are invisible to
  tracemalloc); streamed also on 1/8 of the tokens, to show it does not grow with the data.
  Throughput: in-process, interleaved, against plain forward passes. The values must agree.
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

## How the sweeps avoid work

`ablation_sweep` and `activation_patching` run one clean pass that caches the unit's
activations and the residual stream; every later pass starts at the edited block from that
cache, with one copy of the batch per unit. A head's or neuron's effect on the residual
stream is linear (`z W_O`, `post W_out`), so each copy gets its exact change added at the
next residual hook: a head's copies start at its block's `hook_resid_mid` (the block's
attention is not rerun), a neuron's at `hook_resid_post`. Nothing upstream of a unit is
recomputed, and one clean pass serves every layer. Copies per pass: as many as keep the
pass's widest activation (attention scores, MLP hidden or logits, over all copies) under 4
MiB or the model's own size, whichever is larger, and at most 8,192 tokens. A pass has a
fixed cost (reading every weight; transformer-lens's unembedding copies `W_U` on every
pass, 154 MB for GPT-2-small) and a cost per copy that grows once activations outgrow the
caches: small models get a few copies a pass, GPT-2-small a whole layer's 12 heads.
Temporary hooks are added to and removed from their own hook points only (transformer-lens's
`hooks()` walks every hook point of the model on exit).

Plain PyTorch modules are traced with `torch.fx`, and the sweep checks on the graph what its
shortcuts assume. A neuron read by one `nn.Linear` call and nothing else, whose output is a
hook point that the rest of the model reads and nothing computed before it, gets the same
linear shortcut: each copy's change `delta W[:, n]` is added to that Linear's cached output
and only the graph after it runs on the copies (the MNIST MLP). Otherwise copies are made
at the unit's own hook if the rest of the model reads only that hook; where a residual
connection also carries an earlier tensor past it, each copy is the whole batch run again
(exact, slower). Built-in metrics score all copies in one call; a user's metric is called
per copy.

## Head sweeps against the exact floor (the arithmetic)

Any exact method must do (a) the clean pass, because the baseline metric needs it, and (b)
for each head, everything downstream of it: its block's MLP, the later blocks and the
unembedding, which are not linear, so each head's copy of the batch must run them. The
benchmark times that floor as transformer-lens runs it: the clean pass, plus per head of
layer L one pass of block L's MLP (from the cached `hook_resid_mid`) and one of
`start_at_layer=L+1`. The naive loop does `heads + 1` full passes, so in arithmetic
(multiply-adds, not seconds)

    speed-up <= (heads + 1) x full pass / (full pass + sum over heads of downstream pass)

- **4 heads** (grokking, 1 layer): the floor is the clean pass and 4 x (MLP + unembedding).
- **8 heads** (attention-only, 2 layers): each layer-0 head needs layer 1 and the
  unembedding (about half a pass), each layer-1 head the unembedding: about 1 + 4 x 0.5 +
  4 x small = 3 passes against 9, about 3x at most.
- **144 heads** (GPT-2-small, 16 tokens): per token, a block is 12 x 768^2 = 7.1M
  multiply-adds (attention projections 4 d^2, MLP 8 d^2; scores are small at 16
  positions), its MLP 4.7M, the unembedding 768 x 50,257 = 38.6M. A head of layer L needs
  4.7M + (11 - L) x 7.1M + 38.6M; summed over 12 heads in each of 12 layers that is 11.8G
  multiply-adds a token against 145 x 123.6M = 17.9G for the loop: at most 1.5x in
  arithmetic, 380 GFLOP for 16 tokens. The measured floor (one pass per head) is slower
  than that arithmetic, because each of its 144 passes reads the weights and copies `W_U`
  again; ours runs a layer's 12 heads as one pass, so it sits below the measured floor.

The rows give ours against that measured floor; ours can run below it because copies share
a pass (one weight read, one `W_U` copy, one Python call) where the floor pays per head.
Neuron sweeps keep the >= 10x target against the loop: many units per layer share a pass.
Patching has no ratio target; its cells are `hook_resid_pre` positions, whose downstream is
the rest of the model: on the 2-layer model the 62 layer-0 cells each need both layers and
the 62 layer-1 cells one, about 93 passes of work against the loop's 126, so exact patching
stays below 2x. Attribution patching is the fast approximation.

## GPT-2-small over 1M tokens (the arithmetic)

The top-k rows run 65,536 tokens (512 sequences of 128) through layer 0 only
(`top_k_examples` stops a transformer after the layer it reads). At 1,048,576 tokens:

- cache-everything holds 2^20 x 3,072 x 4 bytes = 12 GiB of layer-0 activations (24 GiB
  while concatenating), more than this machine's memory: not run;
- streamed keeps 3,072 x 10 x (4 + 8 + 8) bytes = 600 KiB of top-k state, and its peak
  memory does not grow with the data (the row compares 1/8 of the tokens with all of
  them); layer 0 costs about 2 x 7.3M = 15 MFLOP a token at 128 positions, so 1M tokens
  are 1.5e13 FLOPs, minutes of one thread (the note gives the figure at the measured rate);
- all 12 layers and the unembedding are 2 x (12 x 7.1M + 38.6M) = 247 MFLOP a token, 2.6e14
  FLOPs for 1M tokens: about an hour of one thread at the rate layer 0 runs at, more in
  practice (attention at longer contexts, the 206 MB of logits a 1,024-token sequence
  makes). Not run.
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
        "This page is generated by `make bench` (`python -m benchmarks --threads 1 --markdown docs/benchmarks.md --readme README.md`).",
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


README_START = "<!-- benchmarks:start (python -m benchmarks --readme README.md) -->"
README_END = "<!-- benchmarks:end -->"


def readme_section(result: dict[str, Any]) -> str:
    """The table, command and machine, for the README between the markers."""
    rows = [row_from_json(r) for r in result["rows"]]
    info = result["machine"]
    return "\n".join(
        [
            README_START,
            f"Latest run: `{info.get('command', 'python -m benchmarks')}` "
            f"(size `{result['size']}`, {result['total_seconds']:.0f} s). Ratio = how many "
            "times better ours is; notes, method and the arithmetic behind missed targets "
            "are in [docs/benchmarks.md](docs/benchmarks.md).",
            "",
            f"Machine: {describe_machine(info)}.",
            "",
            format_markdown_table(rows),
            README_END,
        ]
    )


def update_readme(path: Path, result: dict[str, Any]) -> None:
    """Replace the text between the markers in ``path`` (they must be there)."""
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"{path} has no benchmark section: add the lines {README_START!r} and "
            f"{README_END!r} where the table goes"
        )
    path.write_text(text[:start] + readme_section(result) + text[end + len(README_END) :])


def write_page(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print(
            "usage: python -m benchmarks.markdown RESULTS.json PAGE.md [README.md]", file=sys.stderr
        )
        return 2
    result = json.loads(Path(argv[0]).read_text())
    write_page(Path(argv[1]), result)
    if len(argv) == 3:
        update_readme(Path(argv[2]), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
