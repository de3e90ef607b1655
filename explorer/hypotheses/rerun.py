"""Testing a project's hypotheses again: on a new checkpoint, or after someone else edited them.

``pick_data`` chooses the data a hypothesis runs on (one dataset for all, or its
``dataset`` by name); ``rerun_project`` tests every hypothesis of a project, records the
verdicts, and says for each one that could not run why not.

>>> from explorer.hypotheses import Hypothesis, NeuronSelectivity, Split, planted
>>> store = HypothesisStore(":memory:")
>>> h = Hypothesis(claim="neuron 0.3 detects the concept", units="neuron 0.3",
...     measure=NeuronSelectivity(), threshold=0.9,
...     formation=Split(range(100)), held_out=Split(range(100, 200)))
>>> _ = store.save(h, project="demo")
>>> outcome = rerun_project(store, "demo", planted.concept_neuron_model(),
...                         planted.concept_examples(200))
>>> outcome[h.id].status, len(store.get(h.id).verdicts)
('supported', 1)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from explorer._cancel import Cancelled
from explorer._deprecate import renamed_arguments
from explorer.hypotheses.examples import Examples
from explorer.hypotheses.hypothesis import Hypothesis
from explorer.hypotheses.prediction import Prediction
from explorer.hypotheses.store import HypothesisStore
from explorer.hypotheses.verdict import Verdict
from explorer.models.handle import ModelHandle

Data = Examples | torch.Tensor
DataSource = Data | Mapping[str, Data]


def pick_data(data: DataSource | None, hypothesis: Hypothesis) -> Data:
    """The data ``hypothesis`` is tested on: ``data`` itself, or ``data[hypothesis.dataset]``
    when ``data`` maps dataset names to data."""
    if data is None:
        raise ValueError("no data to test on: give data=... (or set_model(model, data))")
    if isinstance(data, Mapping):
        if hypothesis.dataset not in data:
            names = ", ".join(map(repr, data)) or "none"
            raise ValueError(
                f"no data named {hypothesis.dataset!r} for this hypothesis (have {names})"
            )
        return data[hypothesis.dataset]
    return data


@renamed_arguments(data="inputs")
def rerun_project(
    store: HypothesisStore, project: str, model: ModelHandle, inputs: DataSource | None
) -> dict[str, Verdict | str]:
    """Test every hypothesis of ``project`` on ``model`` and record each verdict.

    Returns ``{hypothesis id: verdict, or the reason it could not run}``. A hypothesis that
    fails, even by ``SystemExit`` from a user's measure, does not stop the others; an
    ``unavailable`` verdict (its measure is not registered here) is not evidence and is not
    recorded, nor is an inconclusive one with no value (a held-out split with too few concept
    examples: its note names the count needed). A hypothesis about SAE features reloads its
    SAE from the folder its record names (``_feature_records``); one whose SAE is missing or
    changed is not run, and its reason says so. A cancelled re-run (``explorer._cancel``) stops; verdicts recorded so far stay.
    """
    outcome: dict[str, Verdict | str] = {}
    listed = store.hypotheses(project)
    for row in listed.unreadable:  # e.g. a feature hypothesis whose SAE is gone or changed
        if row.table == "hypotheses":
            outcome[row.id] = f"cannot be re-run: {row.reason}"
    for stored in listed:
        h = stored.hypothesis
        if isinstance(h, Prediction):  # judged on runs, not on one model
            outcome[h.id] = "a prediction is judged on runs: test it on a sweep's table instead"
            continue
        try:
            verdict = h.test(model, pick_data(inputs, h))
            if not verdict.recordable:  # unavailable, or a split too small to measure on
                outcome[h.id] = verdict.note
                continue
            store.record(verdict)
            outcome[h.id] = verdict
        except Cancelled:  # the whole re-run was cancelled: stop, do not record it as a reason
            raise
        except BaseException as exc:  # a measure is user code: even SystemExit
            outcome[h.id] = f"{type(exc).__name__}: {exc}"
    return outcome
