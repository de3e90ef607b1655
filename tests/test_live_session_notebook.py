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
    stored = {s.author: s for s in store.hypotheses("live-session")}
    assert sorted(stored) == ["ada", "bob", "cy", "dee", "eve"]
    # in the room: true claims supported, a false one refuted, an unclear one inconclusive
    first = {name: s.verdicts[0].status for name, s in stored.items()}
    assert first == {
        "ada": "supported",
        "bob": "supported",
        "cy": "refuted",
        "dee": "supported",
        "eve": "inconclusive",
    }
    # re-run on the later checkpoint: neuron 0.3's stories no longer hold
    latest = {name: s.status for name, s in stored.items()}
    assert latest["ada"] == latest["bob"] == latest["dee"] == "refuted"
    assert latest["cy"] == "supported"  # edited claim: neuron 0.7 is at chance
    assert stored["ada"].verdicts[0].model_fingerprint != stored["ada"].latest.model_fingerprint

    agreement = store.agreement("live-session")
    assert agreement["neuron 0.3"].method == "fleiss" and len(agreement["neuron 0.3"].raters) == 4
    assert agreement["neuron 0.3"].kappa > 0.5 > agreement["neuron 0.7"].kappa

    report = (tmp_path / "live_session_report.md").read_text(encoding="utf-8")
    again = HypothesisStore(":memory:")
    from_markdown(report, again)
    assert again.count("hypotheses") == 5 and again.count("labels") == store.count("labels")
    widget_outputs = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widget_outputs) >= 3  # participant widgets and the mentor's board
