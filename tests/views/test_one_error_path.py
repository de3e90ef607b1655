"""One error path: whatever fails in any view (its analysis, a linked view's callback, a
hypothesis's measure, a re-run) reaches the user the same way: ``ExplorerWidget._fail``
writes it to ``error``, which the page shows in its one banner (``exErrorBanner``), and the
page's request ends "failed". No view writes ``error`` itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from page_requests import invoke
from sessions import StaticSession, board_of

import explorer
import explorer.views
from explorer.analysis import AuditResult
from explorer.features import SparseAutoencoder
from explorer.hypotheses import Hypothesis, HypothesisStore, NeuronSelectivity, Split, planted
from explorer.models import zoo
from explorer.studies.auditing import make_mlp
from explorer.sweep import plan_sweep
from explorer.training import Run
from explorer.views import (
    AttentionView,
    AuditView,
    DiffView,
    FeatureView,
    HypothesisBoard,
    HypothesisWidget,
    InterventionPanel,
    LogitAttributionView,
    LogitLensView,
    NeuronView,
    PatchingView,
    SessionBoard,
    SweepView,
    TokenAttributionView,
    attention_view,
    audit_view,
    diff_view,
    feature_view,
    hypothesis_view,
    intervention_panel,
    logit_attribution_view,
    logit_lens_view,
    neuron_view,
    patching_view,
    sweep_view,
    token_attribution_view,
)
from explorer.views._base import ExplorerWidget
from explorer.views.scrubber import TrainingScrubber

SAFETY_S = 120  # a bound so a broken test cannot hang; never a speed target
PLANTED = "planted failure"
TOKENS = torch.tensor([[1, 4, 7, 4, 9, 2], [2, 3, 5, 3, 8, 6]])


def planted_failure(*_args, **_kwargs):
    raise RuntimeError(PLANTED)


def attention(model, monkeypatch):
    view = AttentionView(model, TOKENS)
    monkeypatch.setattr(attention_view, "attention_patterns", planted_failure)
    return view, "_page_set", {"prompt": 1}


def intervention(model, monkeypatch):
    view = InterventionPanel(model, TOKENS)
    monkeypatch.setattr(intervention_panel, "ablate", planted_failure)
    return view, "_page_set", {"units": ["head 1.2"]}


def lens(model, monkeypatch):
    view = LogitLensView(model, TOKENS, n=3)
    monkeypatch.setattr(logit_lens_view, "logit_lens", planted_failure)
    return view, "_page_set", {"target": "7"}


def dla(model, monkeypatch):
    view = LogitAttributionView(model, TOKENS, target=7)
    monkeypatch.setattr(logit_attribution_view, "direct_logit_attribution", planted_failure)
    return view, "_page_set", {"target": "5"}


def token_attribution(model, monkeypatch):
    view = TokenAttributionView(model, TOKENS, target=7, n_steps=4)
    monkeypatch.setattr(token_attribution_view, "attribute_tokens", planted_failure)
    return view, "_page_set", {"target": "5"}


def patching(model, monkeypatch):
    corrupted = TOKENS.flip(0)
    view = PatchingView(model, TOKENS, corrupted=corrupted, metric=lambda logits: logits[:, -1, 0])
    monkeypatch.setattr(patching_view, "attribution_patching", planted_failure)
    return view, "_page_set", {"method": "attribution"}


def diff(model, monkeypatch):
    view = DiffView(model, TOKENS, other=model.copy(), metric=lambda logits: logits[:, -1, 0])
    monkeypatch.setattr(diff_view, "activation_patching", planted_failure)
    return view, "_page_set", {"patch_into": "other"}


def features(model, monkeypatch):
    sae = SparseAutoencoder.create(model.hook_name("resid_post", 0), d_in=model.d_model, d_sae=8)
    view = FeatureView(model, TOKENS, sae=sae, n=2)
    monkeypatch.setattr(feature_view, "steer", planted_failure)
    return view, "_page_steer", {"mode": "add", "amount": 2.0}


def neurons(_model, monkeypatch):
    view = NeuronView(zoo.mnist_mlp(hidden=(8,), seed=0), torch.rand(12, 1, 28, 28), n=3)
    monkeypatch.setattr(neuron_view, "input_image", planted_failure)
    return view, "_page_set", {"neuron": 5}


def audit(_model, monkeypatch):
    model = explorer.load(make_mlp(0), input_shape=(1, 28, 28), name="audited")
    result = AuditResult(
        model="audited",
        method="stamp",
        flagged=(4,),
        anomaly=torch.linspace(-1, 3, 10),
        masks=torch.zeros(10, 28, 28),
        patterns=torch.zeros(10, 1, 28, 28),
        success=torch.linspace(0, 1, 10),
        boxes=tuple((0, 0, 4, 4) for _ in range(10)),
        forward_passes=10,
        backward_passes=0,
        examples=100,
        budget=None,
        threshold=0.0,
    )
    view = AuditView(result, model, torch.rand(20, 1, 28, 28), n_examples=4)
    monkeypatch.setattr(audit_view, "stamped_examples", planted_failure)
    return view, "_page_set", {"selected": 8}


def scrubber(_model, _monkeypatch, tmp_path):
    model = zoo.modular_addition_transformer(5, d_model=8)
    run = Run.create(tmp_path / "run", model)
    for step in (0, 10):
        run.save_checkpoint(model, step)
        run.log(step, {"train_loss": 1.0 / (step + 1)})

    def linked_view(_model, step):
        if step == 10:
            planted_failure()

    view = TrainingScrubber(run, on_step=linked_view, step=0)
    return view, "_page_set", {"step": 10}


def sweeps(_model, monkeypatch, tmp_path):
    planned = plan_sweep("grokking", {"lr": [1e-3, 1e-2], "train_frac": [0.3, 0.5]},
                         folder=tmp_path / "s")  # fmt: skip
    view = SweepView(planned)
    monkeypatch.setattr(sweep_view, "phase_diagram", planted_failure)
    return view, "_page_set", {"rows": ""}


def _hypothesis():
    return Hypothesis(
        claim="neuron 0.3 detects the concept",
        units="neuron 0.3",
        measure=NeuronSelectivity(),
        threshold=0.9,
        formation=Split(range(40)),
        held_out=Split(range(40, 80)),
    )


def hypothesis(_model, monkeypatch):
    view = HypothesisWidget(
        _hypothesis(), planted.concept_neuron_model(), planted.concept_examples(80)
    )
    monkeypatch.setattr(hypothesis_view, "pick_data", planted_failure)
    return view, "_page_test", {}


def board(_model, monkeypatch):
    store = HypothesisStore(":memory:")
    store.save(_hypothesis(), project="room", author="ada")
    model, data = planted.concept_neuron_model(), planted.concept_examples(80)
    view = HypothesisBoard(store, "room", model=model, inputs=data)
    monkeypatch.setattr(hypothesis_view, "rerun_project", planted_failure)
    return view, "_page_rerun", {}


def session_board(_model, monkeypatch):
    session = StaticSession(board_of(records=1))
    monkeypatch.setattr(session, "reveal", planted_failure)
    return SessionBoard(session), "_page_reveal", {}


CASES = {
    "AttentionView": attention,
    "AuditView": audit,
    "DiffView": diff,
    "FeatureView": features,
    "HypothesisBoard": board,
    "HypothesisWidget": hypothesis,
    "InterventionPanel": intervention,
    "LogitAttributionView": dla,
    "LogitLensView": lens,
    "NeuronView": neurons,
    "PatchingView": patching,
    "SessionBoard": session_board,
    "SweepView": sweeps,
    "TokenAttributionView": token_attribution,
    "TrainingScrubber": scrubber,
}


def test_every_view_is_covered():
    views = {
        name
        for name in explorer.views.__all__
        if isinstance(getattr(explorer.views, name), type)
        and issubclass(getattr(explorer.views, name), ExplorerWidget)
    }
    assert views == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_failure_in_each_view_reaches_the_user_through_the_one_path(
    name, attn_model, monkeypatch, tmp_path
):
    build = CASES[name]
    on_disk = build in (scrubber, sweeps)
    args = (attn_model, monkeypatch, tmp_path) if on_disk else (attn_model, monkeypatch)
    view, command, arguments = build(*args)
    assert type(view).__name__ == name and view.error == ""
    reported = []
    real_fail = ExplorerWidget._fail

    def fail(self, exc):
        reported.append(str(exc))
        real_fail(self, exc)

    monkeypatch.setattr(ExplorerWidget, "_fail", fail)
    reply = invoke(view, command, **arguments)
    assert view.wait(SAFETY_S)
    outcome = view.last_run["outcome"] if reply["outcome"] == "started" else reply["outcome"]
    assert outcome == "failed", (reply, view.last_run)
    assert PLANTED in view.error
    assert any(PLANTED in message for message in reported)  # through _fail, nowhere else


def test_only_the_reporter_writes_error():
    """``error`` is assigned in _base.py (``_fail`` and ``_reported``) and nowhere else."""
    views = Path(explorer.views.__file__).parent
    writers = []
    for path in sorted(views.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if any(isinstance(t, ast.Attribute) and t.attr == "error" for t in targets):
                    writers.append(f"{path.name}:{fn.name}")
    assert sorted(set(writers)) == ["_base.py:_fail", "_base.py:_reported"]
