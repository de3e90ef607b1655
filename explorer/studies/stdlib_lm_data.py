"""The standard-library LM's setting and data: what decides the trained model, and the token
windows it trains and is evaluated on (``stdlib_lm`` trains, ships and opens it).

>>> s = StdlibLMSetting(steps=10, n_layers=1)
>>> s.n_layers, s.tokens_per_step
(1, 2048)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from explorer._cache import cached_path, one_writer, write_cached
from explorer.data.bpe import BPETokenizer, train_bpe
from explorer.data.stdlib_text import StdlibCorpus, stdlib_corpus

__all__ = [
    "DEFAULT_SETTING",
    "StdlibLMData",
    "StdlibLMSetting",
    "TokenWindows",
    "stdlib_lm_data",
]


@dataclass(frozen=True)
class StdlibLMSetting:
    """Everything that decides the trained model: corpus split, tokenizer, model, training."""

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    n_ctx: int = 128
    positional_embedding: str = "rotary"
    vocab_size: int = 1024
    batch_size: int = 16
    steps: int = 4500
    lr: float = 5e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    eval_every: int = 50
    eval_windows: int = 32
    held_out_every: int = 10
    copy_fraction: float = 1.0
    copy_span: tuple[int, int] = (16, 56)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_mlp", "n_ctx", "batch_size", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_ctx < 8:
            raise ValueError(f"n_ctx must be at least 8 tokens, got {self.n_ctx}")
        if not 0 <= self.copy_fraction <= 1:
            raise ValueError(f"copy_fraction must be in [0, 1], got {self.copy_fraction}")
        object.__setattr__(self, "copy_span", tuple(int(v) for v in self.copy_span))
        lo, hi = self.copy_span
        if self.copy_fraction and not (1 <= lo <= hi and 2 * hi + 2 <= self.n_ctx):
            raise ValueError(
                f"copy_span {self.copy_span} must be 1 <= shortest <= longest with two copies "
                f"of the longest fitting in n_ctx {self.n_ctx}"
            )

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.n_ctx

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["copy_span"] = list(self.copy_span)
        return out


DEFAULT_SETTING = StdlibLMSetting()


@dataclass(frozen=True)
class TokenWindows:
    """Windows of tokens drawn from a split: ``tokens[i]`` came from file ``files[i]``.

    Each window starts with ``<|bos|>`` and continues with consecutive tokens of one file
    from token ``starts[i]`` on.
    """

    tokens: torch.Tensor  # [batch, n_ctx], long
    files: tuple[str, ...]
    starts: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def __repr__(self) -> str:
        return (
            f"TokenWindows({tuple(self.tokens.shape)}, from {len(set(self.files))} files: "
            f"{', '.join(sorted(set(self.files))[:3])}...)"
        )


class _Split:
    """The token ids of one split's files, concatenated, with where each file starts."""

    def __init__(self, paths: Sequence[str], ids: Sequence[Sequence[int]]) -> None:
        self.paths = tuple(paths)
        self.lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.tokens = torch.tensor([t for seq in ids for t in seq], dtype=torch.long)

    @classmethod
    def _from_tensors(
        cls, paths: Sequence[str], lengths: torch.Tensor, tokens: torch.Tensor
    ) -> _Split:
        split = cls.__new__(cls)
        split.paths = tuple(paths)
        split.lengths = lengths.long()
        split.offsets = torch.cumsum(split.lengths, 0) - split.lengths
        split.tokens = tokens.long()
        return split

    def sample(
        self, n: int, length: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[int], list[int]]:
        """``n`` runs of ``length`` tokens, each inside one file (files chosen by size)."""
        room = (self.lengths - length + 1).clamp(min=0)
        if int(room.sum()) == 0:
            raise ValueError(f"no file of this split has {length} tokens: use a smaller n_ctx")
        which = torch.multinomial(room.double(), n, replacement=True, generator=generator)
        starts = (torch.rand(n, generator=generator, dtype=torch.float64) * room[which]).long()
        index = self.offsets[which, None] + starts[:, None] + torch.arange(length)
        return self.tokens[index], which.tolist(), starts.tolist()


@dataclass(frozen=True)
class StdlibLMData:
    """The corpus, its tokenizer and both splits tokenized; draws windows deterministically."""

    corpus: StdlibCorpus
    tokenizer: BPETokenizer
    train: _Split
    held_out: _Split

    def windows(self, split: str, n: int, n_ctx: int, *, seed: int = 0) -> TokenWindows:
        """``n`` windows of ``n_ctx`` tokens ([BOS] + ``n_ctx - 1`` tokens of one file).

        The same (split, n, n_ctx, seed) always gives the same windows.
        """
        part = self._split(split)
        gen = torch.Generator().manual_seed(int(seed))
        body, which, starts = part.sample(n, n_ctx - 1, gen)
        bos = torch.full((n, 1), self.tokenizer.bos_id, dtype=torch.long)
        return TokenWindows(
            torch.cat([bos, body], dim=1), tuple(part.paths[i] for i in which), tuple(starts)
        )

    def _split(self, split: str) -> _Split:
        if split == "train":
            return self.train
        if split == "held_out":
            return self.held_out
        raise ValueError(f"unknown split {split!r}: choose 'train' or 'held_out'")

    def describe(self) -> dict[str, Any]:
        return {
            **self.corpus.describe(),
            "tokenizer": self.tokenizer.fingerprint(),
            "vocab_size": self.tokenizer.vocab_size,
            "train_tokens": int(self.train.tokens.numel()),
            "held_out_tokens": int(self.held_out.tokens.numel()),
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"StdlibLMData(Python {d['python_version']}, {d['train_tokens']:,} train tokens in "
            f"{d['train_files']} files, {d['held_out_tokens']:,} held-out tokens in "
            f"{d['held_out_files']} files, vocab {d['vocab_size']})"
        )


def stdlib_lm_data(
    setting: StdlibLMSetting = DEFAULT_SETTING,
    *,
    corpus: StdlibCorpus | None = None,
    tokenizer: BPETokenizer | None = None,
) -> StdlibLMData:
    """Read the corpus, train the tokenizer on its training files (unless given), tokenize
    (or read the splits' token ids back from the folder ``$EXPLORER_CACHE`` names)."""
    corpus = corpus or stdlib_corpus(held_out_every=setting.held_out_every)
    if tokenizer is None:
        tokenizer = train_bpe([f.text for f in corpus.train], setting.vocab_size)
    elif tokenizer.vocab_size != setting.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the setting asks for "
            f"{setting.vocab_size}"
        )
    splits = {name: _tokenized(corpus, name, tokenizer) for name in ("train", "held_out")}
    return StdlibLMData(corpus, tokenizer, splits["train"], splits["held_out"])


def _tokenized(corpus: StdlibCorpus, name: str, tokenizer: BPETokenizer) -> _Split:
    """One split tokenized, or its token ids read back from ``$EXPLORER_CACHE``
    (``explorer._cache``) when this corpus, split and tokenizer were tokenized before (the
    standard library takes about 10 s of CPU to tokenize)."""
    files = corpus.split(name)
    paths = [f.path for f in files]
    key = (corpus.content_hash, tokenizer.fingerprint(), name, *paths)
    path = cached_path("stdlib-tokens", *key)
    with one_writer(path):
        if path is not None and path.is_file():
            saved = load_file(path)
            return _Split._from_tensors(paths, saved["lengths"], saved["tokens"])
        split = _Split(paths, tokenizer.encode_batch([f.text for f in files]))
        if path is not None:
            tensors = {"lengths": split.lengths, "tokens": split.tokens.int()}
            write_cached(path, save_tensors(tensors))
        return split
