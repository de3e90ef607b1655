"""The room notebooks/live_session.ipynb used to simulate in one kernel, now as separate
Sessions (each with its own connection, as their kernels would have), writing from threads
at once: four participants label neurons 0.3 and 0.7 of the planted concept model and test
a hypothesis each, the mentor's watcher sees every record, and the room agrees on neuron
0.3 (where there is something to see) far more than on neuron 0.7 (where they guess)."""

from __future__ import annotations

import threading

import torch

from explorer.analysis import run_with_cache
from explorer.hypotheses import NeuronSelectivity, planted
from explorer.session import Handout, join, start

ERROR_RATE = {"ada": 0.0, "bob": 0.1, "cy": 0.2, "dee": 0.1}


def simulated_labels(name, seed, activation, items):
    """What participant ``name`` would click for neurons 0.3 and 0.7 (seeded)."""
    g = torch.Generator().manual_seed(seed)
    labels = {}
    for i in items:
        truth = "concept" if activation[i, 3] > 0 else "other"
        wrong = torch.rand(1, generator=g).item() < ERROR_RATE[name]
        flipped = "other" if truth == "concept" else "concept"
        labels[("neuron 0.3", i)] = flipped if wrong else truth
        guess = torch.rand(1, generator=g).item() < 0.5
        labels[("neuron 0.7", i)] = "concept" if guess else "other"
    return labels


def test_a_simulated_room_of_four_on_each_backend(store_url, concept_data, make_hypothesis):
    mentor = start(store_url, mentor="mentor", title="live session")
    people = {name: join(store_url, mentor.code, name=name) for name in ERROR_RATE}
    for name in people:
        mentor.hand_out(name, Handout("planted.concept_neuron_model", seed=0), budget=200)
    model = planted.concept_neuron_model(seed=0)
    activation = run_with_cache(model, concept_data.inputs, hooks=["blocks.0.mlp.hook_post"])[
        "blocks.0.mlp.hook_post"
    ]
    items = list(range(12))
    claims = {
        "ada": make_hypothesis(id="ada-1"),
        "bob": make_hypothesis(id="bob-1", measure=NeuronSelectivity("recall")),
        "cy": make_hypothesis(id="cy-1", units="neuron 0.7", claim="neuron 0.7 detects it"),
        "dee": make_hypothesis(id="dee-1", units="neuron 0.5", threshold=0.5, direction="below"),
    }
    for session in people.values():  # each kernel opens its model (fx tracing is not thread-safe)
        session.open_model()
    errors = []
    start_line = threading.Barrier(len(people))

    def participant(seed, name):
        try:
            session = people[name]
            start_line.wait()
            for (unit, item), label in simulated_labels(name, seed, activation, items).items():
                session.label(unit, label, item=str(item))
            session.test(claims[name], concept_data)
        except Exception as err:  # reported below
            errors.append((name, err))

    expected = len(people) * (2 * len(items) + 2)  # labels, a hypothesis and its verdict each
    with mentor.watch(lambda board: None, interval=0.1) as watcher:
        threads = [
            threading.Thread(target=participant, args=(seed, name))
            for seed, name in enumerate(people)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert watcher.wait_for(lambda b: len(b.records) == expected, timeout=5)
    board = watcher.last
    assert len({(r.kind, r.id) for r in board.records}) == expected
    kappa = {u.unit: u.kappa for u in board.units}
    assert kappa["neuron 0.3"] > 0.5 > 0.1 > kappa["neuron 0.7"]  # 0.56 and -0.11 here
    assert all(u.raters == 4 for u in board.units)
    verdicts = {p.name: p.verdicts for p in board.participants}
    assert verdicts["ada"] == {"supported": 1} and "supported" not in verdicts["cy"]
    assert all(0 < p.passes_spent <= 200 for p in board.participants)
    leaders = [row.name for row in board.leaderboard if row.findings]
    assert "ada" in leaders and "cy" not in leaders
    mentor.reveal()
    correct = {row.name: row.correct for row in mentor.board().leaderboard}
    assert correct["ada"] == 1 and correct["cy"] == 0
