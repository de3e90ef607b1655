"""The mentor's live-session notebook runs end to end and leaves the room's work in the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runner import execute

from explorer.hypotheses import HypothesisStore, from_markdown

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "live_session.ipynb"


@pytest.mark.slow
def test_live_session_notebook_runs_and_records_the_room(tmp_path):
    nb = execute(NOTEBOOK, tmp_path, {"EXPLORER_STORE": None}, timeout=600)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []

    db = tmp_path / "live_session.db"  # the store landed in the working folder
    assert db.exists()
    store = HypothesisStore(db)
    hypotheses = store.hypotheses("live-session")
    assert sorted({s.author for s in hypotheses}) == ["ada", "bob", "cy", "dee", "eve"]
    # cy's edit is a new version linked to her first claim, which keeps its own verdicts
    (edited,) = [s for s in hypotheses if s.hypothesis.parent_id == "cy-1"]
    assert edited.author == "cy" and len(hypotheses) == 6
    stored = {s.hypothesis.id: s for s in hypotheses}
    # in the room: true claims supported, a false one refuted, an unclear one inconclusive
    first = {
        hid.split("-")[0]: stored[hid].verdicts[0].status
        for hid in ("ada-1", "bob-1", "cy-1", "dee-1", "eve-1")
    }
    assert first == {
        "ada": "supported",
        "bob": "supported",
        "cy": "refuted",
        "dee": "supported",
        "eve": "inconclusive",
    }
    assert stored["cy-1"].hypothesis.claim == "neuron 0.7 detects the concept"
    # re-run on the later checkpoint: neuron 0.3's stories no longer hold
    latest = {hid: s.status for hid, s in stored.items()}
    assert latest["ada-1"] == latest["bob-1"] == latest["dee-1"] == "refuted"
    # "neuron 0.7 is at chance": below 0.6, but no lower than random neurons: inconclusive
    assert edited.verdicts[0].status == edited.status == "inconclusive"
    assert edited.latest.ci_high < 0.6
    ada = stored["ada-1"]
    assert ada.verdicts[0].model_fingerprint != ada.latest.model_fingerprint

    agreement = store.agreement("live-session")
    assert agreement["neuron 0.3"].method == "fleiss" and len(agreement["neuron 0.3"].raters) == 4
    assert agreement["neuron 0.3"].kappa > 0.5 > agreement["neuron 0.7"].kappa

    report = (tmp_path / "live_session_report.md").read_text(encoding="utf-8")
    again = HypothesisStore(":memory:")
    from_markdown(report, again)
    assert again.count("hypotheses") == 6 and again.count("labels") == store.count("labels")
    widget_outputs = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widget_outputs) >= 3  # participant widgets and the mentor's board
