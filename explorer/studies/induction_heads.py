"""The induction-heads tutorial's training run: its recipe, and the copy that ships.

``tutorials/induction_heads.ipynb`` studies a 2-layer attention-only transformer through
training (the phase change, a scrubber over checkpoints). Training it takes minutes on a
busy CPU, so a finished run ships under ``explorer/studies/trained/induction-heads``: every
logged metric (every 20 steps), and ``SHIPPED_CHECKPOINTS`` checkpoints (the first, the last
and those around the phase change) with their weights in float16, about 92 KB each.
``open_run(folder)`` copies it into ``folder`` unless a run is already there, and
``train_induction(folder)`` then finds it finished; ``train_induction(folder)`` on an empty
folder trains from scratch (``progress=True``: a tqdm bar with the time remaining).

The training loss, ``next_token_training_loss``, is next-token cross-entropy on fresh
``induction_training_batch`` sequences (a span repeated at a random offset), seeded by step.

Rebuild the shipped run with ``python -m explorer.studies.induction_heads --ship``; the
manifest keeps the training loss of the first ``EARLY_STEPS`` steps, which a test replays.

>>> SETTING["steps"], SETTING["lr"], SHIPPED_CHECKPOINTS
(1200, 0.003, 8)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from explorer._checks import check_positive
from explorer.analysis.curves import detect_phase_change
from explorer.analysis.induction import induction_progress
from explorer.data import repeated_tokens
from explorer.data.tokens import induction_training_batch
from explorer.models import zoo
from explorer.models.handle import ModelHandle
from explorer.studies._shipped_runs import open_shipped_run, retrain_and_ship, ship_checkpoints
from explorer.training import CheckpointSchedule, OptimizerConfig, train
from explorer.training.run import Run

#: The run that ships with explorer (metrics, float16 checkpoints through the phase change).
SHIPPED_RUN = Path(__file__).resolve().parent / "trained" / "induction-heads"
SETTING: dict[str, Any] = {
    "d_vocab": 64, "seq_len": 64, "d_model": 64, "n_heads": 4, "batch": 32, "lr": 3e-3,
    "min_span": 16, "steps": 1200, "seed": 0, "eval_every": 20, "eval_seed": 1000,
}  # fmt: skip
SHIPPED_CHECKPOINTS = 8
EARLY_STEPS = 20


def next_token_training_loss(
    d_vocab: int,
    seq_len: int,
    batch_size: int,
    *,
    seed: int = 0,
    min_span: int = 4,
) -> Callable[[ModelHandle, int], torch.Tensor]:
    """A loss for ``explorer.training.train``: next-token cross-entropy on a fresh batch of
    ``induction_training_batch`` sequences at every step.

    The batch of step ``s`` depends only on ``(seed, s)``, so a resumed run sees the same
    data. Longer ``min_span`` means more repeated tokens per sequence: a stronger signal
    for induction, and an earlier phase change.
    """
    check_positive("batch_size", batch_size)
    check_positive("min_span", min_span)
    if d_vocab < 3:
        raise ValueError(f"d_vocab must be at least 3 (BOS and two random tokens), got {d_vocab}")
    if seq_len < 2 * min_span + 1:
        raise ValueError(
            f"seq_len {seq_len} is too short to repeat spans of at least {min_span} tokens "
            f"after BOS: it must be at least {2 * min_span + 1}"
        )

    def loss(model: ModelHandle, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        tokens = induction_training_batch(
            batch_size, seq_len, d_vocab, generator=g, min_span=min_span
        )
        logits = model(tokens)[:, :-1]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].flatten()
        )

    return loss


def build_model(seed: int = SETTING["seed"], setting: Mapping[str, Any] = SETTING) -> ModelHandle:
    """The untrained model: 2 layers, attention only, d_model 64, 4 heads, no LayerNorm."""
    s = setting
    return zoo.attention_only_transformer(
        n_layers=2, d_model=s["d_model"], n_heads=s["n_heads"], d_vocab=s["d_vocab"],
        n_ctx=s["seq_len"], normalization=None, seed=seed,
    )  # fmt: skip


def eval_tokens(setting: Mapping[str, Any] = SETTING) -> torch.Tensor:
    """The fixed evaluation batch logged through training: 32 prompts ``[BOS][30][30]``
    (shorter halves when ``setting["seq_len"]`` is under 61)."""
    half = min(30, (setting["seq_len"] - 1) // 2)
    return repeated_tokens(32, half, setting["d_vocab"], seed=setting["eval_seed"])


def train_induction(run_dir: str | Path, *, steps: int | None = None, progress: bool = True) -> Run:
    """Train (or resume, or reopen when finished) the tutorial's run in ``run_dir``.

    AdamW (lr 3e-3), batch 32 of ``induction_training_batch`` sequences (a span of 16-31
    tokens repeated at a random offset), 1,200 steps; every 20 steps it logs the losses on
    both halves of ``eval_tokens()`` and the best head scores; checkpoints every 100 steps,
    at 8 log-spaced steps and wherever the best induction score moved by 0.05.
    """
    setting = dict(SETTING, steps=SETTING["steps"] if steps is None else steps)
    recipe = induction_recipe(setting)
    early: dict[str, float] = {}
    inner = recipe["loss_fn"]

    def loss(m: ModelHandle, step: int) -> torch.Tensor:
        value = inner(m, step)
        if step < EARLY_STEPS:
            early[str(step)] = float(value.detach())
        return value

    run = train(**dict(recipe, loss_fn=loss), run=Path(run_dir), progress=progress)
    if len(early) == min(EARLY_STEPS, setting["steps"] + 1):  # trained from step 0 in this call
        run.update(meta={**run.manifest.get("meta", {}), "early_train_loss": early})
    return run


def induction_recipe(setting: Mapping[str, Any] = SETTING) -> dict[str, Any]:
    """The arguments of ``explorer.training.train`` for ``setting`` (``SETTING``'s keys; all
    but ``run`` and ``progress``): ``train_induction`` trains with them, ``explorer.sweep``
    adds measures.

    >>> induction_recipe(SETTING)["steps"]
    1200
    """
    s = dict(setting)
    unknown = sorted(set(s) - set(SETTING))
    if unknown:
        raise ValueError(
            f"unknown induction settings {unknown}: the settings are {sorted(SETTING)}"
        )
    tokens = eval_tokens(s)
    return dict(
        model=build_model(s["seed"], s),
        loss_fn=next_token_training_loss(
            s["d_vocab"], s["seq_len"], s["batch"], seed=s["seed"], min_span=s["min_span"]
        ),
        steps=s["steps"], optimizer=OptimizerConfig(lr=s["lr"]),
        evals={"induction": lambda m: induction_progress(m, tokens).as_dict()},
        eval_every=s["eval_every"],
        checkpoints=CheckpointSchedule(
            n_log=8, every=100, on_change={"induction_max_induction_score": 0.05}
        ),
        data={"generator": "induction_training_batch", "seq_len": s["seq_len"],
              "batch": s["batch"], "min_span": s["min_span"], "seed": s["seed"]},
    )  # fmt: skip


def choose_checkpoints(run: Run, keep: int = SHIPPED_CHECKPOINTS) -> list[int]:
    """``keep`` checkpoint steps: the first and the last; those nearest 100 steps before the
    best induction score starts to rise, its start, steepest point and end
    (``detect_phase_change``); then the rest spread evenly over training."""
    steps = list(run.steps)
    if len(steps) <= keep:
        return steps
    curve = run.metrics().get("induction_max_induction_score")
    rise = detect_phase_change(curve.steps, curve.values, direction="rise")
    chosen = [steps[0], steps[-1]]
    targets = [rise.start - 100, rise.start, rise.step, rise.end]
    targets += [steps[-1] * k / (keep - 5) for k in range(1, keep - 5)]
    for target in targets:
        free = [s for s in steps if s not in chosen]
        if len(chosen) < keep and free:
            chosen.append(min(free, key=lambda s: abs(s - target)))
    return sorted(chosen)


def ship_run(run: Run | str | Path, dest: str | Path = SHIPPED_RUN) -> Run:
    """Copy ``run``'s metrics and ``choose_checkpoints`` (weights in float16, no optimizer
    state) to ``dest``, which is replaced; its manifest says the run is complete."""
    source = run if isinstance(run, Run) else Run.open(run)
    shipped = ship_checkpoints(source, dest, choose_checkpoints(source))
    return shipped


def open_run(run_dir: str | Path) -> Run:
    """The run in ``run_dir``; a copy of the shipped run when the folder holds none yet."""
    return open_shipped_run(SHIPPED_RUN, run_dir)


def main(argv: Sequence[str] | None = None) -> None:
    retrain_and_ship(
        "python -m explorer.studies.induction_heads", SHIPPED_RUN, train_induction, ship_run, argv
    )


if __name__ == "__main__":
    main()
