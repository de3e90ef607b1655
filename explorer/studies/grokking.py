"""Grokking modular addition (Power et al. 2022; Nanda et al. 2023): settings, run, measures.

``train_grokking(path, setting)`` trains the 1-layer transformer of
``zoo.modular_addition_transformer`` on ``a + b mod p`` with full-batch AdamW and weight
decay 1, checkpointing densely where test accuracy moves. ``grokking_progress(run)`` then
replays the checkpoints and measures what Nanda et al. use to see the generalising circuit
form before test accuracy moves:

- restricted loss: the loss of the logits kept to the key-frequency directions (all pairs);
- excluded loss: the loss with those directions removed (training pairs);
- Gini coefficient of the embedding's Fourier norms (sparsity);
- total weight norm.

Settings (measured on one CPU thread of a 2-core machine; see docs/training.md):

- ``CI_SETTING``: p=53, 50% training data, lr 5e-3, d_model 128: groks in a few hundred
  epochs (test accuracy rises during memorisation already: a fast check, not the shape).
- ``DEFAULT_SETTING``: p=113, 25% training data, lr 5e-3, d_model 64: memorized by epoch
  110, test accuracy under 20% until epoch 1900-2470 (17-22x later; seeds 0, 1, 2), then
  past 95% (the tutorial default; 157-198 s of CPU on one thread).
- ``PAPER_SETTING``: p=113, 30% training data, lr 1e-3, d_model 128 (the paper; ~10k+ epochs).

>>> setting = CI_SETTING.replace(p=11)
>>> data = grokking_data(setting)
>>> len(data.train_labels), len(data.test_labels)  # half of the 11 x 11 pairs
(60, 61)
>>> sparsity = embedding_sparsity(zoo.modular_addition_transformer(p=11, d_model=16))
>>> 0 <= sparsity["gini"] <= 1
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from explorer._display import MAX_ROWS, Shown, pandas
from explorer._inside import inside
from explorer.analysis.curves import first_crossing
from explorer.analysis.fourier import (
    KeyFrequencies,
    excluded_loss,
    fourier_spectrum,
    key_frequencies,
    restricted_loss,
)
from explorer.analysis.progress import gini, weight_norm
from explorer.data.modular import ModularData, modular_arithmetic
from explorer.models import zoo
from explorer.models.handle import ModelHandle
from explorer.studies.grokking_fourier import _moved_accuracy_names, all_pair_logits, modulus
from explorer.studies.grokking_phases import Phases, _StopAfterCleanup, detect_phases
from explorer.studies.grokking_table import PROGRESS_FILE, read_progress_table
from explorer.training.loop import OptimizerConfig, train
from explorer.training.losses import (
    classification_eval,
    classification_loss,
    last_position_logits,
)
from explorer.training.run import Run
from explorer.training.schedule import CheckpointSchedule

__all__ = [
    "CI_SETTING",
    "DEFAULT_SETTING",
    "PAPER_SETTING",
    "GrokkingProgress",
    "GrokkingSetting",
    "all_pair_logits",
    "grokking_data",
    "grokking_progress",
    "grokking_recipe",
    "grokking_summary",
    "progress_of_checkpoints",
    "train_grokking",
]

#: ``logits_fn(model, inputs) -> [batch, p]``: how the loss and the test evaluation get logits
LogitsFn = Callable[[ModelHandle, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class GrokkingSetting:
    """Everything that decides a grokking run (the model is 1 layer, 4 heads, ReLU MLP).

    ``steps`` is the epoch budget (full batch: one step is one epoch).

    Two seeds, so that the two sources of run-to-run variation can be varied apart:
    ``seed`` seeds the model's initial weights (``zoo.modular_addition_transformer``);
    ``data_seed`` seeds which ``(a, b)`` pairs form the training split
    (``modular_arithmetic``; the run records it as ``data["seed"]``). Training is full
    batch, so nothing else is random: the same two seeds give the same run.

    Training runs on through cleanup: once test accuracy has reached 99%, it stops as soon
    as at most ``stop_key_frequencies`` frequencies carry 80% of the embedding's squared
    Fourier norm, or when that count has not fallen for ``plateau_epochs`` epochs (the
    sparsity has plateaued). ``stop_key_frequencies=None`` trains the whole budget.
    """

    p: int = 113
    train_frac: float = 0.25
    lr: float = 5e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    steps: int = 6000
    seed: int = 0
    data_seed: int = 0
    d_model: int = 64
    eval_every: int = 10
    stop_key_frequencies: int | None = 8
    plateau_epochs: int = 500

    def replace(self, **changes: object) -> GrokkingSetting:
        """A copy with some fields changed: ``DEFAULT_SETTING.replace(weight_decay=0.1)``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


CI_SETTING = GrokkingSetting(p=53, train_frac=0.5, lr=5e-3, steps=1500, d_model=128)
DEFAULT_SETTING = GrokkingSetting()
PAPER_SETTING = GrokkingSetting(
    p=113, train_frac=0.3, lr=1e-3, steps=40_000, d_model=128, eval_every=50
)


def grokking_data(source: GrokkingSetting | Run) -> ModularData:
    """The seeded train/test split of a setting, or of a run trained by ``train_grokking``."""
    if isinstance(source, Run):
        d = source.data
        if d.get("dataset") != "modular_arithmetic":
            raise ValueError(f"run {source.name} was not trained on modular arithmetic: {d}")
        return modular_arithmetic(d["p"], op=d["op"], train_frac=d["train_frac"], seed=d["seed"])
    return modular_arithmetic(source.p, train_frac=source.train_frac, seed=source.data_seed)


def embedding_sparsity(model: ModelHandle, *, mass: float = 0.8) -> dict[str, float]:
    """How concentrated the number embeddings are on a few frequencies (logged while training).

    ``key_frequencies``: how many frequencies carry ``mass`` of the squared Fourier norm of
    ``W_E[:p]``; ``gini``: the Gini coefficient of its norms over all ``p`` basis vectors.
    """
    p = modulus(model)
    spectrum = fourier_spectrum(model.weight("embed")[:p])
    return {
        "key_frequencies": float(len(key_frequencies(spectrum, mass=mass))),
        "gini": gini(spectrum.basis_norms),
    }


def train_grokking(
    path: str | os.PathLike[str] | None = None,
    setting: GrokkingSetting = DEFAULT_SETTING,
    *,
    progress: bool = True,
) -> Run:
    """Train (or resume, or just reopen) the grokking run of ``setting`` in ``path``.

    Checkpoints: 15 log-spaced steps, one about every ``steps // 40`` (a multiple of
    ``eval_every``), and one wherever train or test accuracy has moved by more than 5 points
    since the last checkpoint.
    """
    return train(**grokking_recipe(setting), run=path, progress=progress)


def grokking_recipe(
    setting: GrokkingSetting = DEFAULT_SETTING,
    *,
    train_logits: LogitsFn = last_position_logits,
    test_logits: LogitsFn = last_position_logits,
) -> dict[str, Any]:
    """The arguments of ``explorer.training.train`` for ``setting`` (all but ``run`` and
    ``progress``): ``train_grokking`` trains with them, ``explorer.sweep`` adds measures.
    ``train_logits`` / ``test_logits`` compute the logits of the training step and of the
    test evaluation (a sweep passes functions that also keep them: ``LiveGrokkingProgress``).

    >>> sorted(grokking_recipe(CI_SETTING.replace(p=7)))[:4]
    ['checkpoints', 'data', 'eval_every', 'evals']
    """
    data = grokking_data(setting)
    model = zoo.modular_addition_transformer(setting.p, seed=setting.seed, d_model=setting.d_model)
    stop = (
        _StopAfterCleanup(setting.stop_key_frequencies, setting.plateau_epochs)
        if setting.stop_key_frequencies is not None
        else None
    )
    return dict(
        model=model,
        loss_fn=classification_loss(data.train_tokens, data.train_labels, train_logits),
        steps=setting.steps,
        optimizer=OptimizerConfig(
            "adamw", lr=setting.lr, weight_decay=setting.weight_decay, betas=setting.betas
        ),
        checkpoints=CheckpointSchedule(
            n_log=15,
            every=setting.eval_every * max(1, setting.steps // (40 * setting.eval_every)),
            on_change={"test_acc": 0.05, "train_acc": 0.05},
        ),
        evals={
            "test": classification_eval(data.test_tokens, data.test_labels, test_logits),
            "embedding": embedding_sparsity,
        },
        eval_every=setting.eval_every,
        stop_when=stop,
        data={
            "dataset": "modular_arithmetic",
            "p": setting.p,
            "op": "+",
            "train_frac": setting.train_frac,
            "seed": setting.data_seed,
        },
    )


@dataclass(frozen=True, repr=False)
class GrokkingProgress(Shown):
    """Progress measures at every checkpoint of a grokking run (index ``i`` is ``steps[i]``).

    ``key`` holds the key frequencies of the final embedding, used at every checkpoint.
    ``phases`` comes from ``detect_phases``: the run's logged train accuracy, test accuracy
    and test loss (every logged epoch) with the restricted and excluded losses of these
    checkpoints, so its boundaries are logged epochs. ``precomputed`` is None when the
    measures were replayed from this run's checkpoints, else where the table came from (a
    shipped run keeps a few checkpoints and the table of all of them).
    """

    steps: torch.Tensor
    key: KeyFrequencies
    train_loss: torch.Tensor
    test_loss: torch.Tensor
    train_acc: torch.Tensor
    test_acc: torch.Tensor
    restricted_loss: torch.Tensor
    excluded_loss: torch.Tensor
    gini: torch.Tensor
    weight_norm: torch.Tensor
    phases: Phases
    precomputed: str | None = None

    def at(self, step: int) -> dict[str, float]:
        """Every measure at the checkpoint nearest ``step``."""
        i = int(torch.argmin((self.steps - int(step)).abs()))
        values = {n: float(getattr(self, n)[i]) for n in self._MEASURES}
        return {"step": int(self.steps[i]), **values}

    _MEASURES = ("train_loss", "test_loss", "train_acc", "test_acc", "restricted_loss",
                 "excluded_loss", "gini", "weight_norm")  # fmt: skip

    def to_dataframe(self) -> Any:
        """One row per checkpoint: its ``step`` and a column per measure."""
        columns = {n: getattr(self, n).double().numpy() for n in self._MEASURES}
        return pandas().DataFrame({"step": self.steps.tolist(), **columns})

    def _summary(self) -> str:
        return (
            f"{len(self.steps)} checkpoints to step {int(self.steps[-1])}; key frequencies "
            f"{list(self.key.frequencies)}; test accuracy {float(self.test_acc[-1]):.3g}"
        ) + (f" ({self.precomputed})" if self.precomputed else "")

    def _top(self) -> list[str]:
        return [f"{p.name} {p.start}..{p.end}" for p in self.phases.as_list()]

    def _table(self) -> tuple:
        n = len(self.steps)  # at most MAX_ROWS checkpoints, evenly spaced, the last included
        shown = (
            sorted({round(i * (n - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})
            if n > MAX_ROWS
            else range(n)
        )
        rows = [
            (int(self.steps[i]), float(self.train_acc[i]), float(self.test_acc[i]),
             float(self.restricted_loss[i]), float(self.excluded_loss[i]), float(self.gini[i]))
            for i in shown
        ]  # fmt: skip
        header = ("step", "train acc", "test acc", "restricted loss", "excluded loss", "gini")
        return "Grokking progress", header, rows, self._summary()


def grokking_progress(
    run: Run, *, key: KeyFrequencies | None = None, mass: float = 0.8, replay: bool = False
) -> GrokkingProgress:
    """Replay every checkpoint of ``run`` and compute the progress measures.

    A shipped run (``explorer.studies.grokking_shipped``) keeps a few checkpoints and the
    table of these measures over every checkpoint of the full run: it is read instead
    (``precomputed`` says so) unless ``replay=True`` or another ``key`` / ``mass`` is asked.

    Args:
        run: a run made by ``train_grokking``.
        key: key frequencies to restrict to / exclude (default: the smallest set carrying
            ``mass`` of the final embedding's squared Fourier norm).
        replay: measure the checkpoints this run holds even when it has a precomputed table.
    """
    table = inside(run.path, PROGRESS_FILE, what="progress table", owner=f"run {run.name}")
    if not replay and key is None and mass == 0.8 and table.is_file():
        return _progress(run, *read_progress_table(table))
    data = grokking_data(run)
    model = run.load_model()
    if key is None:
        key = key_frequencies(fourier_spectrum(model.weight("embed")[: data.p]), mass=mass)

    def at(step: int) -> tuple[torch.Tensor, float, float]:
        run.load_into(model, step)
        embedding = gini(fourier_spectrum(model.weight("embed")[: data.p]).basis_norms)
        return all_pair_logits(model, data), embedding, weight_norm(model)

    return progress_of_checkpoints(run, data, key, at)


def progress_of_checkpoints(
    run: Run,
    data: ModularData,
    key: KeyFrequencies,
    state_at: Callable[[int], tuple[torch.Tensor, float, float]],
) -> GrokkingProgress:
    """``grokking_progress`` of every checkpoint of ``run``, from ``state_at(step)``: the logits of
    every pair ``[p * p, p]`` there, the embedding's Gini coefficient and the weight norm
    (``LiveGrokkingProgress`` answers from logits kept while training)."""
    rows: dict[str, list[float]] = {n: [] for n in GrokkingProgress._MEASURES}
    ce = torch.nn.functional.cross_entropy
    for step in run.steps:
        logits, embedding, norm = state_at(step)
        train_logits, test_logits = logits[data.train_idx], logits[data.test_idx]
        rows["train_loss"].append(float(ce(train_logits, data.train_labels)))
        rows["test_loss"].append(float(ce(test_logits, data.test_labels)))
        rows["train_acc"].append(
            float((train_logits.argmax(-1) == data.train_labels).float().mean())
        )
        rows["test_acc"].append(float((test_logits.argmax(-1) == data.test_labels).float().mean()))
        rows["restricted_loss"].append(restricted_loss(logits, data.labels, key.frequencies))
        rows["excluded_loss"].append(
            excluded_loss(logits, data.labels, key.frequencies, data.train_idx)
        )
        rows["gini"].append(embedding)
        rows["weight_norm"].append(norm)
    return _progress(run, list(run.steps), key, rows, None)


def _progress(
    run: Run, steps: list[int], key: KeyFrequencies, rows: Mapping, note: str | None
) -> Any:
    tensors = {k: torch.tensor(v) for k, v in rows.items()}
    steps = torch.tensor(steps)
    logged, train_acc, test_acc, test_loss = _logged_curves(run)
    phases = detect_phases(
        logged, train_acc, test_loss, tensors["restricted_loss"], tensors["excluded_loss"],
        test_acc=test_acc, measured_at=steps,
    )  # fmt: skip
    return GrokkingProgress(steps=steps, key=key, phases=phases, precomputed=note, **tensors)


def _logged_curves(run: Run) -> tuple[torch.Tensor, ...]:
    """The logged epochs where train accuracy, test accuracy and test loss were all logged,
    and those three curves there (the phases sit at logged epochs, not only at checkpoints)."""
    m = run.metrics()
    curves = [m.get(n) for n in ("train_acc", "test_acc", "test_loss")]
    common = set(curves[0].steps.tolist())
    for c in curves[1:]:
        common &= set(c.steps.tolist())
    steps = torch.tensor(sorted(common))
    return (steps, *(c.values[torch.isin(c.steps, steps)] for c in curves))


def grokking_summary(run: Run) -> dict[str, float | int | None]:
    """Crossing steps from the logged curves: when train accuracy reached 99%, test 95%/99%."""
    m = run.metrics()
    train_acc, test_acc = m.get("train_acc"), m.get("test_acc")
    train99 = first_crossing(train_acc.steps, train_acc.values, 0.99)
    test95 = first_crossing(test_acc.steps, test_acc.values, 0.95)
    test99 = first_crossing(test_acc.steps, test_acc.values, 0.99)
    return {
        "train_99": train99,
        "test_95": test95,
        "test_99": test99,
        "delay": (test95 / train99) if test95 and train99 else None,
        "final_test_acc": float(test_acc.values[-1]),
        "last_step": run.last_step,
    }


# accuracy_without_frequencies and restricted_accuracy moved to analysis.fourier_accuracy
__getattr__ = _moved_accuracy_names("explorer.studies.grokking")
