"""A hypothesis about an SAE feature is stored with its SAE named as data (folder inside the
project + fingerprint), so ``rerun_project`` reloads it and recomputes the verdict; a missing
or changed SAE is refused with a sentence (issue 26)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from explorer.analysis import Feature
from explorer.features import SparseAutoencoder, load_sae
from explorer.hypotheses import Examples, Hypothesis, HypothesisStore, NeuronSelectivity, Split
from explorer.hypotheses.rerun import rerun_project
from explorer.models import zoo
from explorer.models.config import TransformerConfig

TOKEN = 5


def _model_sae_data():
    model = zoo.transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_mlp=32,
                                              d_vocab=20, n_ctx=12, seed=1), name="toy")  # fmt: skip
    sae = SparseAutoencoder.create("hook_embed", d_in=16, d_sae=24, architecture="standard")
    with torch.no_grad():  # feature 3 fires on TOKEN only
        e = model.weight("embed")[TOKEN]
        sae.sae.b_dec.zero_()
        sae.sae.W_enc[:, 3] = 10 * e / e.dot(e)
        sae.sae.b_enc[3] = -9.0
    x = torch.randint(0, 20, (80, 6), generator=torch.Generator().manual_seed(3))
    data = Examples(x, labels=torch.zeros(80, dtype=torch.long), concept=(x == TOKEN).any(1))
    return model, sae, data


def test_a_feature_hypothesis_reruns_from_the_store_and_a_changed_sae_is_refused(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the project folder
    model, made, data = _model_sae_data()
    made.save(tmp_path / "saes" / "embed-sae")
    sae = load_sae("saes/embed-sae", model=model)
    h = Hypothesis(claim="feature 3 detects token 5", units=Feature(sae, 3),
                   measure=NeuronSelectivity("auroc"), threshold=0.9,
                   formation=Split(range(40)), held_out=Split(range(40, 80)))  # fmt: skip
    first = h.test(model, data)
    record = h.to_dict()
    assert record["units"] == ["F3"]
    assert record["sae"] == {"root": "project", "folder": "saes/embed-sae",
                             "fingerprint": sae.fingerprint(), "name": "embed-sae"}  # fmt: skip
    store = HypothesisStore(str(tmp_path / "h.db"))
    store.save(h, project="p")
    again = rerun_project(store, "p", model, data)[h.id]
    assert not isinstance(again, str), again
    assert again.status == first.status == "supported" and again.value == pytest.approx(first.value)
    assert len(store.get(h.id).verdicts) == 1

    weights = tmp_path / "saes" / "embed-sae"
    changed = load_sae(weights)
    with torch.no_grad():
        changed.sae.b_enc[3] += 1.0
    shutil.rmtree(weights)
    changed.save(weights)
    refused = rerun_project(store, "p", model, data)[h.id]
    assert isinstance(refused, str) and "not the one this hypothesis was saved with" in refused
    shutil.rmtree(weights)
    missing = rerun_project(store, "p", model, data)[h.id]
    assert isinstance(missing, str) and "is missing" in missing and "embed-sae" in missing
    made.save(weights)  # the SAE put back: the refusals recorded nothing, and it runs again
    assert len(store.get(h.id).verdicts) == 1
    assert rerun_project(store, "p", model, data)[h.id].status == "supported"


def test_a_record_naming_a_folder_outside_the_project_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, made, _ = _model_sae_data()
    made.save(tmp_path / "sae")
    sae = load_sae("sae", model=model)
    h = Hypothesis(claim="c", units=Feature(sae, 3), measure=NeuronSelectivity("auroc"),
                   threshold=0.9, formation=Split(range(4)), held_out=Split(range(4, 8)))  # fmt: skip
    record = json.loads(h.to_json())
    record["sae"]["folder"] = "../outside"
    with pytest.raises(ValueError, match="not a relative path of plain names"):
        Hypothesis.from_dict(record)
    record["sae"]["folder"] = "sae"
    assert Hypothesis.from_dict(record).units[0].sae.fingerprint() == sae.fingerprint()
