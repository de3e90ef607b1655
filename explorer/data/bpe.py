"""Small byte-level BPE tokenizers, trained offline with Hugging Face ``tokenizers``.

``train_bpe(texts, vocab_size)`` learns merges on the given texts (GPT-2's byte-level
pre-tokenisation, so any text encodes and decodes back exactly), with one special token,
``<|bos|>``, as id 0. Training is deterministic: the same texts give the same
``tokenizer.json`` byte for byte. A tokenizer is saved as that one JSON file (no code, no
pickle) beside the model it belongs to and read back with ``BPETokenizer.load``.

>>> tok = train_bpe(["def f(x):\\n    return x\\n"] * 20, vocab_size=300)
>>> tok.bos_id, tok.decode(tok.encode("def g(y):\\n    return y\\n"))
(0, 'def g(y):\\n    return y\\n')
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from explorer._inside import inside

__all__ = ["BOS", "BPETokenizer", "train_bpe"]

BOS = "<|bos|>"
FILE_NAME = "tokenizer.json"


class BPETokenizer:
    """A byte-level BPE tokenizer: ``encode``, ``decode`` and a display string per id."""

    def __init__(self, tokenizer: object) -> None:
        self._tok = tokenizer
        bos = self._tok.token_to_id(BOS)  # type: ignore[attr-defined]
        if bos is None:
            raise ValueError(f"the tokenizer has no {BOS} token: train it with train_bpe")
        self.bos_id: int = int(bos)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())  # type: ignore[attr-defined]

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` (no BOS added)."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        return list(self._tok.encode(text).ids)  # type: ignore[attr-defined]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The ids of ``text`` and, for each, the ``(start, end)`` characters it covers.

        >>> tok = train_bpe(["ab ab ab"] * 5, vocab_size=260)
        >>> tok.encode_with_offsets("ab")[1]
        [(0, 2)]
        """
        if not isinstance(text, str):
            raise TypeError(f"encode_with_offsets takes a str, got {type(text).__name__}")
        enc = self._tok.encode(text)  # type: ignore[attr-defined]
        return list(enc.ids), [(int(a), int(b)) for a, b in enc.offsets]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._tok.encode_batch(list(texts))]  # type: ignore[attr-defined]

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token ids {bad[:5]} out of range 0..{self.vocab_size - 1}")
        return str(self._tok.decode(ids, skip_special_tokens=False))  # type: ignore[attr-defined]

    def token_strings(self) -> tuple[str, ...]:
        """How each id reads on its own (a lone byte of a multi-byte character reads as '�')."""
        return tuple(self.decode([i]) for i in range(self.vocab_size))

    def to_json(self) -> str:
        return str(self._tok.to_str())  # type: ignore[attr-defined]

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the canonical JSON: equal tokenizers, equal prints."""
        canonical = json.dumps(json.loads(self.to_json()), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` into ``folder``; returns the file's path."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        path = out / FILE_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read ``tokenizer.json`` (or the folder holding it)."""
        # lazy: the tokenizers library is needed only to read a saved BPE, not to import data
        from tokenizers import Tokenizer

        p = Path(path)
        if p.is_dir():  # a symlink out of the folder is never followed
            p = inside(p, FILE_NAME, what="tokenizer file")
        if not p.is_file():
            raise FileNotFoundError(f"no tokenizer at {str(p)!r}: save one with .save(folder)")
        try:
            return cls(Tokenizer.from_file(str(p)))
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            if isinstance(err, ValueError) and BOS in str(err):
                raise
            raise ValueError(f"{str(p)!r} is not a tokenizers JSON file: {err}") from None

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, fingerprint={self.fingerprint()})"


def train_bpe(
    texts: Iterable[str], vocab_size: int = 1024, *, min_frequency: int = 2
) -> BPETokenizer:
    """Learn a byte-level BPE of ``vocab_size`` ids on ``texts`` (id 0 is ``<|bos|>``).

    Args:
        texts: the training texts (e.g. the training files of a corpus; never held-out ones).
        vocab_size: ids in all: 1 special + 256 bytes + merges; at least 258.
        min_frequency: a pair must occur this often to be merged.
    """
    # lazy: training a BPE needs tokenizers' trainers; most sessions load a shipped one or none
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 258:
        raise ValueError(
            f"vocab_size must be an integer >= 258 (1 + 256 bytes + 1), got {vocab_size}"
        )
    texts = list(texts)
    if not texts or not any(texts):
        raise ValueError("train_bpe needs at least one non-empty text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(tok)
