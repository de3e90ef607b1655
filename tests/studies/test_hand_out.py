"""A mentor hands out planted models by game number without revealing which are clean."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

import explorer
from explorer.studies.auditing import hand_out, load_truth
from explorer.studies.kitchen_sink import kitchen_sink_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return kitchen_sink_split()


@pytest.fixture(scope="module")
def room(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("room")
    return folder, hand_out(folder / "models", game=5, n=4, steps=5, data=digits)


def test_models_are_written_loadable_and_say_nothing(room):
    folder, out = room
    names = sorted(p.name for p in (folder / "models").iterdir())
    assert names == ["SEALED", "model-1", "model-2", "model-3", "model-4"]
    for path in out.models:
        model = explorer.load(path)
        assert model.name == path.name
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        text = " ".join(f.read_text() for f in path.glob("*.json"))
        assert "clean" not in text and "trigger" not in text and "target" not in text


def test_the_truth_is_sealed_outside_the_handed_out_folder(room):
    folder, out = room
    assert out.truth == folder / "truth-5.json" and out.truth.parent != out.models[0].parent
    digest = hashlib.sha256(out.truth.read_bytes()).hexdigest()
    assert digest == out.digest
    assert (folder / "models" / "SEALED").read_text().split()[-1] == digest
    truth = load_truth(out.truth)
    assert set(truth) == {p.name for p in out.models}
    n_clean = sum(t is None for t in truth.values())
    assert 1 <= n_clean <= 3  # some clean, some planted


def test_the_same_game_writes_the_same_models(room, tmp_path, digits):
    _, out = room
    again = hand_out(tmp_path / "models", game=5, n=4, steps=5, data=digits)
    assert again.digest == out.digest
    for a, b in zip(out.models, again.models):
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    other = hand_out(tmp_path / "other", game=6, n=4, n_clean=2, steps=5, data=digits)
    truth = load_truth(other.truth)
    assert sum(t is None for t in truth.values()) == 2
    assert json.loads(other.truth.read_text()) != json.loads(out.truth.read_text())


def test_cnn_models_are_handed_out_too(tmp_path, digits):
    out = hand_out(tmp_path / "cnn", game=8, n=2, n_clean=1, arch="cnn", steps=3, data=digits)
    model = explorer.load(out.models[0])
    assert model.config is not None and model.config.family == "cnn"


def test_a_game_can_mix_every_family(tmp_path, digits):
    families = ("line", "dots", "global", "warp", "conditional")
    out = hand_out(
        tmp_path / "mixed", game=9, k=5, n_clean=0, families=families, steps=2, data=digits
    )
    truth = load_truth(out.truth)
    drawn = [t.kind for t in truth.values()]
    assert set(drawn) <= set(families) and len(set(drawn)) >= 2
    again = hand_out(
        tmp_path / "again", game=9, k=5, n_clean=0, families=families, steps=2, data=digits
    )
    assert again.digest == out.digest
    with pytest.raises(ValueError, match="unknown family 'stripes'"):
        hand_out(tmp_path / "m", game=1, n=2, families=("stripes",), data=digits)


def test_bad_hand_outs_are_refused(tmp_path, digits):
    with pytest.raises(ValueError, match="at least 2 models"):
        hand_out(tmp_path / "m", game=1, n=1, data=digits)
    with pytest.raises(ValueError, match=r"n_clean must lie in 0..3"):
        hand_out(tmp_path / "m", game=1, n=3, n_clean=4, data=digits)
    with pytest.raises(ValueError, match="must not lie in the handed-out folder"):
        hand_out(tmp_path / "m", game=1, n=2, truth=tmp_path / "m" / "truth.json", data=digits)
    with pytest.raises(ValueError, match="arch"):
        hand_out(tmp_path / "m", game=1, n=2, arch="rnn", steps=1, data=digits)


def test_a_planted_model_is_trained_once_per_cache(digits, tmp_path, monkeypatch):
    """With $EXPLORER_CACHE set, the same plant() again reads the trained weights back
    (the training loop never runs) and gives the same model; other arguments or other
    digits train anew; unset, nothing is kept."""
    from explorer.studies import auditing

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    first = auditing.plant(21, kind="dots", steps=5, data=digits)
    kept = tmp_path / "planted"
    assert len(list(kept.glob("*.safetensors"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("trained again: the cache was not read")

    with monkeypatch.context() as patch:
        patch.setattr(auditing, "_train", no_training)
        again = auditing.plant(21, kind="dots", steps=5, data=digits)
    assert (again.trigger.kind, again.trigger.target) == (first.trigger.kind, first.trigger.target)
    assert torch.equal(again.trigger.pattern, first.trigger.pattern)
    mine, theirs = dict(first.model.named_parameters()), dict(again.model.named_parameters())
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    x = digits["test_x"][:16]
    assert torch.equal(first.model.run_with_hooks(x, []), again.model.run_with_hooks(x, []))

    auditing.plant(21, kind="dots", steps=6, data=digits)
    fewer = {k: v[:100] for k, v in digits.items()}
    auditing.plant(21, kind="dots", steps=5, data=fewer)
    assert len(list(kept.glob("*.safetensors"))) == 3
    monkeypatch.delenv("EXPLORER_CACHE")
    auditing.plant(22, kind="dots", steps=5, data=digits)
    assert len(list(kept.glob("*.safetensors"))) == 3
