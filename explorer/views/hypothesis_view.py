"""Hypotheses in the cell where the evidence is: an editor with a Test button, and a board.

``HypothesisWidget`` shows one hypothesis: edit its claim, units, threshold and direction,
press Test, and the verdict (status, value with its interval, baseline, model, split)
appears beside it; with a store it is saved and every verdict recorded. Once a version has
a verdict, an edit tests a new version (its own id, linked to its parent): the earlier
version keeps its verdicts, and the history shown is the current version's. ``HypothesisBoard``
lists every hypothesis of a project with its latest status, next to the labels people
gave units and how much they agree; "Re-run all" tests them again, on a new checkpoint
for example. Both only render and dispatch: the work is ``explorer.hypotheses``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import traitlets

from explorer._deprecate import renamed_arguments
from explorer.analysis.units import parse_unit
from explorer.hypotheses import Hypothesis, HypothesisStore, Verdict, label_counts
from explorer.hypotheses.rerun import DataSource, pick_data, rerun_project
from explorer.hypotheses.store import DEFAULT_PROJECT, StoredHypothesis
from explorer.models.handle import ModelHandle
from explorer.views._base import ExplorerWidget
from explorer.views._reporting import page_request, reports_errors, reports_user_code_errors
from explorer.views._request_queue import in_queue
from explorer.views.serialize import css, esm


def verdict_payload(verdict: Verdict | None) -> dict[str, Any]:
    """A verdict as plain JSON for the page (NaN-free), with its one-line summary."""
    if verdict is None:
        return {}
    out = verdict.to_dict()
    out["summary"] = verdict.summary()
    out["beats_baseline"] = verdict.beats_baseline
    out["rule"] = verdict.rule()
    return out


class HypothesisWidget(ExplorerWidget):
    """Edit one hypothesis and test it on ``model`` and ``inputs``.

    Args:
        hypothesis: the starting hypothesis (its measure and splits stay; the claim,
            units, threshold and direction are editable).
        model, inputs: what ``Test`` runs on (the hypothesis's held-out split of ``inputs``).
        store, project, author: if a store is given, the hypothesis is saved on each
            Test and its verdict recorded.

    >>> from explorer.hypotheses import NeuronSelectivity, Split, planted
    >>> h = Hypothesis(claim="neuron 0.3 detects the concept", units="neuron 0.3",
    ...     measure=NeuronSelectivity(), threshold=0.9,
    ...     formation=Split(range(100)), held_out=Split(range(100, 200)))
    >>> w = HypothesisWidget(h, planted.concept_neuron_model(), planted.concept_examples(200))
    >>> w.test().status, w.status
    ('supported', 'supported')
    """

    _esm = esm("_hypothesis.js", "hypothesis_widget.js")
    _css = css("views.css") + "\n" + css("hypothesis_view.css")

    claim = traitlets.Unicode(help="the claim in words").tag(sync=True)
    units = traitlets.Unicode(help="target units, comma separated: 'head 1.4, neuron 0.37'").tag(
        sync=True
    )
    threshold = traitlets.Float(help="the claim is that the measure lies beyond this").tag(
        sync=True
    )
    direction = traitlets.Enum(("above", "below"), "above", help="which side of threshold").tag(
        sync=True
    )
    measure = traitlets.Unicode(help="what is measured (read-only)").tag(sync=True)
    formation = traitlets.Unicode(help="the split the idea came from (read-only)").tag(sync=True)
    held_out = traitlets.Unicode(help="the split the claim is judged on (read-only)").tag(sync=True)
    model_name = traitlets.Unicode(help="the model Test runs on, with its fingerprint").tag(
        sync=True
    )
    status = traitlets.Unicode(
        "untested", help="untested, running, supported, refuted or inconclusive"
    ).tag(sync=True)
    verdict = traitlets.Dict(help="the latest verdict as JSON (empty before a test)").tag(sync=True)
    history = traitlets.List(traitlets.Dict(), help="earlier verdicts, oldest first").tag(sync=True)
    budget_spent = traitlets.Dict(
        help="passes run on the model before the claim was written: forward, backward, examples"
    ).tag(sync=True)
    hypothesis_id = traitlets.Unicode(help="the id of the version shown (read-only)").tag(sync=True)
    parent_id = traitlets.Unicode(
        help="the id of the version this one was edited from ('' for an original)"
    ).tag(sync=True)

    @renamed_arguments(data="inputs")
    def __init__(
        self,
        hypothesis: Hypothesis,
        model: ModelHandle,
        inputs: DataSource,
        *,
        store: HypothesisStore | None = None,
        project: str = DEFAULT_PROJECT,
        author: str = "",
        **kwargs: Any,
    ) -> None:
        if not isinstance(hypothesis, Hypothesis):
            raise TypeError(f"expected a Hypothesis, got {type(hypothesis).__name__}")
        self.model = model
        self.inputs = inputs
        self.store = store
        self.project = project
        self.author = author
        hypothesis.check(model)
        if hypothesis.budget_spent is None:  # written now: record the passes run before it
            hypothesis = hypothesis.replace(budget_spent=model)
        self._base = hypothesis
        history = []
        if store is not None:
            try:
                history = [verdict_payload(v) for v in store.get(hypothesis.id).verdicts]
            except KeyError:
                history = []
        super().__init__(
            claim=hypothesis.claim,
            units=", ".join(map(str, hypothesis.units)),
            threshold=hypothesis.threshold,
            direction=hypothesis.direction,
            measure=hypothesis.measure.describe(),
            formation=hypothesis.formation.describe(),
            held_out=hypothesis.held_out.describe(),
            model_name=f"{model.name} @{model.fingerprint()}",
            budget_spent=dict(zip(("forward", "backward", "examples"), hypothesis.budget_spent)),
            hypothesis_id=hypothesis.id,
            parent_id=hypothesis.parent_id or "",
            history=history,
            verdict=history[-1] if history else {},
            status=history[-1]["status"] if history else "untested",
            **kwargs,
        )

    @traitlets.validate("threshold")
    def _finite_threshold(self, proposal: dict[str, Any]) -> float:
        if not math.isfinite(proposal["value"]):
            raise traitlets.TraitError(f"threshold must be finite, got {proposal['value']}")
        return float(proposal["value"])

    @traitlets.validate("units")
    def _readable_units(self, proposal: dict[str, Any]) -> str:
        try:
            units = [parse_unit(t) for t in proposal["value"].split(",") if t.strip()]
        except (ValueError, TypeError) as exc:
            raise traitlets.TraitError(str(exc)) from exc
        return ", ".join(map(str, units))

    @property
    def hypothesis(self) -> Hypothesis:
        """The hypothesis as edited (the measure and splits of the one given).

        Unchanged, or a draft with no verdict yet: the same id. Edited after a verdict: a
        new version, with its own id and ``parent_id`` the judged version's.
        """
        edits = {
            "claim": self.claim,
            "units": tuple(t.strip() for t in self.units.split(",") if t.strip()),
            "threshold": self.threshold,
            "direction": self.direction,
        }
        if not self.history:  # nothing judged this claim yet: edit the draft in place
            return dataclasses.replace(self._base, **edits)
        return self._base.replace(**edits)

    def _use_model(self, inputs: DataSource | None) -> None:
        """Test on the new model (a new checkpoint) from now on, on ``inputs`` if given."""
        if inputs is not None:
            self.inputs = inputs

    @in_queue
    def test(self) -> Verdict | None:
        """Run the edited hypothesis on the held-out split; save it and its verdict if stored.

        Returns the verdict, or None when the test failed (the reason is in ``error``).
        """
        previous = self.status
        self.status = "running"
        verdict = None
        try:
            verdict = self._run()
        finally:  # failed or cancelled: the status shown is the last verdict's again
            if verdict is None:
                self.status = previous
        return verdict

    @reports_user_code_errors
    def _run(self) -> Verdict:
        hypothesis = self.hypothesis
        verdict = hypothesis.test(self.model, pick_data(self.inputs, hypothesis))
        if self.store is not None:
            self.store.save(hypothesis, project=self.project, author=self.author)
            if verdict.recordable:  # unavailable, or no value (too few examples): not evidence
                self.store.record(verdict)
        new_version = hypothesis.id != self._base.id
        self._base = hypothesis
        payload = verdict_payload(verdict)
        with self.hold_trait_notifications():
            self.hypothesis_id = hypothesis.id
            self.parent_id = hypothesis.parent_id or ""
            self.history = [payload] if new_version else [*self.history, payload]
            self.verdict = payload
            self.status = verdict.status
        return verdict

    @page_request(background=True, user_code=True)
    def _page_test(self, **edits: Any) -> None:
        """The page sends its edited fields with the Test press; a bad one is the error."""
        with self.hold_trait_notifications():
            for name in ("claim", "units", "direction"):
                if name in edits:
                    setattr(self, name, str(edits[name]))
            if "threshold" in edits:
                self.threshold = float(edits["threshold"])
        self.test()


class HypothesisBoard(ExplorerWidget):
    """Every hypothesis of a project with its status, and the labels' agreement per unit.

    Args:
        store: the store to read (and to record re-run verdicts in).
        project: which project to show.
        model, inputs: what "Re-run all" tests on; ``inputs`` may map dataset names (each
            hypothesis's ``dataset``) to inputs.

    ``refresh()`` re-reads the store (other kernels may have written); ``rerun_all()``
    tests every hypothesis again and records the verdicts.
    """

    _esm = esm("_hypothesis.js", "hypothesis_board.js")
    _css = css("views.css") + "\n" + css("hypothesis_view.css")

    project = traitlets.Unicode(DEFAULT_PROJECT, help="the project shown").tag(sync=True)
    projects = traitlets.List(traitlets.Unicode(), help="projects in the store").tag(sync=True)
    rows = traitlets.List(traitlets.Dict(), help="one row per hypothesis, by author").tag(sync=True)
    agreement = traitlets.List(traitlets.Dict(), help="one row per labelled unit").tag(sync=True)
    model_name = traitlets.Unicode(help="what Re-run all tests on").tag(sync=True)
    message = traitlets.Unicode(help="outcome of the last re-run").tag(sync=True)
    unreadable = traitlets.List(
        traitlets.Dict(), help="stored rows that could not be read: table, id, reason"
    ).tag(sync=True)

    @renamed_arguments(data="inputs")
    def __init__(
        self,
        store: HypothesisStore,
        project: str = DEFAULT_PROJECT,
        *,
        model: ModelHandle | None = None,
        inputs: DataSource | None = None,
        **kwargs: Any,
    ) -> None:
        self.store = store
        self.model = model
        self.inputs = inputs
        super().__init__(project=project, **kwargs)
        if model is not None:
            self.model_name = f"{model.name} @{model.fingerprint()}"
        self.refresh()

    @traitlets.observe("project")
    def _project_changed(self, _change: dict[str, Any]) -> None:
        self.refresh()

    @reports_errors
    def refresh(self) -> None:
        """Re-read the project's hypotheses, verdicts and labels from the store."""
        stored = self.store.hypotheses(self.project)
        self.unreadable = [
            {"table": bad.table, "id": bad.id, "reason": bad.reason} for bad in stored.unreadable
        ]
        self.projects = self.store.projects()
        self.rows = [self._row(s) for s in sorted(stored, key=lambda s: (s.author, s.created))]
        counts = label_counts(self.store.labels(self.project))
        rows = []
        for unit, agreement in self.store.agreement(self.project).items():
            row = agreement.to_dict()
            row["labels"] = {
                rater: ", ".join(f"{k} x{n}" for k, n in c.items())
                for rater, c in counts.get(unit, {}).items()
            }
            rows.append(row)
        self.agreement = rows

    @staticmethod
    def _row(stored: StoredHypothesis) -> dict[str, Any]:
        h, latest = stored.hypothesis, stored.latest
        row: dict[str, Any] = {
            "id": h.id,
            "parent_id": h.parent_id or "",
            "author": stored.author,
            "claim": h.claim,
            "units": ", ".join(map(str, h.units)),
            "test": f"{h.measure.describe()} {h.direction} {h.threshold:g}"
            + ("" if h.rerunnable else " (its measure is not registered here)"),
            "dataset": h.dataset,
            "status": stored.status,
            "n_verdicts": len(stored.verdicts),
            "rerunnable": h.rerunnable,
        }
        if latest is not None:
            row.update(
                value=latest.value,
                ci_low=latest.ci_low,
                ci_high=latest.ci_high,
                baseline=latest.baseline_p95
                if latest.baseline_p95 is not None
                else latest.baseline,
                model=f"{latest.model_name} @{latest.model_fingerprint}",
                when=latest.timestamp,
            )
        return row

    def _use_model(self, inputs: DataSource | None) -> None:
        """Re-run on the new model (a new checkpoint) from now on, on ``inputs`` if given."""
        if inputs is not None:
            self.inputs = inputs

    @in_queue
    @renamed_arguments(data="inputs")
    def rerun_all(
        self, model: ModelHandle | None = None, inputs: DataSource | None = None
    ) -> dict[str, Verdict | str]:
        """Test every hypothesis of the project again and record the verdicts.

        Returns ``{hypothesis id: verdict, or the reason it could not run}``; one failing
        hypothesis does not stop the others.
        """
        if model is not None or inputs is not None:
            self.set_model(model or self.model, inputs)  # type: ignore[arg-type]
        if self.model is None:
            raise ValueError(
                "no model to re-run on: give model=... or call set_model(model, inputs)"
            )
        model = self.model
        ran_on = f"{model.name} @{model.fingerprint()}"  # the model the verdicts come from
        outcome = rerun_project(self.store, self.project, model, self.inputs)
        failed = [f"{_short(hid)}: {why}" for hid, why in outcome.items() if isinstance(why, str)]
        ok = len(outcome) - len(failed)
        self.message = f"re-ran {ok} of {len(outcome)} on {ran_on}" + (
            "; could not run " + "; ".join(failed) if failed else ""
        )
        self.refresh()
        return outcome

    @page_request(background=True, user_code=True)
    def _page_rerun(self) -> None:
        self.rerun_all()

    @page_request()
    def _page_refresh(self) -> None:
        self.refresh()


def _short(hypothesis_id: str) -> str:
    return hypothesis_id[:8]
