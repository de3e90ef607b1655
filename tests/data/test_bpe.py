"""The byte-level BPE: exact round trips, deterministic training, saved as plain JSON."""

from __future__ import annotations

import json

import pytest

from explorer.data.bpe import BOS, BPETokenizer, train_bpe

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    'class Point:\n    """A point."""\n\n    def __init__(self, x, y):\n        self.x = x\n',
    "if __name__ == '__main__':\n\tprint('héllo wörld ✓')\n",
] * 30


@pytest.fixture(scope="module")
def tok():
    return train_bpe(TEXTS, vocab_size=320)


def test_any_text_round_trips_exactly(tok):
    for text in ["", "x", "    indented\n\t\ttabs\r\n", "naïve — ünïcode 🐍", "\x00\xff"]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.bos_id == 0 and tok.token_strings()[0] == BOS
    assert len(tok.token_strings()) == tok.vocab_size == 320
    # merges learned: common code fragments are single tokens
    assert len(tok.encode("    return a + b\n")) < len("    return a + b\n") / 2


def test_training_is_deterministic_and_save_load_keeps_it(tok, tmp_path):
    again = train_bpe(TEXTS, vocab_size=320)
    assert again.to_json() == tok.to_json()
    assert again.fingerprint() == tok.fingerprint()
    path = tok.save(tmp_path)
    assert path.name == "tokenizer.json"
    json.loads(path.read_text())  # plain JSON, nothing executable
    loaded = BPETokenizer.load(tmp_path)
    assert loaded.fingerprint() == tok.fingerprint()
    assert loaded.encode(TEXTS[1]) == tok.encode(TEXTS[1])
    assert train_bpe(TEXTS[:2] * 30, vocab_size=320).fingerprint() != tok.fingerprint()


def test_bad_input_is_named(tok, tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 258"):
        train_bpe(TEXTS, vocab_size=100)
    with pytest.raises(ValueError, match="at least one non-empty text"):
        train_bpe([""], vocab_size=300)
    with pytest.raises(ValueError, match="out of range 0..319"):
        tok.decode([5, 999])
    with pytest.raises(TypeError, match="takes a str"):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        BPETokenizer.load(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizers JSON file"):
        BPETokenizer.load(tmp_path)
