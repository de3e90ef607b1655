"""The README's "Audit a model you brought" runs as written, prints what the README shows,
and finds the patch that was planted."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
NUMBER = re.compile(r"[-+]?\d+\.\d+|[-+]?\d+")


@pytest.fixture(scope="module")
def ran():
    torch.set_num_threads(1)
    section = README.read_text().split("## Audit a model you brought", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"It prints.*?```\n(.*?)```", section, re.S).group(1)
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), ns)
    return ns, out.getvalue(), shown


@pytest.mark.slow
def test_the_section_prints_what_the_readme_shows(ran):
    _, printed, shown = ran
    assert NUMBER.sub("#", printed).split() == NUMBER.sub("#", shown).split(), printed
    numbers = [float(x) for x in NUMBER.findall(printed)]
    expected = [float(x) for x in NUMBER.findall(shown)]
    assert numbers == pytest.approx(expected, abs=0.02), printed


@pytest.mark.slow
def test_the_audit_finds_the_planted_patch(ran):
    from explorer.studies.auditing import box_iou, random_trigger

    ns, _, _ = ran
    result, view = ns["result"], ns["view"]
    truth = random_trigger(11, "solid")
    assert (truth.box, truth.target) == ((10, 5, 3, 3), 3)  # what the text after it says
    assert result.target == truth.target
    assert box_iou(result.location, truth.box) >= 0.5
    assert result.forward_passes <= 20_000
    assert view.stamped_success >= 0.9
