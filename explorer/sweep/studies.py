"""What a sweep needs from a study: its settings, how to train a point, and its outcomes.

A ``SweepStudy`` names a study's setting fields and defaults, and three functions:
``recipe(settings)`` returns the arguments of ``explorer.training.train`` (as
``grokking_recipe`` does), ``batches(settings)`` the per-batch losses of ``grad_noise``, and
``outcomes(run)`` the numbers that summarise a finished run (one cell of a phase diagram).
``finish(run)`` runs once after training (study measures replayed over the checkpoints).
``curves(run)`` gives the measures ``finish`` computed, per checkpoint, as
``(step, measure, value)`` rows that ``Sweep.to_dataframe()`` adds to the logged ones.
``llc_data(settings)`` gives the examples the local learning coefficient samples with
(``(inputs, labels)``; labels None: next-token loss), when a sweep asks for it.
``live(settings)``, when given, is what a sweep trains with instead of ``recipe`` and
``finish``: an object with ``recipe`` (the same training, instrumented to keep what
``finish`` would otherwise replay from each checkpoint on disk), ``watch(run)`` (the run it
trains) and ``finish(run)`` (grokking's: ``LiveGrokkingProgress``).

Two studies are built in (``STUDIES``):

- ``"grokking"``: ``GrokkingSetting`` fields (``p``, ``train_frac``, ``lr``, ``weight_decay``,
  ``steps``, ``seed``, ``data_seed``, ``d_model``, ...), base ``CI_SETTING``. Logged while
  training: ``test_loss``/``test_acc`` and the embedding's Fourier sparsity
  (``embedding_key_frequencies``, ``embedding_gini``: one FFT of ``W_E``). After training,
  ``finish`` computes the restricted and excluded losses at every checkpoint from the
  logits of every pair that training computed at that step (``live``: no checkpoint read,
  no forward pass; ``finish`` alone replays each checkpoint from disk) into the run's
  ``progress.json``, which
  ``grokking_progress(run)`` reads back and the sweep's long table shows (``curves``:
  ``restricted_loss``, ``excluded_loss`` at every checkpoint). Outcomes: ``grokking_summary``'s crossings
  (``train_99``, ``test_95``, ``test_99``, ``delay``, ``final_test_acc``, ``last_step``) and
  the start of each phase of ``detect_phases`` (``memorized``, ``circuit_start``,
  ``cleanup_start``, ``cleanup_end``).
- ``"induction"``: the keys of ``induction_heads.SETTING``. Logged while training (the
  recipe's own): losses on both halves of ``[BOS][L][L]``, the in-context learning score
  and the best induction and previous-token scores (one cached forward pass of 32 prompts).
  Outcomes: final scores and the step of the induction score's rise (``phase_change``).
- ``"finetuning"``: ``FinetuneSetting`` fields (``examples``, ``seed``, ``lr``, ...): the
  shipped standard-library LM fine-tuned on ``examples`` windows of code rewritten to double
  quotes (``explorer.studies.finetuning``). Logged: ``quote_preference`` (held-out logit
  difference, double minus single) and ``held_out_loss``. Outcomes: both at the first
  logged row and at the end, the change in each, and ``steps``.

>>> sorted(STUDIES)
['finetuning', 'grokking', 'induction']
>>> STUDIES["grokking"].fields[:3]
('p', 'train_frac', 'lr')
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from explorer._atomic import write_atomic
from explorer.analysis.induction import detect_phase_change
from explorer.data.tokens import induction_training_batch
from explorer.models.handle import ModelHandle
from explorer.studies import induction_heads
from explorer.studies.finetuning import FinetuneSetting, finetune_recipe, finish_finetune
from explorer.studies.grokking import (
    CI_SETTING,
    GrokkingSetting,
    grokking_data,
    grokking_progress,
    grokking_recipe,
    grokking_summary,
)
from explorer.studies.grokking_live import LiveGrokkingProgress
from explorer.studies.grokking_table import PROGRESS_FILE, progress_table, read_progress_table
from explorer.sweep.measures import BatchLosses
from explorer.training.losses import last_position_logits
from explorer.training.run import Run

__all__ = ["STUDIES", "SweepStudy", "study_of"]

Outcome = float | int | None


@dataclass(frozen=True)
class SweepStudy:
    """A study a sweep can run: settings in, a run and its outcomes out."""

    name: str
    defaults: Mapping[str, Any]
    recipe: Callable[[Mapping[str, Any]], dict[str, Any]]
    outcomes: Callable[[Run], dict[str, Outcome]]
    batches: Callable[[Mapping[str, Any], int], BatchLosses] | None = None
    finish: Callable[[Run], None] | None = None
    llc_data: Callable[[Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor | None]] | None = None
    curves: Callable[[Run], list[tuple[int, str, float]]] | None = None
    live: Callable[[Mapping[str, Any]], Any] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.defaults)

    def settings(self, changes: Mapping[str, Any], base: Mapping[str, Any] | None) -> dict:
        """The full settings of a point: ``defaults``, then ``base``, then ``changes``."""
        full = dict(self.defaults)
        for where, given in (("base", base or {}), ("point", changes)):
            unknown = sorted(set(given) - set(full))
            if unknown:
                raise ValueError(
                    f"unknown {self.name} settings in the {where}: {unknown}; the settings are "
                    f"{', '.join(self.fields)}"
                )
            full.update(given)
        return full

    def __repr__(self) -> str:
        return f"SweepStudy({self.name!r}, {len(self.fields)} settings)"


# ------------------------------------------------------------------------ grokking
def _grokking_setting(settings: Mapping[str, Any]) -> GrokkingSetting:
    s = dict(settings)
    s["betas"] = tuple(s["betas"])
    return GrokkingSetting(**s)


def _grokking_batches(settings: Mapping[str, Any], n_batches: int) -> BatchLosses:
    data = grokking_data(_grokking_setting(settings))
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(0))
    chunks = [c for c in order.chunk(n_batches) if len(c)]
    ce = torch.nn.functional.cross_entropy

    def losses(step: int) -> list[Callable[[ModelHandle], torch.Tensor]]:
        def of(idx: torch.Tensor) -> Callable[[ModelHandle], torch.Tensor]:
            return lambda m: ce(
                last_position_logits(m, data.train_tokens[idx]), data.train_labels[idx]
            )

        return [of(c) for c in chunks]  # full batch: the same split at every step

    return losses


def _grokking_finish(run: Run) -> None:
    progress = grokking_progress(run, replay=True)
    table = progress_table(progress, run.name)
    write_atomic(run.path / PROGRESS_FILE, json.dumps(table).encode())


def _grokking_curves(run: Run) -> list[tuple[int, str, float]]:
    if not (run.path / PROGRESS_FILE).is_file():
        return []  # finished before finish() wrote it (a diverged run)
    steps, _, measures, _ = read_progress_table(run.path / PROGRESS_FILE)
    return [
        (step, name, measures[name][i])
        for name in ("restricted_loss", "excluded_loss")
        for i, step in enumerate(steps)
    ]


def _grokking_llc_data(settings: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    data = grokking_data(_grokking_setting(settings))
    return data.train_tokens, data.train_labels  # the loss the run was trained on


def _grokking_outcomes(run: Run) -> dict[str, Outcome]:
    out: dict[str, Outcome] = dict(grokking_summary(run))
    phases = grokking_progress(run).phases
    for name in ("memorized", "circuit_start", "cleanup_start", "cleanup_end"):
        value = getattr(phases, name)
        out[name] = int(value) if value is not None else None
    return out


GROKKING = SweepStudy(
    name="grokking",
    defaults={
        f.name: list(v) if isinstance(v := getattr(CI_SETTING, f.name), tuple) else v
        for f in dataclasses.fields(CI_SETTING)
    },
    recipe=lambda s: grokking_recipe(_grokking_setting(s)),
    outcomes=_grokking_outcomes,
    batches=_grokking_batches,
    finish=_grokking_finish,
    llc_data=_grokking_llc_data,
    curves=_grokking_curves,
    live=lambda s: LiveGrokkingProgress(_grokking_setting(s)),
)


# ----------------------------------------------------------------------- induction
def _induction_batches(settings: Mapping[str, Any], n_batches: int) -> BatchLosses:
    s = dict(settings)
    size = max(1, s["batch"] // n_batches)
    ce = torch.nn.functional.cross_entropy

    def losses(step: int) -> list[Callable[[ModelHandle], torch.Tensor]]:
        def of(i: int) -> Callable[[ModelHandle], torch.Tensor]:
            # batches the training never sees: their own seeds, fixed by (seed, step, i)
            g = torch.Generator().manual_seed(-(s["seed"] * 1_000_003 + step) * 16 - i - 1)
            tokens = induction_training_batch(
                size, s["seq_len"], s["d_vocab"], generator=g, min_span=s["min_span"]
            )

            def loss(m: ModelHandle) -> torch.Tensor:
                logits = m(tokens)[:, :-1]
                return ce(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].flatten())

            return loss

        return [of(i) for i in range(n_batches)]

    return losses


def _induction_llc_data(settings: Mapping[str, Any]) -> tuple[torch.Tensor, None]:
    s = dict(settings)
    # 64 sequences the training never sees (their own seed), the same at every checkpoint
    g = torch.Generator().manual_seed(-(s["seed"] + 1) * 7919)
    tokens = induction_training_batch(
        64, s["seq_len"], s["d_vocab"], generator=g, min_span=s["min_span"]
    )
    return tokens, None


def _induction_outcomes(run: Run) -> dict[str, Outcome]:
    m = run.metrics()
    last = m.last()
    out: dict[str, Outcome] = {
        "final_max_induction_score": last.get("induction_max_induction_score"),
        "final_max_previous_token_score": last.get("induction_max_previous_token_score"),
        "final_in_context_learning_score": last.get("induction_in_context_learning_score"),
        "final_train_loss": last.get("train_loss"),
        "last_step": run.last_step,
    }
    curve = m.get("induction_max_induction_score")
    try:
        out["phase_change"] = detect_phase_change(curve.steps, curve.values, direction="rise").step
    except ValueError:  # too few points, or no rise at all
        out["phase_change"] = None
    return out


INDUCTION = SweepStudy(
    name="induction",
    defaults=dict(induction_heads.SETTING),
    recipe=induction_heads.induction_recipe,
    outcomes=_induction_outcomes,
    batches=_induction_batches,
    llc_data=_induction_llc_data,
)


# ---------------------------------------------------------------------- finetuning
def _finetuning_outcomes(run: Run) -> dict[str, Outcome]:
    m = run.metrics()
    out: dict[str, Outcome] = {"steps": run.last_step}
    for name in ("quote_preference", "held_out_loss"):
        values = [float(v) for v in m.get(name).values]
        out[f"first_{name}"], out[f"final_{name}"] = values[0], values[-1]
        out[f"{name}_change"] = values[-1] - values[0]
    return out


FINETUNING = SweepStudy(
    name="finetuning",
    defaults=FinetuneSetting().to_dict(),
    recipe=finetune_recipe,
    outcomes=_finetuning_outcomes,
    finish=finish_finetune,
)

STUDIES: dict[str, SweepStudy] = {s.name: s for s in (GROKKING, INDUCTION, FINETUNING)}


def study_of(study: str | SweepStudy) -> SweepStudy:
    """The built-in study of that name, or ``study`` itself."""
    if isinstance(study, SweepStudy):
        return study
    if study not in STUDIES:
        raise ValueError(
            f"unknown study {study!r}: choose one of {', '.join(STUDIES)}, or pass a SweepStudy"
        )
    return STUDIES[study]
