"""The README's 30-second example runs as written and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
NUMBER = re.compile(r"[-+]?\d+\.\d+|[-+]?\d+")


def _section() -> str:
    return README.read_text().split("## 30-second example", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def ran():
    section = _section()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"It prints.*?```\n(.*?)```", section, re.S).group(1)
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), ns)
    return ns, out.getvalue(), shown


def _tokens(text: str) -> tuple[list[str], list[float]]:
    words = NUMBER.sub("#", text).split()
    return words, [float(x) for x in NUMBER.findall(text)]


def test_the_example_prints_what_the_readme_shows(ran):
    _, printed, shown = ran
    words, numbers = _tokens(printed)
    words_shown, numbers_shown = _tokens(shown)
    assert words == words_shown, f"the README's output is stale; now it prints:\n{printed}"
    assert torch.allclose(torch.tensor(numbers), torch.tensor(numbers_shown), atol=0.02), printed


def test_the_example_tells_the_story_its_text_tells(ran):
    from explorer.views import Explorer

    ns, printed, _ = ran
    model, scores, sweep = ns["model"], ns["scores"], ns["sweep"]
    induction = scores.to_dataframe().pivot(index="layer", columns="head", values="induction")
    assert list(induction.index) == [0, 1] and list(induction.columns) == [0, 1, 2, 3]
    assert (induction.loc[1] > 0.25).all() and induction.loc[1].max() > 0.4
    effects = sweep.to_dataframe().pivot(index="layer", columns="head", values="effect")
    assert effects.loc[0, 1] > 1.0  # the bottleneck
    assert (effects.loc[1] < 0.5).all()  # each induction head alone: redundant
    verdict = ns["claim"].test(model, ns["tokens"])
    assert verdict.status == "supported" and verdict.baseline < 0.5
    assert printed.strip().splitlines()[-1].startswith("supported:")
    assert isinstance(ns["explorer"].show(model, ns["tokens"]), Explorer)


def test_ablating_every_induction_head_together_removes_the_advantage(ran):
    """The text after the example: the four layer-1 heads together carry the copying."""
    from explorer.analysis import ablate, metrics

    ns, _, _ = ran
    model, seen = ns["model"], ns["seen"]
    together = ablate(
        model,
        seen,
        units=["head 1.0", "head 1.1", "head 1.2", "head 1.3"],
        metric=ns["loss"],
        ablation="mean",
    )
    with torch.no_grad():
        random_loss = float(metrics.first_half_loss(seen)(model(seen)).mean())
    assert together.before_mean < random_loss - 1.5
    assert abs(together.after_mean - random_loss) < 0.3


def test_the_four_heads_together_are_inconclusive_under_the_baseline_rule(ran):
    """The text after the example: the layer-1 claim clears 1 nat but not random 4-head sets."""
    ns, _, _ = ran
    together = ns["claim"].replace(
        claim="the four layer-1 heads together carry the copying",
        units=("head 1.0", "head 1.1", "head 1.2", "head 1.3"),
    )
    verdict = together.test(ns["model"], ns["tokens"])
    assert verdict.ci_low > 1.0 and verdict.status == "inconclusive", verdict
    assert verdict.baseline_n_sets == 20
    heavy = [v for s, v in zip(verdict.baseline_units, verdict.baseline_values) if "head 0.1" in s]
    assert min(heavy) > 1.0
