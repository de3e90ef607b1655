"""A small language model trained on Python's standard library: settings, data, run, shipping.

The recipe of ``tutorials/stdlib_lm.ipynb``:

1. ``stdlib_corpus()`` reads the standard library's source, split by file (held-out files
   are never trained on);
2. ``train_bpe`` learns a byte-level BPE on the training files only;
3. ``build_model`` makes a 2-layer transformer (attention + MLP, LayerNorm) whose vocab
   holds each token's text, so every view shows real tokens;
4. ``train_stdlib_lm`` trains it with explorer's own ``train`` loop (a resumable run of
   safetensors checkpoints and JSON-lines metrics), on windows of ``n_ctx`` tokens that
   start with ``<|bos|>`` and lie inside one file, drawn by a generator seeded by the step;
5. ``ship_run`` keeps the final checkpoint in float16, the metrics and the tokenizer:
   the run under ``explorer/studies/trained/stdlib-lm`` that ``load_stdlib_lm()`` opens at once.

Rebuild the shipped run with ``python -m explorer.studies.stdlib_lm --ship`` (one CPU
thread, minutes; docs/stdlib_lm.md has the measured figures). Training is deterministic on
one thread: the shipped manifest keeps the training loss of the first steps, which a test
reproduces without retraining the whole run. The setting and the token windows are in
``stdlib_lm_data`` (named here too).

>>> s = StdlibLMSetting(steps=10, n_layers=1)
>>> s.n_layers, s.tokens_per_step
(1, 2048)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from explorer._atomic import remove_tree
from explorer._deprecate import renamed_arguments
from explorer.analysis.induction import induction_progress
from explorer.data.bpe import BPETokenizer
from explorer.data.stdlib_text import StdlibCorpus, stdlib_corpus
from explorer.models import zoo
from explorer.models.config import TransformerConfig
from explorer.models.handle import ModelHandle
from explorer.studies.stdlib_lm_data import (
    DEFAULT_SETTING,
    StdlibLMData,
    StdlibLMSetting,
    TokenWindows,
    stdlib_lm_data,
)
from explorer.studies.stdlib_lm_experiments import repeated_text
from explorer.training.loop import OptimizerConfig, train
from explorer.training.run import Run
from explorer.training.schedule import CheckpointSchedule

__all__ = [
    "DEFAULT_SETTING",
    "SHIPPED_RUN",
    "StdlibLM",
    "StdlibLMData",
    "StdlibLMSetting",
    "TokenWindows",
    "build_model",
    "copy_spans",
    "load_stdlib_lm",
    "next_token_loss",
    "ship_run",
    "stdlib_lm_data",
    "train_stdlib_lm",
]

#: The trained run that ships with explorer (final checkpoint in float16, metrics, tokenizer).
SHIPPED_RUN = Path(__file__).resolve().parent / "trained" / "stdlib-lm"
#: Steps whose training loss the manifest keeps, so a rebuild can be checked cheaply.
EARLY_STEPS = 4


def build_model(setting: StdlibLMSetting, tokenizer: BPETokenizer) -> ModelHandle:
    """The untrained model: tokens' texts as its vocab, ``<|bos|>`` as BOS, seeded."""
    cfg = TransformerConfig(
        n_layers=setting.n_layers,
        d_model=setting.d_model,
        n_heads=setting.n_heads,
        d_mlp=setting.d_mlp,
        d_vocab=tokenizer.vocab_size,
        n_ctx=setting.n_ctx,
        act_fn="gelu",
        normalization="LN",
        vocab=tokenizer.token_strings(),
        bos_token=tokenizer.bos_id,
        seed=setting.seed,
        positional_embedding=setting.positional_embedding,
    )
    return zoo.transformer(cfg, name="stdlib-lm")


@renamed_arguments(tokens="inputs")
def next_token_loss(model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting ``inputs[:, 1:]`` (token ids) from the tokens before them."""
    inputs = model.check_inputs(inputs)
    if inputs.shape[-1] < 2:
        raise ValueError(f"next_token_loss needs sequences of >= 2 tokens, got {inputs.shape[-1]}")
    logits = model(inputs)[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs[:, 1:].reshape(-1))


def _batch(data: StdlibLMData, setting: StdlibLMSetting, step: int) -> torch.Tensor:
    # seeded by (seed, step): a resumed run and a rebuild see the same batches
    seed = setting.seed * 1_000_003 + step + 1
    tokens = data.windows("train", setting.batch_size, setting.n_ctx, seed=seed).tokens
    return copy_spans(tokens, setting.copy_fraction, setting.copy_span, seed=seed)


def copy_spans(
    tokens: torch.Tensor, fraction: float, span: tuple[int, int], *, seed: int
) -> torch.Tensor:
    """Repeat a span of each of the first ``fraction`` of the windows later in the window.

    A span of ``span[0]..span[1]`` tokens at a random place is copied over the tokens at a
    random later place, as when code repeats a line or a call. Code repeats itself anyway,
    but a few minutes of training see too few repeats for induction heads to form from
    them alone (docs/stdlib_lm.md has the measurement); varying the span and the distance
    makes a head match content, not a fixed offset.

    >>> t = torch.arange(40)[None].repeat(2, 1)
    >>> out = copy_spans(t, 0.5, (4, 8), seed=0)
    >>> bool((out[1] == t[1]).all()), int((out[0] != t[0]).sum()) >= 4
    (True, True)
    """
    out = tokens.clone()
    n_ctx = tokens.shape[1]
    gen = torch.Generator().manual_seed(int(seed) + 7_919)
    for row in range(round(fraction * len(tokens))):
        length = int(torch.randint(span[0], span[1] + 1, (1,), generator=gen))
        src = int(torch.randint(1, n_ctx - 2 * length + 1, (1,), generator=gen))
        dst = int(torch.randint(src + length, n_ctx - length + 1, (1,), generator=gen))
        out[row, dst : dst + length] = tokens[row, src : src + length]
    return out


def train_stdlib_lm(
    run: str | os.PathLike[str],
    setting: StdlibLMSetting = DEFAULT_SETTING,
    *,
    data: StdlibLMData | None = None,
    progress: bool = True,
) -> Run:
    """Train (or resume) the standard-library LM into the run folder ``run``.

    The tokenizer is saved as ``tokenizer.json`` in the run folder; the manifest records the
    corpus (Python version, content hash, split), the setting, the training loss of the
    first steps and the CPU time spent. Returns the run.
    """
    started = time.process_time()
    data = data or stdlib_lm_data(setting)
    model = build_model(setting, data.tokenizer)
    held = data.windows("held_out", setting.eval_windows, setting.n_ctx, seed=12345).tokens
    # [BOS][span][same span] of held-out text: the induction curve over training
    repeats = repeated_text(held[:16], min(40, (setting.n_ctx - 1) // 2))
    early: dict[str, float] = {}

    def loss_fn(m: ModelHandle, step: int) -> torch.Tensor:
        loss = next_token_loss(m, _batch(data, setting, step))
        if step < EARLY_STEPS:
            early[str(step)] = float(loss.detach())
        return loss

    path = Path(run)
    fresh = not (path / "manifest.json").is_file()
    result = train(
        model,
        loss_fn,
        steps=setting.steps,
        run=path,
        optimizer=OptimizerConfig(
            lr=setting.lr,
            weight_decay=setting.weight_decay,
            warmup_steps=setting.warmup_steps,
            grad_clip=setting.grad_clip,
        ),
        checkpoints=CheckpointSchedule(n_log=0, every=None),
        evals={
            "held_out_loss": lambda m: float(next_token_loss(m, held)),
            "repeated_text": lambda m: induction_progress(m, repeats).as_dict(),
        },
        eval_every=setting.eval_every,
        data={"corpus": data.describe(), "setting": setting.to_dict()},
        progress=progress,
    )
    data.tokenizer.save(result.path)
    meta = result.manifest.get("meta", {})
    if fresh or "early_train_loss" not in meta:
        meta["early_train_loss"] = early
    meta["cpu_seconds"] = round(meta.get("cpu_seconds", 0.0) + time.process_time() - started, 1)
    meta["threads"] = torch.get_num_threads()
    # a resumed run records the budget it was trained to (the rest of the setting is equal)
    result.update(meta=meta, data={**result.data, "setting": setting.to_dict()})
    return result


def ship_run(run: Run | str | os.PathLike[str], dest: str | os.PathLike[str] = SHIPPED_RUN) -> Run:
    """Copy ``run``'s final checkpoint (weights in float16), metrics and tokenizer (if it has
    one) to ``dest``.

    ``dest`` is replaced. No optimizer state and no earlier checkpoint is kept: the copy is
    for opening, not for resuming.
    """
    source = run if isinstance(run, Run) else Run.open(run)
    if not source.steps:
        raise ValueError(f"run {str(source.path)!r} has no checkpoint to ship")
    step = source.steps[-1]
    model = source.load_model(step)
    model.name = source.name
    out = Path(dest)
    remove_tree(out, out.parent)  # the destination is replaced
    manifest = source.manifest
    shipped = Run.create(out, model, data=manifest["data"], meta=manifest.get("meta", {}))
    for row in source.rows():
        shipped.log(row.pop("step"), {k: math.nan if v is None else v for k, v in row.items()})
    shipped.save_checkpoint(model, step, dtype=torch.float16)
    shipped.update(status=source.status, training=source.training)
    if (source.path / "tokenizer.json").is_file():  # a run without one (MNIST) ships without
        BPETokenizer.load(source.path).save(out)
    return shipped


@dataclass(frozen=True)
class StdlibLM:
    """An opened standard-library LM: the model, its tokenizer, its run and its setting."""

    model: ModelHandle
    tokenizer: BPETokenizer
    run: Run
    setting: StdlibLMSetting

    @property
    def corpus_record(self) -> dict[str, Any]:
        """What the run says about the corpus it was trained on (Python version, hash, ...)."""
        return dict(self.run.data["corpus"])

    @property
    def python_version(self) -> str:
        return str(self.corpus_record["python_version"])

    def encode(self, text: str) -> torch.Tensor:
        """``[BOS] + tokens of text`` as a ``[1, n]`` tensor (at most ``n_ctx`` tokens)."""
        ids = [self.tokenizer.bos_id, *self.tokenizer.encode(text)]
        if len(ids) > self.setting.n_ctx:
            raise ValueError(
                f"the text is {len(ids)} tokens with BOS; the model reads at most "
                f"{self.setting.n_ctx}: shorten it"
            )
        return torch.tensor([ids], dtype=torch.long)

    def data(self, corpus: StdlibCorpus | None = None) -> StdlibLMData:
        """This interpreter's corpus tokenized with the run's tokenizer.

        Raises if the corpus's content hash differs from the one trained on while the
        Python version is the same (the library files were changed).
        """
        corpus = corpus or stdlib_corpus(held_out_every=self.setting.held_out_every)
        record = self.corpus_record
        if (
            corpus.python_version == record["python_version"]
            and corpus.content_hash != record["content_hash"]
        ):
            raise ValueError(
                f"this Python {corpus.python_version}'s standard library differs from the one "
                f"the run was trained on (hash {corpus.content_hash[:12]} vs "
                f"{record['content_hash'][:12]}): rebuild with `python -m explorer.studies.stdlib_lm`"
            )
        return stdlib_lm_data(self.setting, corpus=corpus, tokenizer=self.tokenizer)

    def __repr__(self) -> str:
        return (
            f"StdlibLM({self.model.n_layers} layers, d_model {self.setting.d_model}, vocab "
            f"{self.tokenizer.vocab_size}, step {self.run.last_step}, trained on Python "
            f"{self.python_version})"
        )


def load_stdlib_lm(path: str | os.PathLike[str] = SHIPPED_RUN) -> StdlibLM:
    """Open a standard-library LM run (default: the shipped one) at its last checkpoint."""
    run = Run.open(path)
    data = run.data
    if "setting" not in data or "corpus" not in data:
        raise ValueError(f"{str(path)!r} is a run, but not one of train_stdlib_lm")
    tokenizer = BPETokenizer.load(run.path)
    if tokenizer.fingerprint() != data["corpus"]["tokenizer"]:
        raise ValueError(
            f"the tokenizer in {str(path)!r} is not the one the model was trained with"
        )
    model = run.load_model()
    model.name = "stdlib-lm"
    return StdlibLM(model, tokenizer, run, StdlibLMSetting(**data["setting"]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m explorer.studies.stdlib_lm",
        description="Train the standard-library LM (resumable) and optionally ship it.",
    )
    parser.add_argument("--run", default="runs/stdlib-lm-train", help="the training run folder")
    parser.add_argument("--steps", type=int, default=DEFAULT_SETTING.steps)
    parser.add_argument("--ship", action="store_true", help=f"copy the result to {SHIPPED_RUN}")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    setting = dataclasses.replace(DEFAULT_SETTING, steps=args.steps)
    run = train_stdlib_lm(args.run, setting)
    print(json.dumps({"run": str(run.path), **run.metrics().last(), **run.manifest["meta"]}))
    if args.ship:
        print(f"shipped to {ship_run(run).path}")


if __name__ == "__main__":
    main()
