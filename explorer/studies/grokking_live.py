"""Grokking's progress measures from the logits training computes anyway (what a sweep uses).

``grokking_progress(run, replay=True)`` measures every checkpoint after training: it reads
each from disk and runs all ``p * p`` pairs through it. But at every logged step of
training, the training step has just computed the logits of the training pairs and the
test evaluation those of the test pairs, both with the weights the checkpoint of that step
holds: together, the logits of every pair. ``LiveGrokkingProgress`` builds the grokking
recipe with logit functions that keep them (a reference, no copy, no extra pass: training
is unchanged) and, at each logged step, keeps those of the steps that became checkpoints.
``finish(run)`` then computes the progress table from them: no checkpoint is read and no
forward pass is run for them; the embedding's Gini coefficient and the weight norm are the
values logged at that step (the same functions of the same weights).

A checkpoint of an earlier session (a resumed run), one taken at an interruption, or one
past ``budget`` bytes of kept logits is read from disk, and its logits are computed the
same way (the same loss and test evaluation, on the training and test pairs apart), so a
resumed run's table is bit for bit the uninterrupted one's. ``reads`` counts those.

>>> import tempfile
>>> from explorer.studies.grokking import CI_SETTING
>>> from explorer.training.loop import train
>>> live = LiveGrokkingProgress(CI_SETTING.replace(p=7, steps=20, d_model=16))
>>> run = train(**live.recipe, run=live.watch(tempfile.mkdtemp() + "/r"), progress=False)
>>> progress = live.finish(run)
>>> len(progress.steps) == len(run.steps), live.reads
(True, 0)
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from explorer._atomic import write_atomic
from explorer.analysis.fourier import fourier_spectrum, key_frequencies
from explorer.analysis.progress import weight_norm
from explorer.models.handle import ModelHandle
from explorer.studies.grokking import (
    GrokkingProgress,
    GrokkingSetting,
    embedding_sparsity,
    grokking_data,
    grokking_recipe,
    progress_of_checkpoints,
)
from explorer.studies.grokking_table import PROGRESS_FILE, progress_table
from explorer.training.losses import last_position_logits
from explorer.training.run import Run

__all__ = ["LiveGrokkingProgress"]

#: logits kept per run at most (float32 ``p^3`` per checkpoint: 48 KB at p = 23, 5.8 MB at 113)
BUDGET = 256 * 2**20


class LiveGrokkingProgress:
    """The grokking recipe of ``setting`` (``recipe``, for ``train``) that keeps the logits
    of every pair at each checkpoint step, and ``finish``, the progress table from them.

    Call ``watch(run)`` with the run ``train`` writes before training (it tells which
    logged steps became checkpoints, so that only those are kept).
    """

    def __init__(self, setting: GrokkingSetting, *, budget: int = BUDGET) -> None:
        self.data = grokking_data(setting)
        self.recipe = grokking_recipe(
            setting, train_logits=self._train_logits, test_logits=self._test_logits
        )
        self._loss, self._test = self.recipe["loss_fn"], self.recipe["evals"]["test"]
        self.recipe["loss_fn"] = self._loss_at
        # after "test" (dicts keep their order): the step's test logits are in by then
        self.recipe["evals"] = {**self.recipe["evals"], "checkpoint_logits": self._keep}
        self.budget, self.reads = budget, 0
        self.run: Run | None = None
        self._step, self._train, self._tests = -1, None, []
        self.kept: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}

    def watch(self, run: Run | str | os.PathLike[str]) -> Run:
        """The run ``train`` will write (a folder is opened or created); returns it."""
        if not isinstance(run, Run):
            model, data = self.recipe["model"], self.recipe.get("data")
            found = os.path.isfile(os.path.join(run, "manifest.json"))
            run = Run.open(run) if found else Run.create(run, model, data=data)
        self.run = run
        return run

    # ----------------------------------------------------------- while training
    def _loss_at(self, model: ModelHandle, step: int) -> Any:
        self._step = step
        return self._loss(model, step)

    def _train_logits(self, model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
        out = last_position_logits(model, inputs)
        self._train, self._tests = out.detach(), []
        return out

    def _test_logits(self, model: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
        out = last_position_logits(model, inputs)
        self._tests.append(out.detach())
        return out

    def _keep(self, model: ModelHandle) -> dict[str, float]:
        """An evaluation that logs nothing: keeps this logged step's logits (a checkpoint
        step is always logged) and drops those of earlier steps that got no checkpoint."""
        saved = set(self.run.steps) if self.run is not None else set()
        for step in [s for s in self.kept if s < self._step and s not in saved]:
            del self.kept[step]
        p = self.data.p
        if (len(self.kept) + 1) * p**3 * 4 <= self.budget and self._train is not None:
            self.kept[self._step] = (self._train, self._tests)
        return {}

    # ----------------------------------------------------------- after training
    def finish(self, run: Run) -> GrokkingProgress:
        """The progress table of every checkpoint of ``run``, written to its
        ``progress.json`` (``grokking_progress(run)`` reads it back), and returned."""
        data, p = self.data, self.data.p
        kept = {s: v for s, v in self.kept.items() if s in set(run.steps)}
        # training ends at its last checkpoint: if this session logged it, the recipe's
        # model holds its weights still; otherwise (trained earlier) it is read
        model = self.recipe["model"] if run.steps[-1] in kept else run.load_model()
        key = key_frequencies(fourier_spectrum(model.weight("embed")[:p]), mass=0.8)
        logged = _logged_at(run, kept)
        reader: list[ModelHandle] = []  # the model checkpoints not kept are read into

        def at(step: int) -> tuple[torch.Tensor, float, float]:
            if step in kept:
                gini, norm = logged[step]
                return self._all_pairs(*kept[step]), gini, norm
            self.reads += 1
            if not reader:  # never the recipe's model: its final weights stay as they are
                reader.append(model if model is not self.recipe["model"] else run.load_model())
            run.load_into(reader[0], step)
            with torch.no_grad():
                reader[0].train()  # as the training step computes its logits
                self._loss(reader[0], step)
                reader[0].eval()  # as train() evaluates
                self._test(reader[0])
            gini = embedding_sparsity(reader[0])["gini"]
            return self._all_pairs(self._train, self._tests), gini, weight_norm(reader[0])

        progress = progress_of_checkpoints(run, data, key, at)
        table = progress_table(progress, run.name)
        write_atomic(run.path / PROGRESS_FILE, json.dumps(table).encode())
        return progress

    def _all_pairs(self, train: torch.Tensor, tests: list[torch.Tensor]) -> torch.Tensor:
        """The logits of every pair, row ``a * p + b``, from the training and test pairs'."""
        d = self.data
        out = torch.empty(d.p * d.p, train.shape[-1], dtype=torch.float32)
        out[d.train_idx] = train.float()
        if tests:  # none only when there are no test pairs
            out[d.test_idx] = torch.cat(tests).float()
        return out


def _logged_at(run: Run, steps: Any) -> dict[int, tuple[float, float]]:
    """``(embedding_gini, weight_norm)`` as logged at each of ``steps``."""
    m = run.metrics()
    gini, norm = m.get("embedding_gini"), m.get("weight_norm")
    g = dict(zip(gini.steps.tolist(), gini.values.tolist()))
    n = dict(zip(norm.steps.tolist(), norm.values.tolist()))
    return {s: (g[s], n[s]) for s in steps}
