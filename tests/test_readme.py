"""The README's 30-second example runs as written and computes what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_thirty_second_example_runs():
    section = README.read_text().split("## 30-second example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    from explorer.views import Explorer

    model, scores, sweep = ns["model"], ns["scores"], ns["sweep"]
    top = scores.top("induction", 2)
    assert len(top) == 2 and all(0 <= layer < model.n_layers for layer, _, _ in top)
    assert sweep.effect.numel() == model.n_layers * model.n_heads  # every head
    assert torch.isfinite(sweep.effect).all()
    assert isinstance(ns["explorer"].show(model, ns["tokens"]), Explorer)
