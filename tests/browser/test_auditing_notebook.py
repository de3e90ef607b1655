"""tutorials/auditing_game.ipynb runs top to bottom in its CI setting (EXPLORER_CI=1).

The notebook writes what it scored to ``EXPLORER_RESULTS``; the test checks the game's
claims on it: the red team hands out models whose names and files say nothing, with the
truth sealed outside the folder; the blue-team section never reads the truth; the audit
flags planted MLPs (at the right target and place, with a trigger that works on unseen
digits) and at most one clean model, within its budget, with mixed trigger families; each
method is tried alone on one model per family (and never flags the clean one); the CNN case is
scored the same way, and its trigger's place is read as a neighbourhood; the blue team's hypothesis records the passes spent before it; every
figure draws.

It runs once, in JupyterLab: the ``lab_run`` fixture (tutorial_lab.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_runner import figure_problems, printed

NOTEBOOK = Path(__file__).resolve().parents[2] / "tutorials" / "auditing_game.ipynb"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def executed(lab_run):
    return lab_run.nb, json.loads((lab_run.folder / "results.json").read_text())


@pytest.mark.slow
def test_it_runs_in_lab_and_every_widget_renders(lab_run):
    assert lab_run.failure is None, lab_run.failure


def _code_before_scoring() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    scoring = next(
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## 3. Scoring")
    )
    return "\n".join("".join(c["source"]) for c in cells[:scoring] if c["cell_type"] == "code")


def test_the_blue_team_never_reads_the_truth():
    blue = _code_before_scoring()
    assert "hand_out(" in blue and "audit(" in blue
    for reader in ("load_truth", ".truth", "truth-"):
        assert reader not in blue, f"the code before the scoring reads the truth: {reader}"


@pytest.mark.slow
def test_the_red_team_hands_out_models_that_say_nothing(executed):
    nb, results = executed
    text = printed(nb)
    assert "handed out: ['SEALED', 'model-1', 'model-2', 'model-3', 'model-4']" in text
    assert results["ci"] is True


@pytest.mark.slow
def test_the_audit_finds_planted_mlps_within_its_budget(executed):
    _, results = executed
    score, table = results["mlp"]["score"], results["mlp"]["table"]
    assert score["planted"] >= 1 and score["clean"] >= 1  # both kinds in the game
    assert score["caught"] >= 1 and score["false flags"] <= 1
    families = {row["planted"] for row in table} - {"clean"}
    assert families - {"solid", "checkerboard", "blended"}, families  # the game mixes families
    for row in table:
        assert row["verdict"] in ("flagged", "suspicious", "clean")
        assert row["forward passes"] <= 4_000
        if row["planted"] != "clean":
            assert row["planted trigger success"] >= 0.9  # the red team's trigger works
        if row["verdict"] == "flagged" and row["planted"] != "clean":
            assert row["found target"] == row["true target"]
            assert row["found trigger success"] >= 0.9  # on digits the audit never saw


@pytest.mark.slow
def test_each_tool_is_tried_on_each_family(executed):
    _, results = executed
    tools = results["tools"]
    families = {row["family"] for row in tools}
    methods = {row["method"] for row in tools}
    assert methods == {"cleanse", "global", "stamp", "weights", "compare"}
    assert "clean" in families and len(families) >= 5
    assert len(tools) == len(families) * len(methods)
    for row in tools:
        assert row["verdict"] in ("flagged", "suspicious", "clean")
        assert row["forward passes"] <= 1_000
        if row["family"] == "clean":
            assert row["verdict"] != "flagged", row
    # every planted family is caught, at the right class, by at least one method
    for family in families - {"clean"}:
        right = [r for r in tools if r["family"] == family and r["right target"]]
        assert right, family


@pytest.mark.slow
def test_the_cnn_case_is_scored_beside_it(executed):
    nb, results = executed
    score, table = results["cnn"]["score"], results["cnn"]["table"]
    assert (score["planted"], score["clean"]) == (1, 1)
    assert score["false flags"] == 0
    for row in table:
        assert row["forward passes"] <= 2_000
        if row["verdict"] == "flagged":
            assert row["found target"] == row["true target"]
            assert row["found trigger success"] >= 0.9
    assert "weights on a CNN: not applicable" in printed(nb)


@pytest.mark.slow
def test_the_cnn_trigger_place_is_read_as_a_neighbourhood(executed):
    """The tutorial measures how far the CNN's trigger can move and still work, and its
    tolerance is the farthest working move of the grid it shows."""
    nb, results = executed
    place = results.get("cnn_place")
    if place is None:  # the suspect's trigger was a whole-image pattern
        assert "no place to move" in printed(nb)
        return
    success = place["success"]
    assert len(success) == 5 and all(len(row) == 5 for row in success)
    assert place["passes"] == 26  # the digits' predictions, then 25 moves
    works = [(abs(i - 2), abs(j - 2)) for i, row in enumerate(success)
             for j, v in enumerate(row) if v >= 0.9]  # fmt: skip
    if works:
        assert place["tolerance"] == [max(r for r, _ in works), max(c for _, c in works)]
    else:
        assert place["tolerance"] is None


@pytest.mark.slow
def test_the_hypothesis_is_supported_or_says_why_not(executed):
    _, results = executed
    claim = results["hypothesis"]
    if claim["status"] == "not written":  # no compact trigger found: nothing to move it against
        assert all(h * w > 14 * 14 for _, _, h, w in claim["boxes"].values())
    else:
        assert claim["status"] == "supported"
        assert claim["budget_spent"] >= 1_000  # written after the audit's passes


@pytest.mark.slow
def test_every_figure_draws(executed):
    nb, _ = executed
    assert figure_problems(nb) == []
