"""The valid neuron hypothesis the hypothesis and session tests start from."""

from __future__ import annotations

from typing import Any

from explorer.hypotheses import Hypothesis, NeuronSelectivity, Split


def neuron_hypothesis(n_examples: int, **changes: Any) -> Hypothesis:
    """Neuron 0.3 detects the planted concept (``planted.concept_examples``), formed on the
    first half of ``n_examples`` and held out on the second; any field overridden."""
    half = n_examples // 2
    fields = {
        "claim": "neuron 0.3 detects the planted concept",
        "units": "neuron 0.3",
        "measure": NeuronSelectivity("auroc"),
        "threshold": 0.9,
        "formation": Split(range(half), name="formation"),
        "held_out": Split(range(half, n_examples), name="held-out"),
    }
    fields.update(changes)
    return Hypothesis(**fields)
