"""The room the mentor's notebook used to simulate in one kernel (before live sessions):
four participants, each with their own connection to one store, label two neurons and five
people test hypotheses; the board groups them, the labels' agreement tells the real neuron
from the noise, a later checkpoint refutes the stories of neuron 0.3, and the Markdown
report imports back. The real room (a kernel each, join codes, roles) is
tests/test_live_session_notebook.py and tests/browser/test_live_session_in_lab.py."""

from __future__ import annotations

import torch

from explorer.analysis import run_with_cache
from explorer.hypotheses import (
    AblationEffect,
    Hypothesis,
    HypothesisStore,
    NeuronSelectivity,
    from_markdown,
    planted,
    split_examples,
    to_markdown,
)
from explorer.views.hypothesis_view import HypothesisBoard, HypothesisWidget

PROJECT = "live-session"
ERROR_RATE = {"ada": 0.0, "bob": 0.1, "cy": 0.2, "dee": 0.1}


def test_a_simulated_room_in_one_kernel(tmp_path):
    store_path = str(tmp_path / "room.db")
    model = planted.concept_neuron_model(seed=0)
    data = planted.concept_examples(600, seed=0)
    formation, held_out = split_examples(len(data), held_out=0.5, seed=0)
    activation = run_with_cache(model, data.inputs, hooks=["blocks.0.mlp.hook_post"])[
        "blocks.0.mlp.hook_post"
    ]
    items = list(formation.indices[:12])

    for seed, (name, error_rate) in enumerate(ERROR_RATE.items()):
        g = torch.Generator().manual_seed(seed)
        with HypothesisStore(store_path) as participant_store:  # their own connection
            for i in items:
                truth = "concept" if activation[i, 3] > 0 else "other"
                wrong = torch.rand(1, generator=g).item() < error_rate
                flipped = "other" if truth == "concept" else "concept"
                participant_store.label("neuron 0.3", flipped if wrong else truth, rater=name,
                                        item=str(i), project=PROJECT)  # fmt: skip
                guess = "concept" if torch.rand(1, generator=g).item() < 0.5 else "other"
                participant_store.label("neuron 0.7", guess, rater=name, item=str(i),
                                        project=PROJECT)  # fmt: skip

    common = dict(formation=formation, held_out=held_out, n_boot=1000)
    auroc = NeuronSelectivity("auroc")
    claims = {
        "ada": Hypothesis(id="ada-1", claim="neuron 0.3 detects the concept",
                          units="neuron 0.3", measure=auroc, threshold=0.9, **common),
        "bob": Hypothesis(id="bob-1", claim="neuron 0.3 fires on every example with the concept",
                          units="neuron 0.3", measure=NeuronSelectivity("recall"), threshold=0.9,
                          **common),
        "cy": Hypothesis(id="cy-1", claim="neuron 0.7 detects the concept",
                         units="neuron 0.7", measure=auroc, threshold=0.9, **common),
        "dee": Hypothesis(id="dee-1", claim="the model needs neuron 0.3 to tell the concept apart",
                          units="neuron 0.3", measure=AblationEffect("accuracy"), threshold=-0.05,
                          direction="below", **common),
        "eve": Hypothesis(id="eve-1", claim="neuron 0.5 responds against the concept",
                          units="neuron 0.5", measure=auroc, threshold=0.5, direction="below",
                          **common),
    }  # fmt: skip
    widgets = {
        name: HypothesisWidget(
            h, model, data, store=HypothesisStore(store_path), project=PROJECT, author=name
        )
        for name, h in claims.items()
    }
    for widget in widgets.values():
        widget.test()
    cy = widgets["cy"]
    cy.claim = "neuron 0.7 is no better than chance at the concept"
    cy.direction, cy.threshold = "below", 0.6
    cy.test()

    board = HypothesisBoard(HypothesisStore(store_path), PROJECT, model=model, inputs=data)
    later = model.copy()
    with torch.no_grad():
        later.model.module[0].bias[3] = -6.6  # stands in for a later training checkpoint
    board.rerun_all(later, data)

    store = HypothesisStore(store_path)
    hypotheses = store.hypotheses(PROJECT)
    assert sorted({s.author for s in hypotheses}) == ["ada", "bob", "cy", "dee", "eve"]
    (edited,) = [s for s in hypotheses if s.hypothesis.parent_id == "cy-1"]
    assert edited.author == "cy" and len(hypotheses) == 6
    stored = {s.hypothesis.id: s for s in hypotheses}
    first = {
        hid.split("-")[0]: stored[hid].verdicts[0].status for hid in (h.id for h in claims.values())
    }
    assert first == {
        "ada": "supported", "bob": "supported", "cy": "refuted", "dee": "supported",
        "eve": "inconclusive",
    }  # fmt: skip
    latest = {hid: s.status for hid, s in stored.items()}
    assert latest["ada-1"] == latest["bob-1"] == latest["dee-1"] == "refuted"
    assert edited.verdicts[0].status == edited.status == "inconclusive"
    assert edited.latest.ci_high < 0.6
    assert stored["ada-1"].verdicts[0].model_fingerprint != stored["ada-1"].latest.model_fingerprint

    agreement = store.agreement(PROJECT)
    assert agreement["neuron 0.3"].method == "fleiss" and len(agreement["neuron 0.3"].raters) == 4
    assert agreement["neuron 0.3"].kappa > 0.5 > agreement["neuron 0.7"].kappa

    again = HypothesisStore(":memory:")
    from_markdown(to_markdown(store, PROJECT), again)
    assert again.count("hypotheses") == 6 and again.count("labels") == store.count("labels")
