"""Open every AutoModelForCausalLM architecture transformers can build from a tiny config.

    PYTHONPATH=. python scripts/hf_architectures.py [model_type ...] > table.md

Each model type's default config is shrunk to 2 layers of width 32 (``tests/hf_tiny.py``,
``tiny_causal_lm``), given random weights, and opened with ``explorer.load(model)``. The
Markdown table says how: converted to transformer-lens (with its parity), opened on the
nnsight backend (with its parity and why), opened as a plain module, or refused (and why);
or that the config does not shrink through the standard size names. ``make test`` runs a
sample of these (``tests/models/test_hf_architectures.py``); the full table is in
docs/transformer_lens.md.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hf_tiny


def _short(text: str, n: int = 240) -> str:
    first = " ".join(str(text).split())
    first = re.sub(r" \(explorer's families: [^;]*?\)\.", ".", first)
    return (first[: n - 1] + "…" if len(first) > n else first).replace("|", "/")


def main(types: list[str]) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    # lazy: transformers takes seconds to import
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tok = hf_tiny.tokenizer()
    mapping = hf_tiny.causal_lm_types()
    counts: dict[str, int] = {}
    print("| model type | class | outcome | what explorer said | seconds |")
    print("|---|---|---|---|---|")
    for model_type in types or list(mapping):
        start = time.perf_counter()
        try:
            net = hf_tiny.tiny_causal_lm(model_type, tok)
        except hf_tiny.NotTiny as err:
            outcome, said = "not built tiny", str(err)
        else:
            outcome, said, result = hf_tiny.open_outcome(net, tok)
            if outcome == "converted":
                said = f"{result.family}, {result.parity}"
            elif outcome == "nnsight":
                said = f"{result.parity}; {said}"
        counts[outcome] = counts.get(outcome, 0) + 1
        seconds = time.perf_counter() - start
        row = (model_type, mapping[model_type], outcome, _short(said), f"{seconds:.1f}")
        print("| " + " | ".join(row) + " |", flush=True)
    print()
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main(sys.argv[1:])
