"""The standard-library LM recipe: the shipped run opens, a rebuild reproduces it, shipping
keeps it small, and windows come from the right files."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from explorer.data.stdlib_text import stdlib_corpus
from explorer.studies.stdlib_lm import (
    EARLY_STEPS,
    SHIPPED_RUN,
    StdlibLMSetting,
    build_model,
    load_stdlib_lm,
    next_token_loss,
    ship_run,
    stdlib_lm_data,
    train_stdlib_lm,
)


@pytest.fixture(scope="module")
def shipped():
    return load_stdlib_lm()


@pytest.fixture(scope="module")
def data(shipped):
    """This interpreter's corpus, tokenized with the shipped tokenizer."""
    return shipped.data()


def test_the_shipped_run_is_small_and_in_float16(shipped):
    files = [p for p in SHIPPED_RUN.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert {p.name for p in files} == {
        "manifest.json",
        "metrics.jsonl",
        "tokenizer.json",
        "model.safetensors",
        "config.json",
    }
    from safetensors import safe_open

    (weights,) = [p for p in files if p.name == "model.safetensors"]
    with safe_open(str(weights), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F16" in dtypes and "F32" not in dtypes
    assert shipped.run.status == "complete" and shipped.run.steps == (shipped.setting.steps,)
    assert shipped.model.vocab[shipped.tokenizer.bos_id] == "<|bos|>"
    assert shipped.python_version.count(".") == 2
    assert 0 < shipped.run.manifest["meta"]["cpu_seconds"] < 600


def test_the_shipped_model_predicts_held_out_files_as_its_run_logged(shipped, data):
    setting = shipped.setting
    # another Python version holds other held-out files: close, not equal
    same_library = data.corpus.content_hash == shipped.corpus_record["content_hash"]
    held = data.windows("held_out", setting.eval_windows, setting.n_ctx, seed=12345).tokens
    with torch.no_grad():
        loss = float(next_token_loss(shipped.model, held))
    logged = shipped.run.metrics().last()
    assert loss == pytest.approx(logged["held_out_loss"], abs=0.02 if same_library else 0.3)
    assert loss < 0.7 * torch.log(torch.tensor(1024.0)).item()  # far below uniform (6.93)


def test_a_rebuild_reproduces_the_tokenizer_and_the_first_steps(shipped, data):
    """Train the shipped setting from scratch for a few steps (not the whole run)."""
    same_library = data.corpus.content_hash == shipped.corpus_record["content_hash"]
    rebuilt = stdlib_lm_data(shipped.setting, corpus=data.corpus)  # trains a fresh tokenizer
    if same_library:
        assert rebuilt.tokenizer.fingerprint() == shipped.tokenizer.fingerprint()
    setting = dataclasses.replace(shipped.setting, steps=EARLY_STEPS, eval_every=EARLY_STEPS)
    import tempfile

    run = train_stdlib_lm(tempfile.mkdtemp() + "/run", setting, data=rebuilt, progress=False)
    early = run.manifest["meta"]["early_train_loss"]
    shipped_early = shipped.run.manifest["meta"]["early_train_loss"]
    assert sorted(early) == sorted(shipped_early) == [str(s) for s in range(EARLY_STEPS)]
    tol = 1e-4 if same_library else 0.2
    for step, value in shipped_early.items():
        assert early[step] == pytest.approx(value, abs=tol), step
    assert early[str(EARLY_STEPS - 1)] < early["0"]  # it is learning


def test_windows_lie_inside_one_file_of_their_split(data, shipped):
    n_ctx = shipped.setting.n_ctx
    a = data.windows("held_out", 16, n_ctx, seed=3)
    b = data.windows("held_out", 16, n_ctx, seed=3)
    assert torch.equal(a.tokens, b.tokens) and a.files == b.files
    assert (a.tokens[:, 0] == shipped.tokenizer.bos_id).all()
    held = {f.path: f.text for f in data.corpus.held_out}
    assert set(a.files) <= set(held)
    for row, path in zip(a.tokens, a.files):
        text = shipped.tokenizer.decode(row[1:].tolist())
        if "\ufffd" not in text:  # a window may start inside a multi-byte character
            assert text in held[path]
    train_files = set(data.windows("train", 64, n_ctx, seed=0).files)
    assert train_files.isdisjoint(held)
    with pytest.raises(ValueError, match="unknown split"):
        data.windows("test", 1, n_ctx)


def test_training_saves_a_resumable_run_and_shipping_keeps_it_openable(tmp_path):
    corpus = stdlib_corpus(max_files=60)
    setting = StdlibLMSetting(
        n_layers=1,
        d_model=32,
        n_heads=2,
        d_mlp=64,
        n_ctx=16,
        vocab_size=300,
        batch_size=4,
        steps=6,
        eval_every=3,
        eval_windows=4,
        warmup_steps=2,
        copy_span=(2, 6),
    )
    data = stdlib_lm_data(setting, corpus=corpus)
    run = train_stdlib_lm(tmp_path / "run", setting, data=data, progress=False)
    assert (tmp_path / "run" / "tokenizer.json").is_file()
    assert run.data["corpus"]["content_hash"] == corpus.content_hash
    assert run.data["corpus"]["python_version"] == corpus.python_version
    shipped = ship_run(run, tmp_path / "shipped")
    assert shipped.steps == (6,) and not (tmp_path / "shipped" / "state").exists()
    opened = load_stdlib_lm(tmp_path / "shipped")
    tokens = data.windows("held_out", 3, 16).tokens
    with torch.no_grad():
        full, half = run.load_model()(tokens), opened.model(tokens)
    assert torch.allclose(full, half, atol=0.05)
    assert opened.encode("x = 1").shape == (1, 1 + len(opened.tokenizer.encode("x = 1")))
    with pytest.raises(ValueError, match="reads at most 16"):
        opened.encode("x = 1\n" * 20)
    # a different library (same Python version) is refused rather than silently mismatched
    with pytest.raises(ValueError, match="differs from the one"):
        opened.data(stdlib_corpus(max_files=61))


def test_foreign_runs_and_tokenizers_are_refused(tmp_path, shipped):
    from explorer.training import Run

    model = build_model(
        StdlibLMSetting(n_layers=1, d_model=32, d_mlp=64, n_heads=2), shipped.tokenizer
    )
    Run.create(tmp_path / "other", model)
    with pytest.raises(ValueError, match="not one of train_stdlib_lm"):
        load_stdlib_lm(tmp_path / "other")
    import shutil

    shutil.copytree(SHIPPED_RUN, tmp_path / "copy")
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    manifest["data"]["corpus"]["tokenizer"] = "0" * 16
    (tmp_path / "copy" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not the one the model was trained with"):
        load_stdlib_lm(tmp_path / "copy")
    with pytest.raises(ValueError, match="n_ctx must be at least 8"):
        StdlibLMSetting(n_ctx=4)


def test_the_token_cache_gives_back_the_same_ids_without_tokenizing(tmp_path, monkeypatch):
    from explorer.data.bpe import BPETokenizer

    corpus = stdlib_corpus(max_files=30)
    setting = StdlibLMSetting(vocab_size=300)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EXPLORER_CACHE", str(cache))
    first = stdlib_lm_data(setting, corpus=corpus)
    kept = cache / "stdlib-tokens"
    assert len(list(kept.glob("*.safetensors"))) == 2  # train and held_out

    def no_tokenizing(self, texts):
        raise AssertionError("tokenized again: the cache was not read")

    with monkeypatch.context() as patch:
        patch.setattr(BPETokenizer, "encode_batch", no_tokenizing)
        again = stdlib_lm_data(setting, corpus=corpus, tokenizer=first.tokenizer)
    for a, b in ((first.train, again.train), (first.held_out, again.held_out)):
        assert a.paths == b.paths
        assert torch.equal(a.tokens, b.tokens) and a.tokens.dtype == b.tokens.dtype
        assert torch.equal(a.lengths, b.lengths) and torch.equal(a.offsets, b.offsets)
    assert torch.equal(first.windows("train", 8, 32).tokens, again.windows("train", 8, 32).tokens)

    # another tokenizer gets files of its own; without the variable nothing is kept
    other = stdlib_lm_data(dataclasses.replace(setting, vocab_size=280), corpus=corpus)
    assert len(list(kept.glob("*.safetensors"))) == 4  # (beside each, its empty .lock)
    assert not torch.equal(other.train.tokens, first.train.tokens)
    monkeypatch.delenv("EXPLORER_CACHE")
    stdlib_lm_data(setting, corpus=corpus, tokenizer=first.tokenizer)
    assert len(list(kept.glob("*.safetensors"))) == 4
