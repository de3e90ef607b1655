"""Whether a run trained today follows the recipe a shipped run was trained with.

Only the first ``EPOCHS`` epochs are compared, each logged metric to ``SAME_RECIPE``,
because training does not round the same way on every CPU and Adam amplifies the difference
epoch by epoch. Trained with torch's DEFAULT, AVX2 and AVX512 kernels (``ATEN_CPU_CAPABILITY``)
on one machine, the runs differ by at most 3.1e-5 on any logged metric through epoch 3 (the
six grokking held-out runs), then by up to 6.4e-3 at epoch 10 and 2.3e-2 at epoch 20; the
tutorial's p=113 run, by 2.4e-6 through epoch 6 and 8.7e-4 at epoch 20. A run shipped from
one machine failed a comparison to 1e-4 at epoch 10 or 20 on another. A recipe 2% off in its
learning rate already differs by 3.5e-3 by epoch 3 on both (the tests that use this check
that it fails), so the first epochs tell the recipe apart from the rounding.
"""

from __future__ import annotations

from pathlib import Path

import torch

from explorer.studies.grokking import train_grokking

EPOCHS = 3  # epochs 0-3: before another CPU's rounding grows
SAME_RECIPE = 1e-3  # on every logged metric
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm")


def trained_early(folder: Path, setting):
    """``setting``'s first ``EPOCHS`` epochs trained now into ``folder`` on one torch thread,
    as the shipped runs were trained."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_grokking(folder, setting.replace(steps=EPOCHS), progress=False)
    finally:
        torch.set_num_threads(threads)


def early_differences(trained, shipped) -> dict:
    """``{(epoch, metric): (trained, shipped)}`` wherever the ``trained`` run (trained for at
    least ``EPOCHS`` epochs) and the ``shipped`` one differ by more than ``SAME_RECIPE`` in
    epochs 0..``EPOCHS``; both must have logged every one of them."""
    mine = {r["step"]: r for r in trained.rows() if r["step"] <= EPOCHS}
    theirs = {r["step"]: r for r in shipped.rows() if r["step"] <= EPOCHS}
    epochs = range(EPOCHS + 1)
    missing = [e for e in epochs if e not in mine or e not in theirs]
    assert not missing, f"epochs {missing} are not logged by both runs"
    return {
        (e, name): (mine[e][name], theirs[e][name])
        for e in epochs
        for name in METRICS
        if abs(mine[e][name] - theirs[e][name]) > SAME_RECIPE
    }
