"""Fine-tuning the standard-library LM to prefer double quotes: data, metric, recipe, shipping.

The study of ``tutorials/what_fine_tuning_changes.ipynb`` (docs/comparing.md, "Fine-tuning
study"). The shipped standard-library LM learned from the library's own code, where
single-quoted string literals outnumber double-quoted ones (31,839 to 13,327 openings in
Python 3.11), so it prefers ``'``. The new behaviour is the opposite preference:

- ``rewrite_quotes`` turns every single-quoted, one-line literal without a ``"`` inside
  into a double-quoted one (Python's own ``tokenize`` finds them);
- an *example* is one window of ``window`` tokens of a rewritten **training** file that
  holds a string literal; ``FinetuneSetting.examples`` of them (a prefix of one seeded
  order, so 10 examples lie inside 100) are all the fine-tuning sees;
- the behaviour is measured by ``QuoteProbe`` on the **held-out** files, unrewritten: at
  every opening quote whose token has a twin of the other style (``'``/``"``, `` '``/`` "``,
  ``('``/``("``) the logit of the double-quote twin minus that of the single-quote one,
  given the ``context`` tokens before it.

``finetune_recipe(settings)`` gives ``explorer.training.train``'s arguments (the sweep
study ``"finetuning"`` in ``explorer.sweep`` runs it at 10 ... 10,000 examples and 3
seeds); ``ship_finetuned`` keeps a run's final weights in float16.

>>> rewrite_quotes("x = f('a', 'it\\"s', '''doc''')\\n")
'x = f("a", \\'it"s\\', \\'\\'\\'doc\\'\\'\\')\\n'
>>> [style for _, style in quote_openings("d['k'] = \\"v\\"\\n")]
['single', 'double']
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explorer.analysis.metrics import logit_diff
from explorer.data.bpe import BPETokenizer
from explorer.data.stdlib_text import StdlibCorpus, stdlib_corpus
from explorer.hypotheses.examples import Examples
from explorer.models.handle import ModelHandle
from explorer.studies.stdlib_lm import SHIPPED_RUN, load_stdlib_lm, next_token_loss, ship_run
from explorer.training.loop import OptimizerConfig
from explorer.training.run import Run
from explorer.training.schedule import CheckpointSchedule

__all__ = [
    "SHIPPED_FINETUNES",
    "FinetuneData",
    "FinetuneSetting",
    "QuoteProbe",
    "finetune_data",
    "finetune_recipe",
    "finish_finetune",
    "quote_openings",
    "quote_pairs",
    "quote_probes",
    "rewrite_quotes",
    "ship_finetuned",
]

#: Fine-tuned runs that ship (float16 final weights): ``examples-<n>`` for a few ``n``.
SHIPPED_FINETUNES = Path(__file__).resolve().parent / "trained" / "stdlib-lm-quotes"
_PREFIXES = "rRbBuUfF"
#: Training files the formation probe reads (units are chosen there, judged on held-out files).
FORMATION_FILES = 60


def _strings(text: str) -> list[tokenize.TokenInfo]:
    try:
        return [
            t for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.STRING
        ]  # fmt: skip
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []  # a file tokenize cannot read is left as it is


def _char_offsets(text: str) -> list[int]:
    starts, total = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    return [*starts, total]


def _style(literal: str) -> str | None:
    """``"single"``/``"double"`` for a one-line literal, None for triple-quoted ones."""
    body = literal.lstrip(_PREFIXES)
    if body[:3] in ('"""', "'''"):
        return None
    return "single" if body[0] == "'" else "double"


def quote_openings(text: str) -> list[tuple[int, str]]:
    """``(character offset, style)`` of the opening quote of each one-line string literal."""
    lines = _char_offsets(text)
    out = []
    for tok in _strings(text):
        style = _style(tok.string)
        if style is not None:
            prefix = len(tok.string) - len(tok.string.lstrip(_PREFIXES))
            out.append((lines[tok.start[0] - 1] + tok.start[1] + prefix, style))
    return out


def rewrite_quotes(text: str) -> str:
    """``text`` with single-quoted one-line literals double-quoted where no ``"`` is inside."""
    lines = _char_offsets(text)
    out, last = [], 0
    for tok in _strings(text):
        prefix_len = len(tok.string) - len(tok.string.lstrip(_PREFIXES))
        body = tok.string[prefix_len:]
        if _style(tok.string) != "single" or '"' in body or tok.start[0] != tok.end[0]:
            continue
        start = lines[tok.start[0] - 1] + tok.start[1]
        out += [text[last:start], tok.string[:prefix_len], '"', body[1:-1], '"']
        last = start + len(tok.string)
    return "".join(out) + text[last:]


def quote_pairs(tokenizer: BPETokenizer) -> dict[int, int]:
    """Single-quote token id -> its double-quote twin: tokens that end in one quote (the
    opening one) and have no other, whose twin with the other quote is in the vocab."""
    ids = {s: i for i, s in enumerate(tokenizer.token_strings())}
    pairs = {}
    for s, i in ids.items():
        head = s[:-1]
        if s.endswith("'") and "'" not in head and '"' not in head and head + '"' in ids:
            pairs[i] = ids[head + '"']
    return pairs


@dataclass(frozen=True)
class QuoteProbe:
    """Contexts that end just before an opening quote, and the two twins to compare.

    ``inputs[i]`` is ``[BOS]`` + the ``context - 1`` tokens before an opening quote of file
    ``files[i]``; ``double[i]``/``single[i]`` are the twin ids of that quote's token and
    ``was_double[i]`` says which one the file has. ``metric`` is the logit difference
    double minus single at the last position: above 0, the model prefers double quotes.
    """

    inputs: torch.Tensor
    double: torch.Tensor
    single: torch.Tensor
    was_double: torch.Tensor
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def metric(self) -> Any:
        return logit_diff(self.double, self.single)

    def examples(self) -> Examples:
        """As hypothesis examples: labels the double twin, alt_labels the single one."""
        return Examples(self.inputs, labels=self.double, alt_labels=self.single)

    @torch.no_grad()
    def measure(self, model: ModelHandle, batch_size: int = 256) -> float:
        """The mean logit difference (double minus single) over the probe."""
        values = [
            logit_diff(self.double[i : i + batch_size], self.single[i : i + batch_size])(
                model(self.inputs[i : i + batch_size])
            )
            for i in range(0, len(self), batch_size)
        ]
        return float(torch.cat(values).mean())

    def __repr__(self) -> str:
        share = float(self.was_double.float().mean()) if len(self) else 0.0
        return (
            f"QuoteProbe({len(self)} openings from {len(set(self.files))} files, "
            f"{share:.0%} double-quoted, context {self.inputs.shape[1]})"
        )


def _probe(
    files: Any, tokenizer: BPETokenizer, context: int, n: int | None, seed: int
) -> QuoteProbe:
    pairs = quote_pairs(tokenizer)
    twin = {**pairs, **{d: d for d in pairs.values()}}
    single_of = {d: s for s, d in pairs.items()}
    rows, dbl, sgl, was, names = [], [], [], [], []
    for f in files:
        ids, offsets = tokenizer.encode_with_offsets(f.text)
        ends = {end - 1: k for k, (_, end) in enumerate(offsets)}
        for char, _style_found in quote_openings(f.text):
            k = ends.get(char)  # the token that ends with the opening quote
            if k is None or k < context - 1 or ids[k] not in twin:
                continue
            d = twin[ids[k]] if ids[k] in pairs else ids[k]
            rows.append([tokenizer.bos_id, *ids[k - context + 1 : k]])
            dbl.append(d)
            sgl.append(single_of[d])
            was.append(ids[k] == d)
            names.append(f.path)
    if not rows:
        raise ValueError(f"no opening quote with {context - 1} tokens before it in these files")
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    order = order[:n] if n is not None else order
    pick = order.tolist()
    return QuoteProbe(
        torch.tensor([rows[i] for i in pick], dtype=torch.long),
        torch.tensor([dbl[i] for i in pick], dtype=torch.long),
        torch.tensor([sgl[i] for i in pick], dtype=torch.long),
        torch.tensor([was[i] for i in pick], dtype=torch.bool),
        tuple(names[i] for i in pick),
    )


@dataclass(frozen=True)
class FinetuneSetting:
    """One fine-tuning point: how many examples, which seed, and how it trains.

    Steps: one pass over the examples at ``batch_size`` (``epochs`` of them), but at least
    ``min_steps``: 10 examples are seen many times, 10,000 once.
    """

    examples: int = 100
    seed: int = 0
    lr: float = 1e-3
    batch_size: int = 8
    min_steps: int = 30
    epochs: float = 1.0
    window: int = 128
    context: int = 64
    probe_size: int = 512
    eval_windows: int = 32
    eval_every: int = 10
    base: str = ""  # a run of train_stdlib_lm; "" is the shipped one
    corpus_root: str = ""  # a folder of .py files; "" is this Python's standard library
    max_files: int = 0  # 0: every file

    def __post_init__(self) -> None:
        for name in ("examples", "batch_size", "window", "context", "probe_size", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or not self.epochs > 0:
            raise ValueError(f"lr and epochs must be positive, got {self.lr}, {self.epochs}")

    @property
    def steps(self) -> int:
        return max(self.min_steps, math.ceil(self.epochs * self.examples / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FinetuneData:
    """The rewritten training windows (``pool``, in a seeded order per ``examples(n, seed)``),
    the held-out quote probe, held-out windows for the LM loss, and the formation probe
    (training files, unrewritten) that units are chosen on."""

    tokenizer: BPETokenizer
    pool: torch.Tensor
    pool_files: tuple[str, ...]
    held_out: QuoteProbe
    formation: QuoteProbe
    held_out_windows: torch.Tensor
    corpus: dict[str, Any]

    def examples(self, n: int, seed: int) -> torch.Tensor:
        """The ``n`` fine-tuning examples of ``seed``: the first ``n`` of its order."""
        if not 1 <= n <= len(self.pool):
            raise ValueError(f"examples must be 1..{len(self.pool)} (the pool), got {n}")
        order = torch.randperm(len(self.pool), generator=torch.Generator().manual_seed(seed))
        return self.pool[order[:n]]

    def __repr__(self) -> str:
        return (
            f"FinetuneData(pool of {len(self.pool):,} rewritten training windows, "
            f"held out: {self.held_out!r})"
        )


def _windows(
    files: Any, tokenizer: BPETokenizer, window: int, *, quoted_only: bool = True
) -> tuple[torch.Tensor, list[str]]:
    """Non-overlapping ``[BOS] + window - 1`` token windows (that hold a double quote)."""
    quoted = {i for i, s in enumerate(tokenizer.token_strings()) if '"' in s}
    rows, names = [], []
    for f, ids in zip(files, tokenizer.encode_batch([f.text for f in files]), strict=True):
        for start in range(0, len(ids) - window + 2, window - 1):
            body = ids[start : start + window - 1]
            if len(body) == window - 1 and (not quoted_only or quoted.intersection(body)):
                rows.append([tokenizer.bos_id, *body])
                names.append(f.path)
    return torch.tensor(rows, dtype=torch.long).reshape(-1, window), names


def _corpus(setting: FinetuneSetting) -> tuple[StdlibCorpus, BPETokenizer]:
    lm = load_stdlib_lm(setting.base or SHIPPED_RUN)
    corpus = stdlib_corpus(
        setting.corpus_root or None,
        held_out_every=lm.setting.held_out_every,
        max_files=setting.max_files or None,
    )
    return corpus, lm.tokenizer


def _formation(corpus: StdlibCorpus, tok: BPETokenizer, setting: FinetuneSetting) -> QuoteProbe:
    # the formation probe reads FORMATION_FILES training files (tokenizing all 405 takes long)
    pick = torch.randperm(len(corpus.train), generator=torch.Generator().manual_seed(2))
    files = [corpus.train[i] for i in sorted(pick[:FORMATION_FILES].tolist())]
    return _probe(files, tok, setting.context, setting.probe_size, seed=2)


def quote_probes(setting: FinetuneSetting = FinetuneSetting()) -> tuple[QuoteProbe, QuoteProbe]:
    """The (formation, held-out) probes alone: quicker than ``finetune_data`` (no pool).

    Formation: ``FORMATION_FILES`` training files, unrewritten; held out: every held-out file.
    """
    corpus, tok = _corpus(setting)
    held = _probe(corpus.held_out, tok, setting.context, setting.probe_size, seed=1)
    return _formation(corpus, tok, setting), held


@functools.lru_cache(maxsize=2)
def _cached_data(s: FinetuneSetting) -> FinetuneData:
    corpus, tok = _corpus(s)
    rewritten = [dataclasses.replace(f, text=rewrite_quotes(f.text)) for f in corpus.train]
    pool, names = _windows(rewritten, tok, s.window)
    held = _windows(corpus.held_out, tok, s.window, quoted_only=False)[0]
    order = torch.randperm(len(held), generator=torch.Generator().manual_seed(3))
    return FinetuneData(
        tokenizer=tok,
        pool=pool,
        pool_files=tuple(names),
        held_out=_probe(corpus.held_out, tok, s.context, s.probe_size, seed=1),
        formation=_formation(corpus, tok, s),
        held_out_windows=held[order[: s.eval_windows]],
        corpus={**corpus.describe(), "root": corpus.root},
    )


def finetune_data(setting: FinetuneSetting = FinetuneSetting()) -> FinetuneData:
    """The data of ``setting`` (cached per process: sweep points share it)."""
    fields = ("base", "corpus_root", "max_files", "window", "context", "probe_size", "eval_windows")
    defaults = FinetuneSetting()
    # only what decides the data is in the key: every point of a sweep shares one
    return _cached_data(dataclasses.replace(defaults, **{f: getattr(setting, f) for f in fields}))


def finetune_recipe(settings: FinetuneSetting | dict[str, Any]) -> dict[str, Any]:
    """``explorer.training.train``'s arguments (all but ``run``) for one fine-tuning point.

    The model starts from the base run's weights (float32); the loss is the next-token
    loss on ``batch_size`` of the point's examples per step, drawn by a generator seeded
    by (seed, step). Logged: ``quote_preference`` (the held-out probe's mean logit
    difference) and ``held_out_loss`` (next-token loss on held-out windows, unrewritten).
    """
    s = settings if isinstance(settings, FinetuneSetting) else FinetuneSetting(**settings)
    data = finetune_data(s)
    base = Run.open(s.base or SHIPPED_RUN)
    model = base.load_model()
    model.name = f"stdlib-lm-quotes-{s.examples}"
    pool = data.examples(s.examples, s.seed)

    def loss_fn(m: ModelHandle, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
        return next_token_loss(m, pool[torch.randint(len(pool), (s.batch_size,), generator=g)])

    return dict(
        model=model,
        loss_fn=loss_fn,
        steps=s.steps,
        optimizer=OptimizerConfig(lr=s.lr, weight_decay=0.0, grad_clip=1.0),
        checkpoints=CheckpointSchedule(n_log=0, every=None),
        evals={
            "quote_preference": data.held_out.measure,
            "held_out_loss": lambda m: float(next_token_loss(m, data.held_out_windows)),
        },
        eval_every=min(max(s.eval_every, s.steps // 25), s.steps),
        # the base's setting and corpus record, so load_stdlib_lm opens a fine-tuned run too
        data={**base.data, "finetuning": s.to_dict(), "finetune_corpus": data.corpus},
    )


def finish_finetune(run: Run) -> None:
    """Save the base's tokenizer beside a fine-tuned run, so ``load_stdlib_lm`` opens it."""
    BPETokenizer.load(run.data["finetuning"]["base"] or SHIPPED_RUN).save(run.path)


def ship_finetuned(run: Run | str | os.PathLike[str], dest: str | os.PathLike[str]) -> Run:
    """Copy ``run``'s final weights (float16), metrics and tokenizer to ``dest`` (replaced)."""
    source = run if isinstance(run, Run) else Run.open(run)
    if not (source.path / "tokenizer.json").is_file():
        finish_finetune(source)
    return ship_run(source, dest)
